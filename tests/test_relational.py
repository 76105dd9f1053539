"""Relational (LightGCN) item features: train graph only, early stopping on valid, cached per split."""

import numpy as np

from recbole_bundle.config import BundleConfig
from recbole_bundle.graph_features import lightgcn_item_features
from recbole_bundle.data.prepare import create_dataset, data_preparation


def test_lightgcn_features_train_only_early_stopped_and_cached(run_config, data_root):
    run_config.update(stopping_step=1)
    cfg = BundleConfig("BundleMLLM", "sample", config_dict=run_config)
    ds = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, ds)
    train_ds = train.dataset
    # no held-out item of any eval bundle is an edge of the graph LightGCN trains on
    graph = set(zip(train_ds.inter_feat["bundle_id"].tolist(), train_ds.inter_feat["item_id"].tolist()))
    for eb in (valid.dataset.eval_bundles, test.dataset.eval_bundles):
        assert not any((b, i) in graph for b, gt in zip(eb.bundles, eb.held_out) for i in gt)
    feats = lightgcn_item_features(cfg, train_ds, valid.questions, epochs=30, dim=16)
    assert feats.shape == (ds.item_num, 16) and np.isfinite(feats).all()
    cached = list((data_root / "sample" / "cache").glob("relational_lightgcn_*.npz"))
    assert len(cached) == 1
    assert not list((data_root.parent / "saved").glob("LightGCN-*.pth"))  # temporary checkpoint removed
    np.testing.assert_array_equal(lightgcn_item_features(cfg, train_ds, valid.questions, epochs=30, dim=16), feats)
    # item embeddings carry co-occurrence: items of the same train bundle are closer than random pairs
    e = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    ids, items = train_ds.train_bundles
    same = np.mean([e[b[0]] @ e[b[1]] for b in items[:300]])
    rng = np.random.default_rng(0)
    rand = np.mean([e[i] @ e[j] for i, j in rng.integers(1, ds.item_num, size=(300, 2))])
    assert same > rand + 0.1


def test_exported_relational_feature_from_another_split_is_refused(run_config, data_root):
    """A relational file exported on one split would leak that split's held-out items into another."""
    import pytest

    from recbole_bundle.errors import BundleConfigError
    from recbole_bundle.features.__main__ import main as features_main
    from recbole_bundle.graph_features import prepare_item_features

    features_main(["--dataset=sample", "--modality=relational", "--epochs=1", "--no-progress",
                   f"--data_path={data_root}", "--split_seed=1"])

    def prepared(split_seed: int):
        cfg = BundleConfig("CLHE", "sample", config_dict={**run_config, "split_seed": split_seed})
        train, valid, _ = data_preparation(cfg, create_dataset(cfg))
        return prepare_item_features(cfg, train, valid), train.dataset

    with pytest.raises(BundleConfigError, match=r"sample\.feat_relational\.npz was exported from another split"):
        prepared(2)
    feats, ds = prepared(1)  # the split it was exported on: the file is used as it is
    np.testing.assert_array_equal(feats["relational"][0], ds.item_features("relational")[0])
    assert ds.item_modality("relational")[0].flags.writeable is False  # handed to the model read-only
