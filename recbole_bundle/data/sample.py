"""Deterministic generator of the small SYNTHETIC fashion-outfit dataset shipped in ``dataset/sample/``.

Nothing here is real data.  Items are fictional fashion products with a category, a style, a colour
and a material; their titles read like product titles ("tailored navy wool blazer") and are built
from style-dependent adjectives, nouns and materials that partly overlap between styles.  Bundles
("outfits") are drawn from a style (non-uniform popularity) and a colour family, with items of
distinct categories picked mostly from that style with Zipf-skewed popularity, plus some noise.
Visual and text features are fixed random functions of the item's attributes / title words plus
Gaussian noise.

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
    "baseline_hit_rates",
    "STYLES",
    "CATEGORIES",
    "VISUAL_DIM",
    "TEXT_DIM",
]

VISUAL_DIM = 32
TEXT_DIM = 16
MIN_BUNDLE, MAX_BUNDLE = 3, 6
IN_STYLE_PROB = 0.85  # share of bundle items drawn from the bundle's style; the rest is noise
VISUAL_MISSING_FRAC = 0.03
VISUAL_NOISE = 1.0  # sd of the Gaussian noise on visual features
TEXT_NOISE = 0.3  # sd of the Gaussian noise on text features
ZIPF_EXPONENT = 1.0  # item popularity within a (style, category) group ~ 1 / rank**a
FEATURE_DECIMALS = 4
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# ---------------------------------------------------------------------------------------------
# Vocabulary of the synthetic world
# ---------------------------------------------------------------------------------------------
STYLES: List[str] = [
    "casual", "formal", "sporty", "bohemian", "streetwear", "vintage", "minimalist", "preppy",
]
# bundle popularity of each style (non-uniform: casual outfits are the most common)
STYLE_POPULARITY = np.array([0.22, 0.16, 0.14, 0.11, 0.11, 0.10, 0.09, 0.07])

CATEGORIES: List[str] = ["top", "bottom", "shoes", "bag", "accessory", "outerwear", "headwear"]
# how often a category appears in an outfit (tops/bottoms/shoes are nearly always there)
CATEGORY_WEIGHT = np.array([1.0, 0.95, 0.9, 0.5, 0.45, 0.45, 0.3])
# share of the catalogue in each category
CATEGORY_SHARE = np.array([0.22, 0.18, 0.16, 0.12, 0.12, 0.12, 0.08])

NOUNS: Dict[str, List[str]] = {
    "top": ["t-shirt", "shirt", "blouse", "sweater", "polo shirt", "hoodie", "tank top",
            "cardigan", "turtleneck", "crop top", "oxford shirt", "peasant blouse"],
    "bottom": ["jeans", "chino trousers", "trousers", "skirt", "shorts", "joggers", "leggings",
               "wide-leg pants", "cargo pants", "pleated skirt", "maxi skirt", "dress trousers"],
    "shoes": ["sneakers", "loafers", "oxford shoes", "ankle boots", "sandals", "running shoes",
              "high-top sneakers", "mules", "brogues", "espadrilles", "boat shoes", "chelsea boots"],
    "bag": ["tote bag", "backpack", "crossbody bag", "clutch", "briefcase", "bucket bag",
            "belt bag", "satchel", "duffel bag", "shoulder bag"],
    "accessory": ["belt", "scarf", "watch", "sunglasses", "necklace", "bracelet", "tie",
                  "earrings", "wristband", "bandana"],
    "outerwear": ["blazer", "denim jacket", "trench coat", "bomber jacket", "parka",
                  "windbreaker", "leather jacket", "overcoat", "puffer jacket", "kimono",
                  "track jacket"],
    "headwear": ["baseball cap", "beanie", "fedora", "bucket hat", "beret", "sun hat",
                 "headband", "flat cap"],
}

# nouns a style favours (an item of that style takes one of these with prob. 0.75 when its
# category has any); lists overlap on purpose so titles are informative but not trivially so
STYLE_NOUNS: Dict[str, List[str]] = {
    "casual": ["t-shirt", "sweater", "hoodie", "jeans", "shorts", "chino trousers", "sneakers",
               "sandals", "tote bag", "backpack", "sunglasses", "watch", "denim jacket",
               "baseball cap", "beanie"],
    "formal": ["shirt", "blouse", "turtleneck", "trousers", "dress trousers", "pleated skirt",
               "oxford shoes", "loafers", "brogues", "briefcase", "clutch", "tie", "watch",
               "belt", "blazer", "overcoat", "trench coat", "fedora"],
    "sporty": ["t-shirt", "tank top", "hoodie", "joggers", "leggings", "shorts",
               "running shoes", "sneakers", "backpack", "duffel bag", "belt bag", "wristband",
               "sunglasses", "windbreaker", "track jacket", "puffer jacket", "baseball cap",
               "headband"],
    "bohemian": ["peasant blouse", "blouse", "crop top", "maxi skirt", "wide-leg pants",
                 "skirt", "sandals", "espadrilles", "ankle boots", "bucket bag", "tote bag",
                 "necklace", "bracelet", "earrings", "scarf", "kimono", "sun hat"],
    "streetwear": ["hoodie", "t-shirt", "crop top", "cargo pants", "jeans", "joggers",
                   "high-top sneakers", "sneakers", "belt bag", "backpack", "crossbody bag",
                   "bandana", "sunglasses", "bomber jacket", "puffer jacket", "bucket hat",
                   "beanie"],
    "vintage": ["cardigan", "blouse", "oxford shirt", "jeans", "pleated skirt", "trousers",
                "brogues", "chelsea boots", "loafers", "satchel", "shoulder bag", "scarf",
                "watch", "leather jacket", "denim jacket", "beret", "flat cap"],
    "minimalist": ["t-shirt", "turtleneck", "shirt", "trousers", "wide-leg pants", "jeans",
                   "sneakers", "mules", "loafers", "tote bag", "shoulder bag", "watch", "belt",
                   "overcoat", "trench coat", "beanie"],
    "preppy": ["polo shirt", "oxford shirt", "cardigan", "sweater", "chino trousers",
               "pleated skirt", "shorts", "boat shoes", "loafers", "satchel", "tote bag",
               "belt", "tie", "watch", "blazer", "flat cap", "baseball cap"],
}

# style adjectives: each style has its own words, several are shared between styles
STYLE_ADJECTIVES: Dict[str, List[str]] = {
    "casual": ["relaxed", "everyday", "soft", "easy-fit", "classic", "washed"],
    "formal": ["tailored", "slim-fit", "structured", "classic", "pressed", "refined"],
    "sporty": ["performance", "breathable", "stretch", "athletic", "lightweight", "quick-dry"],
    "bohemian": ["flowy", "embroidered", "fringed", "relaxed", "printed", "woven"],
    "streetwear": ["oversized", "graphic", "boxy", "distressed", "chunky", "logo"],
    "vintage": ["retro", "washed", "classic", "heritage", "faded", "embroidered"],
    "minimalist": ["clean", "structured", "simple", "slim-fit", "lightweight", "seamless"],
    "preppy": ["tailored", "cable-knit", "striped", "classic", "crisp", "heritage"],
}

COLOUR_FAMILIES: Dict[str, List[str]] = {
    "neutral": ["black", "white", "grey", "charcoal", "beige", "cream", "ivory"],
    "earth": ["brown", "camel", "olive", "khaki", "tan", "rust", "terracotta"],
    "cool": ["navy", "blue", "indigo", "teal", "forest-green", "slate"],
    "warm": ["red", "burgundy", "mustard", "orange", "coral"],
    "pastel": ["blush-pink", "lavender", "mint", "powder-blue", "lilac"],
    "bright": ["cobalt", "neon-green", "hot-pink", "yellow", "electric-blue"],
}
FAMILIES: List[str] = list(COLOUR_FAMILIES)
COLOURS: List[str] = [c for fam in FAMILIES for c in COLOUR_FAMILIES[fam]]
COLOUR_FAMILY_OF: Dict[str, str] = {c: fam for fam in FAMILIES for c in COLOUR_FAMILIES[fam]}

# colour-family preference of each style (order of FAMILIES)
STYLE_FAMILY_PREF: Dict[str, List[float]] = {
    #              neutral earth cool  warm  pastel bright
    "casual":     [0.35, 0.20, 0.30, 0.10, 0.05, 0.00],
    "formal":     [0.55, 0.05, 0.35, 0.05, 0.00, 0.00],
    "sporty":     [0.30, 0.00, 0.20, 0.05, 0.05, 0.40],
    "bohemian":   [0.10, 0.45, 0.00, 0.25, 0.20, 0.00],
    "streetwear": [0.50, 0.15, 0.05, 0.00, 0.00, 0.30],
    "vintage":    [0.10, 0.40, 0.20, 0.30, 0.00, 0.00],
    "minimalist": [0.75, 0.20, 0.05, 0.00, 0.00, 0.00],
    "preppy":     [0.20, 0.10, 0.40, 0.15, 0.15, 0.00],
}

# materials each product noun can be made of (empty: the noun names its material, e.g. "denim jacket")
NOUN_MATERIALS: Dict[str, List[str]] = {
    # tops
    "t-shirt": ["cotton", "jersey", "linen", "polyester"], "shirt": ["cotton", "linen", "silk"],
    "blouse": ["silk", "cotton", "linen", "chiffon"], "sweater": ["wool", "cashmere", "cotton"],
    "polo shirt": ["cotton", "jersey", "polyester"], "hoodie": ["cotton", "fleece", "jersey"],
    "tank top": ["cotton", "jersey", "mesh", "polyester"], "cardigan": ["wool", "cashmere", "cotton"],
    "turtleneck": ["wool", "cashmere", "jersey"], "crop top": ["cotton", "jersey", "linen"],
    "oxford shirt": ["cotton", "linen"], "peasant blouse": ["cotton", "linen", "chiffon"],
    # bottoms
    "jeans": ["denim", "stretch-denim"], "chino trousers": ["cotton", "linen"],
    "trousers": ["wool", "cotton", "linen", "corduroy"], "skirt": ["cotton", "denim", "linen", "silk"],
    "shorts": ["cotton", "denim", "nylon", "linen"], "joggers": ["fleece", "jersey", "nylon"],
    "leggings": ["jersey", "polyester", "stretch"], "wide-leg pants": ["linen", "wool", "cotton"],
    "cargo pants": ["cotton", "nylon", "canvas"], "pleated skirt": ["wool", "silk", "polyester"],
    "maxi skirt": ["cotton", "linen", "chiffon"], "dress trousers": ["wool", "polyester"],
    # shoes
    "sneakers": ["canvas", "leather", "mesh", "suede"], "loafers": ["leather", "suede"],
    "oxford shoes": ["leather", "patent"], "ankle boots": ["leather", "suede"],
    "sandals": ["leather", "rubber", "straw"], "running shoes": ["mesh", "nylon"],
    "high-top sneakers": ["canvas", "leather", "suede"], "mules": ["leather", "suede"],
    "brogues": ["leather", "suede"], "espadrilles": ["canvas", "straw"],
    "boat shoes": ["leather", "suede", "canvas"], "chelsea boots": ["leather", "suede"],
    # bags
    "tote bag": ["canvas", "leather", "straw", "nylon"], "backpack": ["nylon", "canvas", "leather"],
    "crossbody bag": ["leather", "nylon", "suede"], "clutch": ["leather", "satin", "beaded"],
    "briefcase": ["leather"], "bucket bag": ["leather", "suede", "straw"],
    "belt bag": ["nylon", "leather", "canvas"], "satchel": ["leather", "canvas"],
    "duffel bag": ["nylon", "canvas", "leather"], "shoulder bag": ["leather", "suede", "nylon"],
    # accessories
    "belt": ["leather", "suede", "canvas"], "scarf": ["silk", "wool", "cashmere", "cotton"],
    "watch": ["steel", "silver", "gold-tone", "leather"], "sunglasses": ["acetate", "metal"],
    "necklace": ["silver", "gold-tone", "beaded"], "bracelet": ["silver", "gold-tone", "beaded", "leather"],
    "tie": ["silk", "wool", "knit"], "earrings": ["silver", "gold-tone", "beaded"],
    "wristband": ["cotton", "terry"], "bandana": ["cotton", "silk"],
    # outerwear
    "blazer": ["wool", "linen", "cotton", "velvet"], "denim jacket": [],
    "trench coat": ["cotton", "gabardine"], "bomber jacket": ["nylon", "satin", "suede"],
    "parka": ["nylon", "cotton"], "windbreaker": ["nylon", "polyester"], "leather jacket": [],
    "overcoat": ["wool", "cashmere"], "puffer jacket": ["nylon", "polyester"],
    "kimono": ["silk", "chiffon", "cotton"], "track jacket": ["polyester", "nylon", "jersey"],
    # headwear
    "baseball cap": ["cotton", "nylon", "mesh"], "beanie": ["wool", "cotton", "knit"],
    "fedora": ["felt", "wool", "straw"], "bucket hat": ["cotton", "nylon", "denim"],
    "beret": ["wool", "felt"], "sun hat": ["straw", "cotton"], "headband": ["jersey", "terry", "velvet"],
    "flat cap": ["wool", "tweed", "corduroy"],
}
STYLE_MATERIALS: Dict[str, List[str]] = {
    "casual": ["cotton", "denim", "jersey", "canvas", "fleece", "stretch-denim"],
    "formal": ["wool", "silk", "leather", "cashmere", "steel", "patent", "satin", "gabardine"],
    "sporty": ["mesh", "nylon", "polyester", "jersey", "rubber", "terry", "stretch", "fleece"],
    "bohemian": ["linen", "suede", "straw", "beaded", "cotton", "chiffon"],
    "streetwear": ["cotton", "nylon", "denim", "canvas", "fleece", "acetate"],
    "vintage": ["denim", "corduroy", "suede", "leather", "felt", "tweed", "velvet"],
    "minimalist": ["cotton", "wool", "leather", "linen", "silver", "steel", "knit"],
    "preppy": ["cotton", "wool", "cashmere", "leather", "gold-tone", "tweed", "knit"],
}

# how strongly an item's colour family matches the outfit's colour family
_SAME_FAMILY_WEIGHT = 4.0
_NEUTRAL_WEIGHT = 1.5
_CLASH_WEIGHT = 0.25


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent ``default_rng`` stream per generation phase (items, bundles, features, eval)."""
    return np.random.default_rng([int(seed), stream])


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _make_items(n_items: int, rng: np.random.Generator) -> List[Dict[str, str]]:
    """Items with style, category, colour, material and a product-like title."""
    # catalogue share per style: flatter than bundle popularity so niche styles still have stock
    style_share = np.sqrt(STYLE_POPULARITY)
    style_share = style_share / style_share.sum()
    styles = np.repeat(np.arange(len(STYLES)), np.floor(style_share * n_items).astype(int))
    styles = np.concatenate([styles, rng.choice(len(STYLES), n_items - len(styles), p=style_share)])
    styles = np.sort(styles)
    items: List[Dict[str, str]] = []
    for s in range(len(STYLES)):
        n_s = int((styles == s).sum())
        # categories: every category present, then the rest by catalogue share
        cats = list(range(len(CATEGORIES)))[:n_s]
        cats += list(rng.choice(len(CATEGORIES), n_s - len(cats), p=CATEGORY_SHARE))
        for c in sorted(cats):
            style, category = STYLES[s], CATEGORIES[c]
            fam = FAMILIES[int(rng.choice(len(FAMILIES), p=STYLE_FAMILY_PREF[style]))]
            colour = _pick(rng, COLOUR_FAMILIES[fam])
            preferred_nouns = [n for n in NOUNS[category] if n in STYLE_NOUNS[style]]
            if preferred_nouns and rng.random() < 0.75:
                noun = _pick(rng, preferred_nouns)
            else:
                noun = _pick(rng, NOUNS[category])
            materials = NOUN_MATERIALS[noun]
            preferred_mats = [m for m in materials if m in STYLE_MATERIALS[style]]
            if preferred_mats and rng.random() < 0.7:
                material = _pick(rng, preferred_mats)
            elif materials:
                material = _pick(rng, materials)
            else:
                material = ""
            adjective = _pick(rng, STYLE_ADJECTIVES[style])
            if rng.random() < 0.2:  # some titles borrow an adjective from another style
                adjective = _pick(rng, STYLE_ADJECTIVES[_pick(rng, STYLES)])
            words = [adjective, colour, material, noun]
            if rng.random() < 0.25:  # and some have no adjective at all
                words = words[1:]
            words = [w for w in words if w]
            items.append({
                "style": style, "category": category, "colour": colour,
                "family": fam, "material": material, "title": " ".join(words),
            })
    order = rng.permutation(n_items)  # ids carry no information about style or category
    return [items[i] for i in order]


