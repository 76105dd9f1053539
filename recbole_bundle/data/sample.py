"""Deterministic generator of the small SYNTHETIC fashion-outfit dataset shipped in ``dataset/sample/``.

Nothing here is real data. The sample is built to *teach*: every part of a bundle model has one
signal to learn, and the signals are complementary.

* **Readable (titles).** Every item belongs to a *theme* whose word starts its title ("coastal navy
  linen shirt"); outfits are drawn within one theme, so "pick the candidate whose title shares the
  partial outfit's theme word" is a rule a text-only model can learn. About one catalogue item in
  twelve shares any given theme, so with K=10 uniform candidates the title alone narrows the answer
  to the positive and, often, one or two same-theme negatives.
* **Hidden (relations and pictures).** Inside a theme, items belong to *capsule collections* that no
  title names. Outfits draw most items from one collection, so the positive is usually the candidate
  of the partial outfit's own collection: co-occurrence (ItemKNN), the bundle graph (LightGCN, the
  ``relational`` modality) and the ``visual`` feature (a collection's print/cut shows in its
  "photos") can tell it from a same-theme candidate of another collection; the title cannot.
* **Popularity** is Zipf-skewed inside a collection, so rare items have little co-occurrence signal
  and their theme word is what identifies them.

``benchmarks/sample_signals.py`` measures how far simple scorers (title-word overlap, co-occurrence,
both) get on it.

The shipped files are reproduced byte for byte by::

    python -m recbole_bundle.data.sample --out dataset/sample

Only ``numpy.random.default_rng`` is used for randomness; ``.npz`` files are written with fixed zip
timestamps (``numpy.savez`` stamps the current time) and features are rounded to 4 decimals so that
BLAS summation-order differences between machines cannot change the bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from recbole_bundle.io import PathLike, atomic_open, atomic_write_text

logger = logging.getLogger(__name__)

__all__ = [
    "generate_sample",
    "make_world",
    "write_sample_media",
    "THEMES",
    "CATEGORIES",
    "VISUAL_DIM",
    "TEXT_DIM",
    "DEFAULT_N_ITEMS",
    "DEFAULT_N_BUNDLES",
]

DEFAULT_N_ITEMS = 480
DEFAULT_N_BUNDLES = 600
VISUAL_DIM = 32
TEXT_DIM = 16
MIN_BUNDLE, MAX_BUNDLE = 3, 5
COLLECTIONS_PER_THEME = 2
P_COLLECTION = 0.8  # share of outfit slots filled from the outfit's own (hidden) collection
P_THEME = 0.10  # ... from another collection of the same theme; the rest is noise (any theme)
THEME_WORD_PROB = 0.95  # share of titles that carry their theme word (the rest: no theme word)
ZIPF_EXPONENT = 0.6  # item popularity within a (collection, category) group ~ 1 / rank**a
VISUAL_MISSING_FRAC = 0.03
VISUAL_NOISE = 1.0  # sd of the Gaussian noise on visual features
TEXT_NOISE = 0.3  # sd of the Gaussian noise on text features
FEATURE_DECIMALS = 4
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# ---------------------------------------------------------------------------------------------
# Vocabulary of the synthetic world
# ---------------------------------------------------------------------------------------------
# the readable theme word that starts a title (each one token in common BPE vocabularies); outfits stay
# within one theme
THEMES: List[str] = ["coastal", "alpine", "desert", "garden", "urban", "tropical", "prairie", "harbor",
                     "forest", "island", "arctic", "canyon"]
# bundle popularity of each theme (non-uniform: from 1.4x to 0.6x the mean)
THEME_POPULARITY = np.linspace(1.4, 0.6, len(THEMES)) / len(THEMES)

CATEGORIES: List[str] = ["top", "bottom", "shoes", "bag", "accessory", "outerwear"]
# how often a category appears in an outfit (tops/bottoms/shoes are nearly always there)
CATEGORY_WEIGHT = np.array([1.0, 0.95, 0.9, 0.45, 0.45, 0.4])
# share of the catalogue in each category
CATEGORY_SHARE = np.array([0.22, 0.19, 0.17, 0.14, 0.14, 0.14])

NOUNS: Dict[str, List[str]] = {
    "top": ["shirt", "blouse", "sweater", "t-shirt", "hoodie", "cardigan", "polo", "tank top"],
    "bottom": ["jeans", "trousers", "skirt", "shorts", "chinos", "joggers", "culottes"],
    "shoes": ["sneakers", "loafers", "boots", "sandals", "brogues", "espadrilles", "mules"],
    "bag": ["tote", "backpack", "satchel", "clutch", "crossbody bag", "duffel"],
    "accessory": ["scarf", "belt", "watch", "cap", "beanie", "sunglasses", "bracelet"],
    "outerwear": ["jacket", "parka", "blazer", "trench coat", "windbreaker", "overcoat"],
}
COLOURS: List[str] = ["black", "white", "grey", "navy", "beige", "olive", "rust", "cream", "burgundy",
                      "teal", "camel", "sand", "indigo", "charcoal", "ochre", "mint", "coral", "slate"]
# each theme's palette (a theme's item takes one of these with probability PALETTE_PROB, else any colour):
# colour words are a second, weaker readable cue; palettes overlap, so a colour alone does not give the theme
THEME_PALETTES: Dict[str, List[str]] = {
    "coastal": ["navy", "white", "sand", "teal"], "alpine": ["grey", "white", "burgundy", "charcoal"],
    "desert": ["sand", "rust", "ochre", "camel"], "garden": ["olive", "mint", "coral", "cream"],
    "urban": ["black", "charcoal", "slate", "grey"], "tropical": ["coral", "mint", "teal", "beige"],
    "prairie": ["camel", "olive", "cream", "rust"], "harbor": ["navy", "indigo", "slate", "beige"],
    "forest": ["olive", "charcoal", "camel", "cream"], "island": ["teal", "coral", "white", "sand"],
    "arctic": ["white", "grey", "slate", "indigo"], "canyon": ["rust", "ochre", "sand", "burgundy"],
}
PALETTE_PROB = 0.9
# shared by every theme: they add words to titles that carry no theme information
MATERIALS: List[str] = ["cotton", "linen", "wool", "denim", "leather", "suede", "canvas", "knit",
                        "nylon", "silk", "corduroy", "fleece"]
ADJECTIVES: List[str] = ["classic", "relaxed", "slim", "soft", "light", "cropped", "washed", "oversized"]
ADJECTIVE_PROB = 0.0  # share of titles with a theme-neutral adjective (0: none; a knob for noisier variants; the
# draw is made either way, so the shipped bytes do not depend on it being 0)
MATERIAL_PROB = 0.2  # share of titles that name a material


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent ``default_rng`` stream per generation phase (items, bundles, features)."""
    return np.random.default_rng([int(seed), stream])


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _make_items(n_items: int, rng: np.random.Generator) -> List[Dict]:
    """Items with theme, hidden collection, category, colour, material and a product-like title."""
    n_coll = len(THEMES) * COLLECTIONS_PER_THEME
    # every collection holds every category, then the rest of the catalogue by category share
    groups = [(c, k) for c in range(n_coll) for k in range(len(CATEGORIES))]
    extra = n_items - len(groups)
    colls = rng.integers(0, n_coll, extra)
    cats = rng.choice(len(CATEGORIES), extra, p=CATEGORY_SHARE)
    groups += [(int(c), int(k)) for c, k in zip(colls, cats)]
    items: List[Dict] = []
    for coll, cat in sorted(groups):
        theme, category = THEMES[coll // COLLECTIONS_PER_THEME], CATEGORIES[cat]
        colour = _pick(rng, THEME_PALETTES[theme] if rng.random() < PALETTE_PROB else COLOURS)
        material = _pick(rng, MATERIALS)
        noun = _pick(rng, NOUNS[category])
        words = [colour, material, noun] if rng.random() < MATERIAL_PROB else [colour, noun]
        if rng.random() < ADJECTIVE_PROB:
            words.insert(0, _pick(rng, ADJECTIVES))
        if rng.random() < THEME_WORD_PROB:
            words.insert(0, theme)
        items.append({"theme": theme, "collection": int(coll), "category": category,
                      "colour": colour, "material": material, "title": " ".join(words)})
    order = rng.permutation(n_items)  # ids carry no information about theme, collection or category
    return [items[i] for i in order]


def _make_bundles(items: List[Dict], n_bundles: int, rng: np.random.Generator) -> List[List[int]]:
    """Outfits: a theme, one of its hidden collections, 3-5 distinct categories, Zipf-popular items."""
    n_items = len(items)
    coll_idx = np.array([it["collection"] for it in items])
    theme_idx = coll_idx // COLLECTIONS_PER_THEME
    cat_idx = np.array([CATEGORIES.index(it["category"]) for it in items])
    # Zipf popularity within each (collection, category) group, random rank order
    zipf = np.zeros(n_items)
    for c in range(len(THEMES) * COLLECTIONS_PER_THEME):
        for k in range(len(CATEGORIES)):
            members = np.flatnonzero((coll_idx == c) & (cat_idx == k))
            zipf[members] = 1.0 / (rng.permutation(len(members)) + 1) ** ZIPF_EXPONENT
    cat_p = CATEGORY_WEIGHT / CATEGORY_WEIGHT.sum()
    bundles: List[List[int]] = []
    for _ in range(n_bundles):
        t = int(rng.choice(len(THEMES), p=THEME_POPULARITY))
        coll = t * COLLECTIONS_PER_THEME + int(rng.integers(COLLECTIONS_PER_THEME))
        size = int(rng.integers(MIN_BUNDLE, MAX_BUNDLE + 1))
        bundle: List[int] = []
        for k in rng.choice(len(CATEGORIES), size, replace=False, p=cat_p):
            u = rng.random()
            if u < P_COLLECTION:
                pool = np.flatnonzero((cat_idx == k) & (coll_idx == coll))
            elif u < P_COLLECTION + P_THEME:
                pool = np.flatnonzero((cat_idx == k) & (theme_idx == t) & (coll_idx != coll))
            else:  # noise: any item of the category
                pool = np.flatnonzero(cat_idx == k)
            w = zipf[pool]
            bundle.append(int(pool[rng.choice(len(pool), p=w / w.sum())]))
        bundles.append(bundle)
    _cover_all_items(bundles, coll_idx, cat_idx, rng)
    for b in bundles:  # within-bundle order carries no category information
        rng.shuffle(b)
    return bundles


def _cover_all_items(bundles: List[List[int]], coll_idx: np.ndarray, cat_idx: np.ndarray,
                     rng: np.random.Generator) -> None:
    """Put every never-used item into an outfit, replacing a same-category item used elsewhere.

    Prefers outfits of the item's own collection (an outfit's collection is the majority collection of
    its items), so the structure survives; falls back to any outfit holding a reusable item of the category.
    """
    counts = np.zeros(len(coll_idx), dtype=int)
    for b in bundles:
        counts[b] += 1
    bundle_coll = [int(np.bincount(coll_idx[b]).argmax()) for b in bundles]
    for item in np.flatnonzero(counts == 0):
        c, k = coll_idx[item], cat_idx[item]
        placed = False
        for same in (True, False):
            for bi in rng.permutation(len(bundles)):
                if same and bundle_coll[bi] != c:
                    continue
                b = bundles[bi]
                for pos, other in enumerate(b):
                    if cat_idx[other] == k and counts[other] > 1:
                        counts[other] -= 1
                        b[pos] = int(item)
                        counts[item] += 1
                        placed = True
                        break
                if placed:
                    break
            if placed:
                break
        if not placed:
            raise ValueError(
                f"n_bundles={len(bundles)} is too small to use all {len(coll_idx)} items at least "
                f"once (category {CATEGORIES[k]!r} ran out of reusable slots); raise n_bundles or "
                f"lower n_items")


def _features(items: List[Dict], rng: np.random.Generator):
    """(visual [n,32], visual_missing [n], text [n,16]) as float32 rounded to 4 decimals.

    visual: a random projection of the hidden collection's "print" (strong), the colour and the
    category, plus noise: it separates collections that titles cannot. text: the mean of the title's
    word vectors plus noise, where the theme words and the category nouns have shared anchors (like a
    pretrained text encoder placing related words near each other): it carries what the title says.
    """
    n = len(items)
    n_coll = len(THEMES) * COLLECTIONS_PER_THEME
    attrs = np.zeros((n, n_coll + len(COLOURS) + len(CATEGORIES)))
    for i, it in enumerate(items):
        attrs[i, it["collection"]] = 2.0
        attrs[i, n_coll + COLOURS.index(it["colour"])] = 1.0
        attrs[i, n_coll + len(COLOURS) + CATEGORIES.index(it["category"])] = 1.0
    w_vis = rng.normal(0.0, 1.0 / np.sqrt(3.0), size=(attrs.shape[1], VISUAL_DIM))
    visual = attrs @ w_vis + rng.normal(0.0, VISUAL_NOISE, size=(n, VISUAL_DIM))
    missing = np.zeros(n, dtype=bool)
    missing[rng.choice(n, int(round(VISUAL_MISSING_FRAC * n)), replace=False)] = True
    visual[missing] = 0.0
    vocab = sorted({w for it in items for w in it["title"].split(" ")})
    cat_anchor = rng.normal(0.0, 1.0, size=(len(CATEGORIES), TEXT_DIM))
    own = rng.normal(0.0, 1.0, size=(len(vocab), TEXT_DIM))
    word_vec = {}
    for k, w in enumerate(vocab):
        v = own[k] * (2.0 if w in THEMES else 0.8)
        cats = [c for c, cat in enumerate(CATEGORIES) if any(w in noun.split(" ") for noun in NOUNS[cat])]
        if cats:
            v = v + 0.5 * cat_anchor[cats].mean(0)
        word_vec[w] = v
    text = np.stack([np.mean([word_vec[w] for w in it["title"].split(" ")], axis=0) for it in items])
    text = text + rng.normal(0.0, TEXT_NOISE, size=(n, TEXT_DIM))

    def clean(x: np.ndarray) -> np.ndarray:
        return (np.round(x, FEATURE_DECIMALS) + 0.0).astype(np.float32)  # +0.0: no "-0.0"

    return clean(visual), missing, clean(text)


def make_world(n_items: int = DEFAULT_N_ITEMS, n_bundles: int = DEFAULT_N_BUNDLES, seed: int = 0):
    """The generated world in memory: ``(items, bundles)``.

    ``items`` is a list of dicts (``theme``, ``collection`` (hidden: never written to a file),
    ``category``, ``colour``, ``material``, ``title``) in item-id order; ``bundles`` a list of item-index
    lists. For analyses of the sample (``benchmarks/sample_signals.py``, tests); ``generate_sample``
    writes the same world to files.

    Raises:
        ValueError: ``n_items`` is too small to give every collection every category, or ``n_bundles``
            is too small for every item to appear in a bundle.
    """
    min_items = len(THEMES) * COLLECTIONS_PER_THEME * len(CATEGORIES) * 2
    if n_items < min_items:
        raise ValueError(f"n_items={n_items} is too small: need at least {min_items} ({len(THEMES)} themes x "
                         f"{COLLECTIONS_PER_THEME} collections x {len(CATEGORIES)} categories x 2)")
    if n_bundles < 1:
        raise ValueError(f"n_bundles={n_bundles} must be positive")
    items = _make_items(n_items, _rng(seed, 0))
    bundles = _make_bundles(items, n_bundles, _rng(seed, 1))
    return items, bundles


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def _save_npz_deterministic(path: PathLike, **arrays: np.ndarray) -> None:
    """Like ``numpy.savez`` (uncompressed, loadable by ``numpy.load``) with fixed zip timestamps.

    ``numpy.savez`` stamps every zip entry with the current time, so two runs differ in bytes.
    """
    with atomic_open(path, "wb") as f:
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as fid:
                    np.lib.format.write_array(fid, np.asanyarray(arr), allow_pickle=False)


def _json_text(obj: dict) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _readme(dataset: str, n_items: int, n_bundles: int, seed: int, n_missing: int,
            items: List[Dict], bundles: List[List[int]]) -> str:
    sizes = np.array([len(b) for b in bundles])
    coll = np.array([it["collection"] for it in items])
    theme = coll // COLLECTIONS_PER_THEME
    with_word = sum(it["title"].split(" ")[0] in THEMES for it in items)

    def share_same(labels: np.ndarray) -> tuple[float, float]:
        same = total = 0
        for b in bundles:
            lab = labels[b]
            same += int((lab[:, None] == lab[None, :]).sum() - len(b)) // 2
            total += len(b) * (len(b) - 1) // 2
        return same / total, float(((np.bincount(labels) / len(labels)) ** 2).sum())

    same_theme, chance_theme = share_same(theme)
    same_coll, chance_coll = share_same(coll)
    size_hist = ", ".join(f"{s}: {int((sizes == s).sum())}" for s in range(MIN_BUNDLE, MAX_BUNDLE + 1))
    themes = ", ".join(f"{s} {p:.2f}" for s, p in zip(THEMES, THEME_POPULARITY))
    cmd = "python -m recbole_bundle.data.sample --out dataset/sample"
    if (n_items, n_bundles, seed) != (DEFAULT_N_ITEMS, DEFAULT_N_BUNDLES, 0):
        cmd += f" --n-items {n_items} --n-bundles {n_bundles} --seed {seed}"
    example = next(it["title"] for it in items if it["title"].split(" ")[0] in THEMES)
    adjective = f" a theme-neutral adjective ({ADJECTIVE_PROB:.0%} of titles)," if ADJECTIVE_PROB else ""
    return f"""# `{dataset}`: a SYNTHETIC fashion-outfit dataset that teaches

**Everything in this folder is synthetic.** No item, title, outfit or feature comes from a real
shop, user or image; it is made up by a seeded random generator so that the plugin, its tests and
its examples can run offline on a tiny dataset whose structure every part of a bundle model can learn.
Numbers measured on it say nothing about real-world performance.

## How it was generated

```
{cmd}
```

(`recbole_bundle/data/sample.py`, function `generate_sample`; arguments n_items={n_items},
n_bundles={n_bundles}, seed={seed}). The generator uses only `numpy.random.default_rng`, writes the
`.npz` files with fixed zip timestamps and rounds features to {FEATURE_DECIMALS} decimals, so rerunning
the command reproduces these files byte for byte (`tests/test_sample_data.py` checks this).

## Files

| file | content |
|---|---|
| `{dataset}.inter` | `bundle_id:token`, `item_id:token`; {n_bundles} bundles, no `role` column (split by ratio) |
| `{dataset}.item` | `item_id:token`, `title:token_seq`, `category:token`, `style:token` (the theme); {n_items} items |
| `{dataset}.feat_visual.npz` / `.json` | {VISUAL_DIM}-d "visual" features, {n_missing} rows (~{VISUAL_MISSING_FRAC:.0%}) marked `missing` with zero features |
| `{dataset}.feat_text.npz` / `.json` | {TEXT_DIM}-d "text" features, none missing |

## Structure: one readable signal, one hidden signal

- **Items** have a category ({", ".join(CATEGORIES)}), a colour, a material, a *theme*
  ({", ".join(THEMES)}) and a hidden *capsule collection* ({COLLECTIONS_PER_THEME} per theme, {len(THEMES) * COLLECTIONS_PER_THEME} in all).
  Titles read like product titles, e.g. "{example}": the theme word ({with_word} of {n_items} titles,
  ~{THEME_WORD_PROB:.0%}; the others have none),{adjective} a colour (from the theme's 4-colour palette with
  probability {PALETTE_PROB}; palettes overlap, so a colour is only a weak, ambiguous theme cue), a material
  ({MATERIAL_PROB:.0%} of titles) and a noun of the category. Materials and nouns are drawn independently of
  theme and collection: **the theme word is the one clear readable cue, and nothing in a title tells the
  collection.**
- **Outfits** (bundles): a theme is drawn with popularity {themes};
  then one of its collections uniformly; then {MIN_BUNDLE}-{MAX_BUNDLE} distinct categories (tops, bottoms and
  shoes most often). Each slot is filled from the outfit's collection with probability {P_COLLECTION:.2f},
  from another collection of the same theme with {P_THEME:.2f}, else by any item of the category (noise),
  always weighted by Zipf popularity inside the item's (collection, category) group (exponent
  {ZIPF_EXPONENT}). Items never drawn are then swapped into an outfit of their collection in place of a
  same-category item used elsewhere, so every item is in at least one outfit.
  Outfit sizes: {size_hist}.
  Two items of one outfit share their theme in {same_theme:.1%} of pairs (two random items:
  {chance_theme:.1%}) and their collection in {same_coll:.1%} (random: {chance_coll:.1%}).
- **Features**: visual = fixed random projection of the (hidden collection, colour, category) one-hots
  (collection weighted x2) plus Gaussian noise (sd {VISUAL_NOISE}): a collection's print shows in its
  "photos", so the visual feature separates the collections titles cannot. text = mean of the title's
  word vectors plus Gaussian noise (sd {TEXT_NOISE}): it carries the theme word, nothing hidden.

So titles alone narrow a question to the candidates of the partial outfit's theme, and only relations
(co-occurrence, LightGCN) or the visual feature tell its own collection from the theme's others: a
model that reads titles AND the fused multimodal token has more to go on than either. Measured with
simple scorers and with the models: `python benchmarks/sample_signals.py` and
[benchmarks/README.md](../../benchmarks/README.md), section "The teaching sample".
"""


def generate_sample(out_dir: PathLike, dataset: str = "sample", n_items: int = DEFAULT_N_ITEMS,
                    n_bundles: int = DEFAULT_N_BUNDLES, seed: int = 0) -> Path:
    """Write the synthetic outfit dataset ``dataset`` into ``out_dir`` and return ``out_dir``.

    Writes ``<dataset>.inter``, ``<dataset>.item``, ``<dataset>.feat_visual.npz`` (+ ``.json``),
    ``<dataset>.feat_text.npz`` (+ ``.json``) and ``README.md``, each atomically. The output is a
    pure function of the arguments: same arguments, same bytes.

    Raises:
        ValueError: see :func:`make_world`.
    """
    out = Path(out_dir)
    items, bundles = make_world(n_items, n_bundles, seed)
    visual, missing, text = _features(items, _rng(seed, 2))

    iw, bw = len(str(n_items - 1)), len(str(n_bundles - 1))
    item_tok = [f"i{i:0{iw}d}" for i in range(n_items)]
    lines = ["bundle_id:token\titem_id:token"]
    for b, members in enumerate(bundles):
        lines += [f"b{b:0{bw}d}\t{item_tok[i]}" for i in members]
    atomic_write_text(out / f"{dataset}.inter", "\n".join(lines) + "\n")

    lines = ["item_id:token\ttitle:token_seq\tcategory:token\tstyle:token"]
    lines += [f"{tok}\t{it['title']}\t{it['category']}\t{it['theme']}" for tok, it in zip(item_tok, items)]
    atomic_write_text(out / f"{dataset}.item", "\n".join(lines) + "\n")

    tokens = np.array(item_tok)
    note = ("SYNTHETIC: fixed random function of {} plus Gaussian noise, made by "
            "recbole_bundle.data.sample (seed={}); not derived from any real media.")
    for name, feats, miss, src in (
        ("visual", visual, missing, "(hidden collection, colour, category) one-hots"),
        ("text", text, np.zeros(n_items, dtype=bool), "the title's word vectors"),
    ):
        _save_npz_deterministic(out / f"{dataset}.feat_{name}.npz", tokens=tokens, features=feats, missing=miss)
        meta = {"encoder": "synthetic", "dim": int(feats.shape[1]), "n_items": n_items,
                "n_missing": int(miss.sum()), "synthetic": True, "note": note.format(src, seed)}
        atomic_write_text(out / f"{dataset}.feat_{name}.json", _json_text(meta))

    atomic_write_text(out / "README.md", _readme(dataset, n_items, n_bundles, seed, int(missing.sum()), items, bundles))
    logger.info("wrote synthetic dataset %r to %s: %d items, %d bundles", dataset, out, n_items, n_bundles)
    return out


def _rgb(name: str) -> tuple[int, int, int]:
    """A fixed colour for a word (stable across runs and machines)."""
    digest = hashlib.sha1(name.encode()).digest()
    return digest[0], digest[1], digest[2]


def write_sample_media(out_dir: PathLike, n_items: int = DEFAULT_N_ITEMS, seed: int = 0, size: int = 32) -> Path:
    """Write ``<out_dir>/images/<item token>.png`` for the sample's items: the item's colour as the
    background and one band per category index in its hidden collection's print colour (so images
    carry colour, category and collection, like product photos). Items whose visual feature is
    flagged missing get no image. For running the visual feature command offline
    (``python -m recbole_bundle.features --modality=visual --images=...``)."""
    from PIL import Image

    items = _make_items(n_items, _rng(seed, 0))
    _, missing, _ = _features(items, _rng(seed, 2))
    folder = Path(out_dir) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    iw = len(str(n_items - 1))
    for i, it in enumerate(items):
        if missing[i]:
            continue
        img = np.empty((size, size, 3), np.uint8)
        img[:] = _rgb(it["colour"])
        bands = CATEGORIES.index(it["category"]) + 1
        for b in range(bands):
            row = (2 * b + 1) * size // (2 * bands + 1)
            img[row : row + max(1, size // 16), size // 4 : 3 * size // 4] = _rgb(f"collection{it['collection']}")
        with atomic_open(folder / f"i{i:0{iw}d}.png", "wb") as f:
            Image.fromarray(img).save(f, format="PNG")
    logger.info("wrote %d images to %s", len(items) - int(missing.sum()), folder)
    return folder


def main(argv: Sequence[str] | None = None) -> Path:
    """Command line: ``python -m recbole_bundle.data.sample --out dataset/sample``."""
    parser = argparse.ArgumentParser(
        prog="python -m recbole_bundle.data.sample",
        description="Generate the small deterministic SYNTHETIC fashion-outfit dataset.", allow_abbrev=False)
    parser.add_argument("--out", required=True, help="output folder, e.g. dataset/sample")
    parser.add_argument("--dataset", default="sample", help="dataset name (file prefix)")
    parser.add_argument("--n-items", type=int, default=DEFAULT_N_ITEMS)
    parser.add_argument("--n-bundles", type=int, default=DEFAULT_N_BUNDLES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--media", help="also write item images (<media>/images/<item>.png) for the visual feature command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.media:
            write_sample_media(args.media, n_items=args.n_items, seed=args.seed)
        return generate_sample(args.out, dataset=args.dataset, n_items=args.n_items,
                               n_bundles=args.n_bundles, seed=args.seed)
    except ValueError as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits


if __name__ == "__main__":
    main()
