"""CLHE on the shipped sample: learns, uses every loss, handles missing modalities, ranks the catalogue."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataloader import CANDIDATES
from recbole_bundle.quick_start import run_recbole_bundle
from recbole_bundle.data.prepare import create_dataset, data_preparation
from recbole_bundle.graph_features import prepare_item_features


def _build(run_config, **extra):
    cfg = BundleConfig("CLHE", "sample", config_dict={**run_config, "relational_epochs": 2, **extra})
    ds = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, ds)
    prepare_item_features(cfg, train, valid)  # the pipeline's feature step: relational LightGCN
    torch.manual_seed(0)
    return cfg, cfg.model_class(cfg, train.dataset), train, test


def test_clhe_learns_bundle_structure(run_config):
    result = run_recbole_bundle("CLHE", "sample", config_dict={**run_config, "epochs": 12, "relational_epochs": 2})
    # chance is 0.10 with K=10; co-occurrence ItemKNN reaches ~0.5 on the sample; 12 epochs: seeds 2020/1/2 give 0.34/0.43/0.32 (at 8 the curve is still rising and seed-dependent)
    assert result["test_result"]["hitrate@1"] > 0.3


def test_every_loss_term_contributes(run_config):
    cfg, net, train, _ = _build(run_config)
    batch = next(iter(train))
    torch.manual_seed(1)
    full = net.calculate_loss(batch)
    net.cl_alpha = net.bundle_cl_alpha = 0.0
    torch.manual_seed(1)
    recon = net.calculate_loss(batch)
    assert full.item() > recon.item() > 0
    net.cl_alpha, net.bundle_cl_alpha = 0.1, 2.0
    net.zero_grad()
    net.calculate_loss(batch).backward()
    for name in ("item_embedding.weight", "encoder.proj.0.0.weight", "decoder.proj.0.0.weight", "cl_projector.weight"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.bundle_encoder.parameters())


def test_missing_modalities_and_full_ranking(run_config):
    cfg, net, _, test = _build(run_config, modalities=["visual", "text"])
    assert net.feat_missing[:, 0].sum() > 10  # the sample's items without a visual feature
    net.eval()
    batch = next(iter(test))
    with torch.no_grad():
        scores = net.score_candidates(batch)
        full = net.full_sort_scores(batch)
    assert torch.isfinite(scores).all()
    assert full.shape == (len(scores), net.n_items) and torch.isinf(full[:, 0]).all()
    torch.testing.assert_close(full.gather(1, batch[CANDIDATES]), scores, atol=1e-5, rtol=1e-5)
    # an item whose every feature is missing still gets a vector from its id embedding
    only_missing = torch.nonzero(net.feat_missing[:, 0]).squeeze(1)[:3]
    assert torch.isfinite(net.items(only_missing)).all()


def test_modality_dropout_keeps_one_modality(run_config):
    _, net, _, _ = _build(run_config, modalities=["visual", "text"])
    items = torch.arange(1, 50)
    torch.manual_seed(0)
    a = net.items(items, drop=0.99)
    b = net.items(items, drop=0.99)
    assert torch.isfinite(a).all() and not torch.allclose(a, b)
    assert (a.abs().sum(-1) > 0).all()  # never every modality hidden


def test_item_id_modality_is_refused_naming_why(run_config):
    """CLHE's id embedding is always there; 'item_id' (a Bundle-MLLM fused-token modality) is refused before
    anything is trained instead of being looked up as a feature file."""
    from recbole_bundle.errors import BundleConfigError

    with pytest.raises(BundleConfigError, match="CLHE always learns an item-id embedding.*remove 'item_id'"):
        run_recbole_bundle("CLHE", "sample", config_dict={**run_config, "modalities": ["relational", "item_id"]})


@pytest.mark.parametrize("key, value, rule", [
    ("n_heads", 3, r"'n_heads' must divide embedding_size \(64\), got 3"),
    ("cl_temp", 0.0, r"'cl_temp' must be > 0, got 0.0"),
    ("bundle_item_dropout", 1.0, r"'bundle_item_dropout' must lie in \[0, 1\), got 1.0"),
    ("cl_alpha", -0.1, r"'cl_alpha' must be >= 0, got -0.1"),
])
def test_options_are_checked_once_naming_key_rule_and_defaults(run_config, key, value, rule):
    from recbole_bundle.errors import BundleConfigError
    from recbole_bundle.model.clhe import CLHEOptions

    good = CLHEOptions.from_config(BundleConfig("CLHE", "sample", config_dict=run_config))
    assert good.embedding_size == 64 and good.cl_alpha == 0.1  # the yaml's values, typed
    with pytest.raises(BundleConfigError, match=rule + r" \(defaults: properties/model/CLHE\.yaml\)"):
        CLHEOptions.from_config(BundleConfig("CLHE", "sample", config_dict={**run_config, key: value}))