def _make_bundles(items: List[Dict[str, str]], n_bundles: int,
                  rng: np.random.Generator) -> List[List[int]]:
    """Outfits: style + colour family, 3-6 distinct categories, Zipf-popular in-style items."""
    n_items = len(items)
    style_idx = np.array([STYLES.index(it["style"]) for it in items])
    cat_idx = np.array([CATEGORIES.index(it["category"]) for it in items])
    fam_idx = np.array([FAMILIES.index(it["family"]) for it in items])
    # Zipf popularity within each (style, category) group, random rank order
    zipf = np.zeros(n_items)
    for s in range(len(STYLES)):
        for c in range(len(CATEGORIES)):
            members = np.flatnonzero((style_idx == s) & (cat_idx == c))
            ranks = rng.permutation(len(members)) + 1
            zipf[members] = 1.0 / ranks ** ZIPF_EXPONENT
    neutral = FAMILIES.index("neutral")
    cat_p = CATEGORY_WEIGHT / CATEGORY_WEIGHT.sum()
    bundles: List[List[int]] = []
    for _ in range(n_bundles):
        s = int(rng.choice(len(STYLES), p=STYLE_POPULARITY))
        fam = int(rng.choice(len(FAMILIES), p=STYLE_FAMILY_PREF[STYLES[s]]))
        size = int(rng.integers(MIN_BUNDLE, MAX_BUNDLE + 1))
        cats = rng.choice(len(CATEGORIES), size, replace=False, p=cat_p)
        bundle: List[int] = []
        for c in cats:
            in_cat = cat_idx == c
            if rng.random() < IN_STYLE_PROB:
                pool = np.flatnonzero(in_cat & (style_idx == s))
                colour_w = np.where(fam_idx[pool] == fam, _SAME_FAMILY_WEIGHT,
                                    np.where(fam_idx[pool] == neutral, _NEUTRAL_WEIGHT,
                                             _CLASH_WEIGHT))
                w = zipf[pool] * colour_w
            else:  # noise: any item of the category, uniformly
                pool = np.flatnonzero(in_cat)
                w = np.ones(len(pool))
            bundle.append(int(pool[rng.choice(len(pool), p=w / w.sum())]))
        bundles.append(bundle)
    _cover_all_items(bundles, style_idx, cat_idx, rng)
    for b in bundles:  # within-bundle order carries no category information
        rng.shuffle(b)
    return bundles


