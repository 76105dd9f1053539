"""Bundle-level split: bundles (not interactions) are split; eval bundles cut into input / held-out."""

import numpy as np
import pytest

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataset import BundleDataset
from tests.conftest import tiny_bundles, write_atomic


def build(data_path, name="sample", **cfg):
    config = BundleConfig("Pop", name, config_dict={"data_path": str(data_path), "state": "WARNING", **cfg})
    ds = BundleDataset(config)
    return ds, ds.build()


def pairs(ds):
    return set(zip(ds.inter_feat[ds.uid_field].tolist(), ds.inter_feat[ds.iid_field].tolist()))


def test_ratio_split_is_by_bundle_and_never_leaks_held_out_items(data_root):
    ds, (train, valid, test) = build(data_root, seed=7)
    all_pairs = pairs(ds)
    n_bundles = ds.user_num - 1
    v, t = valid.eval_bundles, test.eval_bundles
    assert set(v.bundles).isdisjoint(t.bundles)
    assert abs(len(v) - 0.1 * n_bundles) <= 1 and abs(len(t) - 0.1 * n_bundles) <= 1
    train_pairs = pairs(train)
    for eb in (v, t):
        for b, inp, gt in zip(eb.bundles, eb.inputs, eb.held_out):
            assert len(inp) >= 1 and len(gt) >= 1
            assert set(inp).isdisjoint(gt)
            whole = {i for (u, i) in all_pairs if u == b}
            assert set(inp) | set(gt) == whole
            assert len(inp) == max(1, len(whole) // 2)
            assert all((b, i) in train_pairs for i in inp)  # the partial bundle is known history
            assert not any((b, i) in train_pairs for i in gt)  # held-out items never reach training
    eval_ids = set(v.bundles) | set(t.bundles)
    train_only = {u for (u, _) in train_pairs} - eval_ids
    assert len(train_only) == n_bundles - len(eval_ids)
    assert train.train_bundles[0].tolist() == sorted(train_only)


def test_split_is_deterministic_in_seed(data_root):
    _, (_, v1, t1) = build(data_root, seed=3)
    _, (_, v2, t2) = build(data_root, seed=3)
    _, (_, v3, _) = build(data_root, seed=4)
    assert v1.eval_bundles.fingerprint() == v2.eval_bundles.fingerprint()
    assert t1.eval_bundles.fingerprint() == t2.eval_bundles.fingerprint()
    assert v1.eval_bundles.fingerprint() != v3.eval_bundles.fingerprint()


def test_split_given_by_role_column(tmp_path):
    bundles = tiny_bundles(12, 30)
    roles = {}
    for n, (b, items) in enumerate(bundles.items()):
        phase = ["train", "valid", "test"][n % 3]
        for j, i in enumerate(items):
            roles[(b, i)] = "train" if phase == "train" else f"{phase}_{'input' if j < 2 else 'gt'}"
    write_atomic(tmp_path, "roles", bundles, roles=roles)
    ds, (train, valid, test) = build(tmp_path, "roles")
    tok = lambda ids: set(ds.id2token(ds.uid_field, ids))  # noqa: E731
    assert tok(valid.eval_bundles.bundles) == {b for n, b in enumerate(bundles) if n % 3 == 1}
    assert tok(test.eval_bundles.bundles) == {b for n, b in enumerate(bundles) if n % 3 == 2}
    for b, inp, gt in zip(test.eval_bundles.bundles, test.eval_bundles.inputs, test.eval_bundles.held_out):
        items = bundles[ds.id2token(ds.uid_field, b)]
        assert set(ds.id2token(ds.iid_field, inp)) == set(items[:2])
        assert set(ds.id2token(ds.iid_field, gt)) == set(items[2:])


def test_titles_and_features_align_with_item_ids(data_root):
    ds, _ = build(data_root)
    titles = ds.item_titles()
    raw = dict(line.split("\t")[:2] for line in (data_root / "sample" / "sample.item").read_text().splitlines()[1:])
    for iid in (1, 17, ds.item_num - 1):
        assert titles[iid] == " ".join(raw[ds.id2token(ds.iid_field, iid)].split())
    feats, missing = ds.item_features("visual")
    with np.load(data_root / "sample" / "sample.feat_visual.npz") as z:
        row = list(z["tokens"]).index(ds.id2token(ds.iid_field, 5))
        np.testing.assert_allclose(feats[5], z["features"][row])
        assert missing.sum() == z["missing"].sum() + 1  # + padding id 0
    assert ds.available_features() == ["text", "visual"]
    with pytest.raises(Exception, match="feature 'audio' not found"):
        ds.item_features("audio")


def test_role_file_eval_bundle_without_input_is_named(tmp_path):
    bundles = tiny_bundles(12, 30)
    roles = {}
    for n, (b, items) in enumerate(bundles.items()):
        phase = ["train", "valid", "test"][n % 3]
        for j, i in enumerate(items):
            roles[(b, i)] = "train" if phase == "train" else f"{phase}_{'input' if j < 2 and n != 1 else 'gt'}"
    write_atomic(tmp_path, "noinput", bundles, roles=roles)
    with pytest.raises(Exception, match=r"eval bundle 'b1' has 0 input and \d+ held-out items"):
        build(tmp_path, "noinput")


@pytest.mark.parametrize("ratio", [0.25, 0.75])
def test_eval_input_ratio_is_applied_not_clamped(data_root, ratio):
    """The share of an eval bundle shown as the partial bundle (at least one input and one held-out item)."""
    _, (_, valid, _) = build(data_root, seed=5, eval_input_ratio=ratio)
    for inp, gt in zip(valid.eval_bundles.inputs, valid.eval_bundles.held_out):
        n = len(inp) + len(gt)
        assert len(inp) == min(n - 1, max(1, int(n * ratio)))


@pytest.mark.parametrize("cfg, message", [
    ({"eval_input_ratio": 1.0}, r"'eval_input_ratio' \(from config_dict\) = 1\.0 must lie strictly between 0 and 1"),
    ({"bundle_split_ratio": [0.5, 0.5, 0.5]}, r"'bundle_split_ratio' \(from config_dict\).*sums to 1\.5, not 1 \(the shares are not renormalised\)"),
    ({"bundle_split_ratio": [1.0, 0.0, 0.0]}, r"leaves no valid bundles"),
])
def test_split_settings_outside_their_range_are_refused(data_root, cfg, message):
    with pytest.raises(Exception, match=message):
        build(data_root, **cfg)
