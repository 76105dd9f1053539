"""The shipped synthetic ``dataset/sample/`` is reproducible, well-formed, and teaches: its titles and its
relations each carry part of the answer, and together more than either."""

import importlib.util
import json
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from recbole_bundle.data.sample import (COLLECTIONS_PER_THEME, DEFAULT_N_BUNDLES, DEFAULT_N_ITEMS, MAX_BUNDLE,
                                        MIN_BUNDLE, TEXT_DIM, THEMES, VISUAL_DIM, generate_sample, make_world)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "dataset" / "sample"
FILES = [
    "sample.inter", "sample.item",
    "sample.feat_visual.npz", "sample.feat_visual.json",
    "sample.feat_text.npz", "sample.feat_text.json",
    "README.md",
]
INTER_HEADER = "bundle_id:token\titem_id:token"
ITEM_HEADER = "item_id:token\ttitle:token_seq\tcategory:token\tstyle:token"


def _signals_module():
    spec = importlib.util.spec_from_file_location("sample_signals", ROOT / "benchmarks" / "sample_signals.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_sample(folder: Path, dataset: str = "sample"):
    """(inter header, item header, {bundle: [items]}, {item: (title, category, theme)})."""
    inter_lines = (folder / f"{dataset}.inter").read_text(encoding="utf-8").splitlines()
    bundles = defaultdict(list)
    for line in inter_lines[1:]:
        b, i = line.split("\t")
        bundles[b].append(i)
    item_lines = (folder / f"{dataset}.item").read_text(encoding="utf-8").splitlines()
    items = {}
    for line in item_lines[1:]:
        tok, title, category, theme = line.split("\t")
        items[tok] = (title, category, theme)
    return inter_lines[0], item_lines[0], dict(bundles), items


@pytest.fixture(scope="module")
def sample():
    return read_sample(SAMPLE_DIR)


@pytest.fixture(scope="module")
def signals():
    """HitRate@1 of the simple scorers on the shipped files, K=10, 20% of bundles held out, two seeds
    (557 questions; the numbers are deterministic, each threshold sits below its measured value)."""
    mod = _signals_module()
    titles, bundles, visual = mod.read_dataset(SAMPLE_DIR)
    runs = [mod.signal_hit_rates(titles, bundles, visual, k=10, test_frac=0.2, seed=s) for s in (0, 1)]
    n = sum(r["questions"] for r in runs)
    return {name: sum(r[name] * r["questions"] for r in runs) / n for name in mod.SCORERS}


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
    a = read_sample(generate_sample(tmp_path / "a", n_items=300, n_bundles=400, seed=1))
    b = read_sample(generate_sample(tmp_path / "b", n_items=300, n_bundles=400, seed=2))
    assert a[2] != b[2]
    _, _, bundles, items = a
    assert len(items) == 300 and len(bundles) == 400
    assert {i for m in bundles.values() for i in m} == set(items)
    assert all(MIN_BUNDLE <= len(m) <= MAX_BUNDLE and len(set(m)) == len(m) for m in bundles.values())


def test_too_few_bundles_or_items_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="n_bundles"):
        generate_sample(tmp_path / "x", n_items=DEFAULT_N_ITEMS, n_bundles=50)
    with pytest.raises(ValueError, match="n_items"):
        generate_sample(tmp_path / "y", n_items=20, n_bundles=50)


def test_headers_sizes_and_coverage(sample):
    inter_header, item_header, bundles, items = sample
    assert inter_header == INTER_HEADER
    assert item_header == ITEM_HEADER
    assert len(items) == DEFAULT_N_ITEMS == 480 and len(bundles) == DEFAULT_N_BUNDLES == 600
    assert {i for m in bundles.values() for i in m} == set(items), "every item in >= 1 bundle"
    sizes = [len(m) for m in bundles.values()]
    assert min(sizes) == MIN_BUNDLE == 3 and max(sizes) == MAX_BUNDLE == 5
    assert all(len(set(m)) == len(m) for m in bundles.values()), "duplicate item in a bundle"
    for m in bundles.values():  # outfits hold items of distinct categories
        cats = [items[i][1] for i in m]
        assert len(set(cats)) == len(cats)
    for title, category, theme in items.values():
        assert title and "  " not in title and title == title.strip()
        assert theme in THEMES and category


def test_readme_says_synthetic_and_how_to_regenerate():
    text = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in text
    assert "python -m recbole_bundle.data.sample --out dataset/sample" in text


