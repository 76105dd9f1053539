"""The shipped synthetic ``dataset/sample/`` is reproducible, well-formed and has learnable structure."""

import json
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from recbole_bundle.data.sample import STYLES, TEXT_DIM, VISUAL_DIM, generate_sample

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "dataset" / "sample"
FILES = [
    "sample.inter", "sample.item",
    "sample.feat_visual.npz", "sample.feat_visual.json",
    "sample.feat_text.npz", "sample.feat_text.json",
    "README.md",
]
INTER_HEADER = "bundle_id:token\titem_id:token"
ITEM_HEADER = "item_id:token\ttitle:token_seq\tcategory:token\tstyle:token"


def read_sample(folder: Path, dataset: str = "sample"):
    """(inter header, item header, {bundle: [items]}, {item: (title, category, style)})."""
    inter_lines = (folder / f"{dataset}.inter").read_text(encoding="utf-8").splitlines()
    bundles = defaultdict(list)
    for line in inter_lines[1:]:
        b, i = line.split("\t")
        bundles[b].append(i)
    item_lines = (folder / f"{dataset}.item").read_text(encoding="utf-8").splitlines()
    items = {}
    for line in item_lines[1:]:
        tok, title, category, style = line.split("\t")
        items[tok] = (title, category, style)
    return inter_lines[0], item_lines[0], dict(bundles), items


@pytest.fixture(scope="module")
def sample():
    return read_sample(SAMPLE_DIR)


def test_regenerating_reproduces_committed_files_byte_for_byte(tmp_path):
    out = generate_sample(tmp_path / "regen")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name in FILES:
        committed = (SAMPLE_DIR / name).read_bytes()
        assert (out / name).read_bytes() == committed, (
            f"dataset/sample/{name} differs from a fresh `python -m recbole_bundle.data.sample "
            f"--out dataset/sample`; regenerate and commit it")


def test_npz_zip_entries_have_fixed_timestamps():
    for name in ("sample.feat_visual.npz", "sample.feat_text.npz"):
        with zipfile.ZipFile(SAMPLE_DIR / name) as zf:
            infos = zf.infolist()
        assert [i.filename for i in infos] == ["tokens.npy", "features.npy", "missing.npy"]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_seed_changes_output_and_small_datasets_keep_invariants(tmp_path):
    a = read_sample(generate_sample(tmp_path / "a", n_items=150, n_bundles=200, seed=1))
    b = read_sample(generate_sample(tmp_path / "b", n_items=150, n_bundles=200, seed=2))
    assert a[2] != b[2]
    _, _, bundles, items = a
    assert len(items) == 150 and len(bundles) == 200
    assert {i for m in bundles.values() for i in m} == set(items)
    assert all(3 <= len(m) <= 6 and len(set(m)) == len(m) for m in bundles.values())


def test_too_few_bundles_or_items_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="n_bundles"):
        generate_sample(tmp_path / "x", n_items=600, n_bundles=50)
    with pytest.raises(ValueError, match="n_items"):
        generate_sample(tmp_path / "y", n_items=20, n_bundles=50)


def test_headers_sizes_and_coverage(sample):
    inter_header, item_header, bundles, items = sample
    assert inter_header == INTER_HEADER
    assert item_header == ITEM_HEADER
    assert len(items) == 600 and len(bundles) == 1200
    assert {i for m in bundles.values() for i in m} == set(items), "every item in >= 1 bundle"
    sizes = [len(m) for m in bundles.values()]
    assert min(sizes) == 3 and max(sizes) == 6
    assert all(len(set(m)) == len(m) for m in bundles.values()), "duplicate item in a bundle"
    for m in bundles.values():  # outfits hold items of distinct categories
        cats = [items[i][1] for i in m]
        assert len(set(cats)) == len(cats)
    for title, category, style in items.values():
        assert title and "  " not in title and title == title.strip()
        assert style in STYLES and category


def test_readme_says_synthetic_and_how_to_regenerate():
    text = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in text
    assert "python -m recbole_bundle.data.sample --out dataset/sample" in text


def _hit(scores: np.ndarray) -> float:
    """HitRate@1 of candidate 0 with fractional ties."""
    top = scores.max()
    return 1.0 / np.sum(scores == top) if scores[0] == top else 0.0