def _cover_all_items(bundles: List[List[int]], style_idx: np.ndarray, cat_idx: np.ndarray,
                     rng: np.random.Generator) -> None:
    """Put every never-used item into an outfit, replacing a same-category item used elsewhere.

    Prefers outfits of the item's own style (their style is the majority style of their items), so
    the style structure survives; falls back to any outfit holding a reusable item of the category.
    """
    counts = np.zeros(len(style_idx), dtype=int)
    for b in bundles:
        counts[b] += 1
    bundle_style = [int(np.bincount(style_idx[b]).argmax()) for b in bundles]
    for item in np.flatnonzero(counts == 0):
        c, s = cat_idx[item], style_idx[item]
        placed = False
        for same_style in (True, False):
            order = rng.permutation(len(bundles))
            for bi in order:
                if same_style and bundle_style[bi] != s:
                    continue
                b = bundles[bi]
                for pos, other in enumerate(b):
                    if cat_idx[other] == c and counts[other] > 1:
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
                f"n_bundles={len(bundles)} is too small to use all {len(style_idx)} items at least "
                f"once (category {CATEGORIES[c]!r} ran out of reusable slots); raise n_bundles or "
                f"lower n_items")


def _features(items: List[Dict[str, str]], rng: np.random.Generator):
    """(visual [n,32], visual_missing [n], text [n,16]) as float32 rounded to 4 decimals."""
    n = len(items)
    # visual: random projection of style / colour / category one-hots + Gaussian noise
    attrs = np.zeros((n, len(STYLES) + len(COLOURS) + len(CATEGORIES)))
    for i, it in enumerate(items):
        attrs[i, STYLES.index(it["style"])] = 1.0
        attrs[i, len(STYLES) + COLOURS.index(it["colour"])] = 1.0
        attrs[i, len(STYLES) + len(COLOURS) + CATEGORIES.index(it["category"])] = 1.0
    w_vis = rng.normal(0.0, 1.0 / np.sqrt(3.0), size=(attrs.shape[1], VISUAL_DIM))
    visual = attrs @ w_vis + rng.normal(0.0, VISUAL_NOISE, size=(n, VISUAL_DIM))
    missing = np.zeros(n, dtype=bool)
    missing[rng.choice(n, int(round(VISUAL_MISSING_FRAC * n)), replace=False)] = True
    visual[missing] = 0.0
    # text: mean of fixed random word vectors + Gaussian noise.  Like a pretrained text encoder,
    # related words get related vectors: each word vector is its own random part plus a shared
    # anchor per style whose word lists contain it, per category (nouns) and per colour family.
    vocab = sorted({w for it in items for w in it["title"].split(" ")})
    style_anchor = rng.normal(0.0, 1.0, size=(len(STYLES), TEXT_DIM))
    cat_anchor = rng.normal(0.0, 1.0, size=(len(CATEGORIES), TEXT_DIM))
    fam_anchor = rng.normal(0.0, 1.0, size=(len(FAMILIES), TEXT_DIM))
    own = rng.normal(0.0, 1.0, size=(len(vocab), TEXT_DIM))
    word_vec = {}
    for k, w in enumerate(vocab):
        v = 0.8 * own[k]
        w_styles = [s for s, st in enumerate(STYLES)
                    if w in STYLE_ADJECTIVES[st] or w in STYLE_MATERIALS[st]
                    or any(w in n.split(" ") for n in STYLE_NOUNS[st])]
        if w_styles:
            v = v + style_anchor[w_styles].mean(0)
        w_cats = [c for c, cat in enumerate(CATEGORIES) if any(w in n.split(" ") for n in NOUNS[cat])]
        if w_cats:
            v = v + 0.5 * cat_anchor[w_cats].mean(0)
        if w in COLOUR_FAMILY_OF:
            v = v + fam_anchor[FAMILIES.index(COLOUR_FAMILY_OF[w])]
        word_vec[w] = v
    text = np.stack([np.mean([word_vec[w] for w in it["title"].split(" ")], axis=0) for it in items])
    text = text + rng.normal(0.0, TEXT_NOISE, size=(n, TEXT_DIM))

    def clean(x: np.ndarray) -> np.ndarray:
        return (np.round(x, FEATURE_DECIMALS) + 0.0).astype(np.float32)  # +0.0: no "-0.0"

    return clean(visual), missing, clean(text)