def _centroid_accuracy(feats: np.ndarray, labels: np.ndarray) -> float:
    """Nearest label centroid, fit on every other row, accuracy on the rest (labels 0..L-1)."""
    fit, held = np.arange(0, len(labels), 2), np.arange(1, len(labels), 2)
    cent = np.stack([feats[fit][labels[fit] == c].mean(0) for c in range(labels.max() + 1)])
    return float((((feats[held][:, None, :] - cent[None]) ** 2).sum(-1).argmin(1) == labels[held]).mean())


def _within_theme_accuracy(feats: np.ndarray, coll: np.ndarray, keep: np.ndarray) -> float:
    """Mean over themes of the nearest-centroid accuracy at telling the theme's collections apart (chance 1/3)."""
    accs = []
    for t in range(len(THEMES)):
        rows = np.intersect1d(keep, np.flatnonzero(coll // COLLECTIONS_PER_THEME == t))
        accs.append(_centroid_accuracy(feats[rows], coll[rows] - t * COLLECTIONS_PER_THEME))
    return float(np.mean(accs))


def test_titles_show_the_theme_and_hide_the_collection():
    """The theme word starts most titles (never a wrong one); nothing in a title tells the collection."""
    items, bundles = make_world()
    first = [it["title"].split(" ")[0] for it in items]
    with_word = np.array([w == it["theme"] for w, it in zip(first, items)])
    assert 0.9 < with_word.mean() < 1.0  # measured 0.95: a few titles carry no readable cue
    assert not any(w in THEMES and not ok for w, ok in zip(first, with_word))
    coll = np.array([it["collection"] for it in items])
    vocab = sorted({w for it in items for w in it["title"].split(" ")})
    bags = np.array([[w in it["title"].split(" ") for w in vocab] for it in items], dtype=float)
    chance = 1 / COLLECTIONS_PER_THEME
    assert _within_theme_accuracy(bags, coll, np.arange(len(items))) < chance + 0.1  # measured 0.46 (chance 0.5)
    # ... while outfits follow the collections: two items of one outfit share their collection (theme)
    # far more often than two random items
    pairs = [(a, b) for m in bundles for i, a in enumerate(m) for b in m[i + 1:]]
    same_coll = np.mean([coll[a] == coll[b] for a, b in pairs])
    same_theme = np.mean([coll[a] // COLLECTIONS_PER_THEME == coll[b] // COLLECTIONS_PER_THEME for a, b in pairs])
    chance_coll = ((np.bincount(coll) / len(coll)) ** 2).sum()  # measured 0.043
    assert same_coll > 0.55 > 10 * chance_coll and same_theme > 0.75  # measured 0.65 and 0.81


def test_each_signal_alone_beats_chance_and_together_they_beat_either(signals):
    """Text alone (title-word overlap) and relations alone (co-occurrence on the train split) each beat
    chance (0.10) by a wide margin, and the two combined beat both: the sample rewards a model that
    reads titles AND uses relational/visual item tokens."""
    r = signals
    assert abs(r["random"] - 0.10) < 0.03
    assert r["title"] > 0.45, r  # measured 0.513
    assert r["cooccurrence"] > 0.45, r  # measured 0.501
    assert r["visual"] > 0.45, r  # measured 0.529: the visual feature sees the hidden collections
    assert r["title+cooccurrence"] > max(r["title"], r["cooccurrence"]) + 0.08, r  # measured 0.633
    assert r["title+visual"] > max(r["title"], r["visual"]) + 0.04, r  # measured 0.594
    assert r["pop"] < r["title"] - 0.1 and r["pop"] < r["cooccurrence"] - 0.1, r  # not a popularity contest


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


def test_text_feature_sees_the_theme_and_visual_feature_sees_the_collection():
    items, _ = make_world()
    coll = np.array([it["collection"] for it in items])
    feats = {}
    for name in ("visual", "text"):
        with np.load(SAMPLE_DIR / f"sample.feat_{name}.npz") as z:
            feats[name] = (z["features"], np.flatnonzero(~z["missing"]))
    text, keep_t = feats["text"]
    visual, keep_v = feats["visual"]
    # chance: theme 1/12, collection 1/24, a collection within its theme 1/2; measured 0.93, 0.98, 0.44, 1.00
    assert _centroid_accuracy(text[keep_t], coll[keep_t] // COLLECTIONS_PER_THEME) > 0.85  # the theme word
    assert _centroid_accuracy(visual[keep_v], coll[keep_v]) > 0.9  # the hidden collection's print
    assert _within_theme_accuracy(text, coll, keep_t) < 1 / COLLECTIONS_PER_THEME + 0.1  # text: theme, not collection
    assert _within_theme_accuracy(visual, coll, keep_v) > 0.9