def test_structure_is_learnable(sample):
    _, _, bundles, items = sample
    tokens = sorted(items)
    idx = {t: k for k, t in enumerate(tokens)}
    style = np.array([STYLES.index(items[t][2]) for t in tokens])
    members = [np.array([idx[i] for i in m]) for m in bundles.values()]

    # items of a bundle share their style far more often than two random items
    same = sum(int((style[m][:, None] == style[m][None, :]).sum()) - len(m) for m in members)
    pairs = sum(len(m) * (len(m) - 1) for m in members)
    chance = float(((np.bincount(style) / len(style)) ** 2).sum())
    assert same / pairs > 0.7 and chance < 0.3

    # leave-one-out on held-out bundles, K = 10 (ground truth + 9 uniform negatives)
    rng = np.random.default_rng(12345)
    order = rng.permutation(len(members))
    n_test = len(members) // 5
    test, train = order[:n_test], order[n_test:]
    n = len(tokens)
    inc = np.zeros((len(train), n))
    for r, b in enumerate(train):
        inc[r, members[b]] = 1.0
    pop = inc.sum(0)
    co = inc.T @ inc
    np.fill_diagonal(co, 0.0)
    hits = {"random": [], "pop": [], "cooc": []}
    for b in test:
        m = members[b]
        outside = np.setdiff1d(np.arange(n), m)
        for j in range(len(m)):  # every item of the held-out bundle is the ground truth once
            rest = np.delete(m, j)
            cand = np.concatenate([[m[j]], rng.choice(outside, 9, replace=False)])
            hits["random"].append(_hit(rng.random(10)))
            hits["pop"].append(_hit(pop[cand]))
            hits["cooc"].append(_hit(co[np.ix_(rest, cand)].sum(0)))
    hr = {k: float(np.mean(v)) for k, v in hits.items()}
    assert abs(hr["random"] - 0.1) < 0.03, hr
    assert 0.18 < hr["pop"] < 0.45, f"Pop must be clearly above random but beatable: {hr}"
    assert hr["cooc"] > hr["pop"] + 0.15, f"co-occurrence must clearly beat Pop: {hr}"


def test_feature_files_align_with_items(sample):
    _, _, _, items = sample
    item_tokens = list(items)
    for name, dim, max_missing in (("visual", VISUAL_DIM, 0.05), ("text", TEXT_DIM, 0.0)):
        with np.load(SAMPLE_DIR / f"sample.feat_{name}.npz", allow_pickle=False) as z:
            assert set(z.files) == {"tokens", "features", "missing"}
            tokens, feats, missing = z["tokens"], z["features"], z["missing"]
        assert tokens.dtype.kind == "U" and list(tokens) == item_tokens
        assert feats.dtype == np.float32 and feats.shape == (len(items), dim)
        assert missing.dtype == np.bool_ and missing.shape == (len(items),)
        assert np.all(feats[missing] == 0.0)
        assert np.all(np.abs(feats[~missing]).sum(1) > 0)
        assert missing.mean() <= max_missing
        if name == "visual":
            assert 0.01 <= missing.mean(), "~3% of visual rows must be flagged missing"
        meta = json.loads((SAMPLE_DIR / f"sample.feat_{name}.json").read_text(encoding="utf-8"))
        assert meta["encoder"] == "synthetic" and meta["synthetic"] is True
        assert meta["dim"] == dim and meta["n_items"] == len(items) and meta["note"]
        assert meta["n_missing"] == int(missing.sum())


@pytest.mark.parametrize("name", ["visual", "text"])
def test_features_carry_style_signal(sample, name):
    """Nearest style centroid (fit on half the items) beats chance by far on the other half."""
    _, _, _, items = sample
    style = np.array([STYLES.index(v[2]) for v in items.values()])
    with np.load(SAMPLE_DIR / f"sample.feat_{name}.npz") as z:
        feats, missing = z["features"], z["missing"]
    keep = np.flatnonzero(~missing)
    fit, held = keep[::2], keep[1::2]
    cent = np.stack([feats[fit][style[fit] == s].mean(0) for s in range(len(STYLES))])
    pred = ((feats[held][:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)
    assert (pred == style[held]).mean() > 0.35  # chance ~ 0.13; measured: visual 0.82, text 0.49
