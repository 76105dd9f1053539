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


def test_degree_feature_is_the_train_graph_popularity(run_config):
    """``degree``: log-degree + a one-hot log2 bucket, counted on the TRAIN graph only (as Pop / ItemKNN)."""
    from recbole_bundle.graph_features import DEGREE_BINS, degree_item_features, prepare_item_features

    cfg = BundleConfig("BundleMLLM", "sample", config_dict={**run_config, "modalities": ["degree"]})
    ds = create_dataset(cfg)
    train, valid, _ = data_preparation(cfg, ds)
    tds = train.dataset
    pairs = set(zip(tds.inter_feat["bundle_id"].tolist(), tds.inter_feat["item_id"].tolist()))
    degree = np.zeros(ds.item_num, int)
    for _, i in pairs:
        degree[i] += 1
    feats = degree_item_features(tds)
    assert feats.shape == (ds.item_num, 1 + DEGREE_BINS)
    assert (feats[:, 1:].sum(1) == 1).all()  # exactly one bucket per item
    expected_bucket = np.where(degree > 0, np.floor(np.log2(np.maximum(degree, 1))) + 1, 0).astype(int)
    np.testing.assert_array_equal(feats[:, 1:].argmax(1), np.minimum(expected_bucket, DEGREE_BINS - 1))
    np.testing.assert_allclose(feats[:, 0], np.log1p(degree) / np.log1p(degree.max()), rtol=1e-6)
    assert feats[degree.argmax(), 0] == 1.0 and feats[0, 0] == 0.0
    # the pipeline prepares it without a file; the padding row is marked missing
    prepared = prepare_item_features(cfg, train, valid)
    np.testing.assert_array_equal(prepared["degree"][0], feats)
    assert prepared["degree"][1][0] and not prepared["degree"][1][1:].any()


def test_relational_cache_key_follows_lightgcn_settings(run_config, data_root, monkeypatch):
    """Editing LightGCN's settings (properties/model/LightGCN.yaml) trains a new relational feature instead of
    reusing the cache written with the old ones."""
    import functools

    from recbole_bundle import graph_features

    cfg = BundleConfig("BundleMLLM", "sample", config_dict=run_config)
    train, valid, _ = data_preparation(cfg, create_dataset(cfg))
    first = lightgcn_item_features(cfg, train.dataset, valid.questions, epochs=1, dim=8)
    monkeypatch.setattr(graph_features, "_lightgcn_config",
                        functools.partial(graph_features._lightgcn_config, n_layers=1))
    second = lightgcn_item_features(cfg, train.dataset, valid.questions, epochs=1, dim=8)
    assert len(list((data_root / "sample" / "cache").glob("relational_lightgcn_*.npz"))) == 2
    assert not np.array_equal(first, second)  # one propagation layer instead of two