# ---------------------------------------------------------------------------------------------
# Evaluation of simple baselines (documents how learnable the structure is)
# ---------------------------------------------------------------------------------------------
def baseline_hit_rates(bundles: Sequence[Sequence[int]], n_items: int, k: int = 10,
                       test_frac: float = 0.2, seed: int = 0) -> Dict[str, float]:
    """HitRate@1 of Random, Pop and co-occurrence ItemKNN on held-out bundles.

    A ``test_frac`` share of bundles is held out; from each, one random item is the ground truth,
    the rest is the partial bundle, and the candidates are the ground truth plus ``k - 1`` items
    drawn uniformly from the items not in the bundle.  Pop scores by training-bundle frequency;
    ItemKNN sums the cosine-normalised training co-occurrence with the partial bundle's items.
    Ties count as a fractional hit (1 / number of tied top candidates).
    """
    rng = _rng(seed, 3)
    n_b = len(bundles)
    order = rng.permutation(n_b)
    n_test = max(1, int(round(test_frac * n_b)))
    test, train = order[:n_test], order[n_test:]
    inc = np.zeros((len(train), n_items))
    for r, bi in enumerate(train):
        inc[r, list(bundles[bi])] = 1.0
    pop = inc.sum(axis=0)
    co = inc.T @ inc
    np.fill_diagonal(co, 0.0)
    norm = np.sqrt(np.maximum(pop, 1.0))
    cos = co / norm[:, None] / norm[None, :]

    def hit(scores: np.ndarray) -> float:
        top = scores.max()
        return (1.0 / np.sum(scores == top)) if scores[0] == top else 0.0

    hits = {"random": 0.0, "pop": 0.0, "cooccurrence": 0.0}
    for bi in test:
        b = list(bundles[bi])
        gt = b.pop(int(rng.integers(len(b))))
        outside = np.setdiff1d(np.arange(n_items), bundles[bi])
        cand = np.concatenate([[gt], rng.choice(outside, k - 1, replace=False)])
        hits["random"] += hit(rng.random(k))
        hits["pop"] += hit(pop[cand])
        hits["cooccurrence"] += hit(cos[np.ix_(b, cand)].sum(axis=0))
    return {name: float(v / len(test)) for name, v in hits.items()}


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
            bundles: List[List[int]], item_style: np.ndarray, rates: Dict[str, float]) -> str:
    sizes = np.array([len(b) for b in bundles])
    same = total = 0
    for b in bundles:
        st = item_style[b]
        same += int((st[:, None] == st[None, :]).sum() - len(b)) // 2
        total += len(b) * (len(b) - 1) // 2
    same_style = same / total
    chance_style = float(((np.bincount(item_style) / len(item_style)) ** 2).sum())
    size_hist = ", ".join(f"{s}: {int((sizes == s).sum())}" for s in range(MIN_BUNDLE, MAX_BUNDLE + 1))
    styles = ", ".join(f"{s} {p:.2f}" for s, p in zip(STYLES, STYLE_POPULARITY))
    default = (n_items, n_bundles, seed) == (600, 1200, 0)
    cmd = "python -m recbole_bundle.data.sample --out dataset/sample"
    if not default:
        cmd += f" --n-items {n_items} --n-bundles {n_bundles} --seed {seed}"
    return f"""# `{dataset}`: a SYNTHETIC fashion-outfit dataset

**Everything in this folder is synthetic.** No item, title, outfit or feature comes from a real
shop, user or image; it is made up by a seeded random generator so that the plugin, its tests and
its examples can run offline on a tiny dataset that still has learnable bundle structure.
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
| `{dataset}.item` | `item_id:token`, `title:token_seq`, `category:token`, `style:token`; {n_items} items |
| `{dataset}.feat_visual.npz` / `.json` | {VISUAL_DIM}-d "visual" features, {n_missing} rows (~{VISUAL_MISSING_FRAC:.0%}) marked `missing` with zero features |
| `{dataset}.feat_text.npz` / `.json` | {TEXT_DIM}-d "text" features, none missing |

## Structure

- **Items** have a category ({", ".join(CATEGORIES)}),
  a style ({", ".join(STYLES)}),
  a colour from a {len(COLOURS)}-colour palette in {len(FAMILIES)} families ({", ".join(FAMILIES)}) and a material.
  Colour family, material and product noun depend on the style. Titles read like product titles,
  e.g. "tailored navy wool blazer": an optional style adjective (20% borrowed from another
  style), colour, material and noun. Several adjectives, nouns and materials are shared between
  styles, so titles are informative about style without giving it away.
- **Bundles** (outfits): a style is drawn with popularity
  {styles};
  then a colour family from the style's palette; then {MIN_BUNDLE}-{MAX_BUNDLE} distinct categories
  (tops, bottoms and shoes most often). Each slot is filled with probability {IN_STYLE_PROB:.2f} by an
  item of the outfit's style, weighted by Zipf popularity within (style, category) (exponent
  {ZIPF_EXPONENT}) times colour compatibility (same family x{_SAME_FAMILY_WEIGHT}, neutral
  x{_NEUTRAL_WEIGHT}, clash x{_CLASH_WEIGHT}); otherwise by a uniformly random item of the category
  (noise). Items never drawn are then swapped into an outfit of their style in place of a
  same-category item used elsewhere, so every item is in at least one bundle.
  Bundle sizes: {size_hist}.
  Two items of the same bundle share their style in {same_style:.1%} of pairs
  (two random items: {chance_style:.1%}).
- **Features**: visual = fixed random projection of the (style, colour, category) one-hots plus
  Gaussian noise (sd {VISUAL_NOISE}); text = mean of the title's word vectors plus Gaussian noise
  (sd {TEXT_NOISE}), where a word vector is a fixed random vector plus shared "semantic" anchors of the styles,
  category and colour family the word is associated with (as a pretrained text encoder would
  place related words near each other).

## How learnable it is (measured by the generator, `baseline_hit_rates`)

80/20 split of the bundles; from each held-out bundle one random item is the
ground truth and the rest the partial bundle; candidates = ground truth + {10 - 1} items drawn
uniformly from the items not in the bundle (K=10). HitRate@1 (ties count fractionally):

| scorer | HitRate@1 |
|---|---|
| Random (random scores; expected 1/K = 0.100) | {rates["random"]:.3f} |
| Pop (training-bundle frequency) | {rates["pop"]:.3f} |
| Co-occurrence ItemKNN (cosine) | {rates["cooccurrence"]:.3f} |
"""


def generate_sample(out_dir: PathLike, dataset: str = "sample", n_items: int = 600,
                    n_bundles: int = 1200, seed: int = 0) -> Path:
    """Write the synthetic outfit dataset ``dataset`` into ``out_dir`` and return ``out_dir``.

    Writes ``<dataset>.inter``, ``<dataset>.item``, ``<dataset>.feat_visual.npz`` (+ ``.json``),
    ``<dataset>.feat_text.npz`` (+ ``.json``) and ``README.md``, each atomically. The output is a
    pure function of the arguments: same arguments, same bytes.

    Raises:
        ValueError: ``n_items`` is too small to give every style every category, or ``n_bundles`` is
            too small for every item to appear in a bundle.
    """
    min_items = len(STYLES) * len(CATEGORIES) * 2
    if n_items < min_items:
        raise ValueError(f"n_items={n_items} is too small: need at least {min_items} "
                         f"({len(STYLES)} styles x {len(CATEGORIES)} categories x 2)")
    if n_bundles < 1:
        raise ValueError(f"n_bundles={n_bundles} must be positive")
    out = Path(out_dir)
    items = _make_items(n_items, _rng(seed, 0))
    bundles = _make_bundles(items, n_bundles, _rng(seed, 1))
    visual, missing, text = _features(items, _rng(seed, 2))
    rates = baseline_hit_rates(bundles, n_items, k=10, test_frac=0.2, seed=seed)

    iw, bw = len(str(n_items - 1)), len(str(n_bundles - 1))
    item_tok = [f"i{i:0{iw}d}" for i in range(n_items)]
    lines = ["bundle_id:token\titem_id:token"]
    for b, members in enumerate(bundles):
        lines += [f"b{b:0{bw}d}\t{item_tok[i]}" for i in members]
    atomic_write_text(out / f"{dataset}.inter", "\n".join(lines) + "\n")

    lines = ["item_id:token\ttitle:token_seq\tcategory:token\tstyle:token"]
    lines += [f"{tok}\t{it['title']}\t{it['category']}\t{it['style']}"
              for tok, it in zip(item_tok, items)]
    atomic_write_text(out / f"{dataset}.item", "\n".join(lines) + "\n")

    tokens = np.array(item_tok)
    note = ("SYNTHETIC: fixed random function of {} plus Gaussian noise, made by "
            "recbole_bundle.data.sample (seed={}); not derived from any real media.")
    for name, feats, miss, src in (
        ("visual", visual, missing, "(style, colour, category) one-hots"),
        ("text", text, np.zeros(n_items, dtype=bool), "the title's word vectors"),
    ):
        _save_npz_deterministic(out / f"{dataset}.feat_{name}.npz",
                                tokens=tokens, features=feats, missing=miss)
        meta = {"encoder": "synthetic", "dim": int(feats.shape[1]), "n_items": n_items,
                "n_missing": int(miss.sum()), "synthetic": True, "note": note.format(src, seed)}
        atomic_write_text(out / f"{dataset}.feat_{name}.json", _json_text(meta))

    item_style = np.array([STYLES.index(it["style"]) for it in items])
    atomic_write_text(out / "README.md", _readme(dataset, n_items, n_bundles, seed,
                                                 int(missing.sum()), bundles, item_style, rates))
    logger.info("wrote synthetic dataset %r to %s: %d items, %d bundles; HitRate@1 (K=10) "
                "random %.3f, pop %.3f, co-occurrence %.3f", dataset, out, n_items, n_bundles,
                rates["random"], rates["pop"], rates["cooccurrence"])
    return out


def _rgb(name: str) -> tuple[int, int, int]:
    """A fixed colour for a colour word (stable across runs and machines)."""
    digest = hashlib.sha1(name.encode()).digest()
    return digest[0], digest[1], digest[2]


def write_sample_media(out_dir: PathLike, n_items: int = 600, seed: int = 0, size: int = 32) -> Path:
    """Write ``<out_dir>/images/<item token>.png`` for the sample's items: the item's colour as the
    background and one band per category index (so images carry colour and category, like product
    photos). Items whose visual feature is flagged missing get no image. For running the visual
    feature command offline (``python -m recbole_bundle.features --modality=visual --images=...``)."""
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
            img[row : row + max(1, size // 16), size // 4 : 3 * size // 4] = _rgb(it["style"])
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
    parser.add_argument("--n-items", type=int, default=600)
    parser.add_argument("--n-bundles", type=int, default=1200)
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
