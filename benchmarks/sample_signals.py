"""How much each kind of signal in the shipped synthetic sample is worth, measured with simple scorers.

    python benchmarks/sample_signals.py                       # the shipped dataset/sample
    python benchmarks/sample_signals.py --folder=/tmp/s --test-frac=0.2

No learning and no LLM: on held-out bundles (the plugin's protocol: bundle-level split, the first half
of a shuffled eval bundle is the partial bundle, every other item is the positive of one question, K-1
uniform negatives from outside the bundle), HitRate@1 of

* ``random``; ``pop`` (training frequency);
* ``title``: IDF-weighted title-word overlap with the partial bundle (what a text-only model can read);
* ``cooccurrence``: summed cosine co-occurrence on the training graph, popularity tie-break (ItemKNN);
* ``visual``: cosine of the candidate's visual feature with the partial bundle's mean visual feature;
* ``title+cooccurrence``, ``title+visual``: the two scores, each divided by its largest value among the
  question's candidates, added (the signals are complementary when the sum beats both).

Ties count as a fractional hit. The sample is designed so that titles and relations each carry part of
the answer (``recbole_bundle/data/sample.py``); this script is how that design was checked, and
``tests/test_sample_data.py`` asserts its numbers. It reads only the dataset's files, so it also
runs on any dataset folder with titles (and a ``feat_visual.npz``).
"""

from __future__ import annotations

import argparse
import collections
import math
import re
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCORERS = ("random", "pop", "title", "cooccurrence", "visual", "title+cooccurrence", "title+visual")


def read_dataset(folder: Path, dataset: str = "sample"):
    """``(titles, bundles, visual)`` from a dataset folder: titles in item-row order, bundles as lists of
    item indices (in file order), the visual feature rows aligned to items (``None`` without the file)."""
    rows = (folder / f"{dataset}.item").read_text(encoding="utf-8").splitlines()[1:]
    tokens = [r.split("\t")[0] for r in rows]
    titles = [r.split("\t")[1] for r in rows]
    index = {t: k for k, t in enumerate(tokens)}
    bundles: Dict[str, List[int]] = {}
    for line in (folder / f"{dataset}.inter").read_text(encoding="utf-8").splitlines()[1:]:
        b, i = line.split("\t")[:2]
        bundles.setdefault(b, []).append(index[i])
    visual = None
    path = folder / f"{dataset}.feat_visual.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            pos = {t: k for k, t in enumerate(z["tokens"].tolist())}
            feats, missing = z["features"], z["missing"]
            visual = np.zeros((len(tokens), feats.shape[1]), np.float64)
            for k, t in enumerate(tokens):
                if t in pos and not missing[pos[t]]:
                    visual[k] = feats[pos[t]]
    return titles, list(bundles.values()), visual


def _hit(scores: np.ndarray, label: int) -> float:
    top = scores.max()
    return float(1.0 / np.sum(scores == top)) if scores[label] == top else 0.0


def _scaled(x: np.ndarray) -> np.ndarray:
    m = x.max()
    return x / m if m > 0 else np.zeros_like(x)


def signal_hit_rates(titles: Sequence[str], bundles: Sequence[Sequence[int]], visual: np.ndarray | None = None,
                     k: int = 10, test_frac: float = 0.1, seed: int = 0) -> Dict[str, float]:
    """HitRate@1 of each scorer in :data:`SCORERS` on the same questions (see the module docstring).

    ``test_frac`` of the bundles (by a seeded permutation) are the eval bundles; the training graph is
    every other bundle plus the eval bundles' partial items (as in the plugin's split).
    Returns ``{scorer: hit rate, ..., "questions": count}``.
    """
    n = len(titles)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(bundles))
    n_test = max(1, int(round(test_frac * len(bundles))))
    questions = []  # (partial, candidates, label)
    graph = [list(bundles[b]) for b in order[n_test:]]
    for b in order[:n_test]:
        items = rng.permutation(np.asarray(bundles[b]))
        n_in = min(len(items) - 1, max(1, len(items) // 2))
        partial, held = items[:n_in], items[n_in:]
        graph.append(list(partial))
        outside = np.setdiff1d(np.arange(n), items)
        for pos in held:
            cands = np.concatenate([[pos], rng.choice(outside, k - 1, replace=False)])
            perm = rng.permutation(k)
            questions.append((partial, cands[perm], int(np.flatnonzero(perm == 0)[0])))

    inc = np.zeros((len(graph), n))
    for r, g in enumerate(graph):
        inc[r, g] = 1.0
    pop = inc.sum(0)
    co = inc.T @ inc
    np.fill_diagonal(co, 0.0)
    norm = np.sqrt(np.maximum(pop, 1.0))
    cos = co / norm[:, None] / norm[None, :]
    words = [set(re.findall(r"[a-z0-9-]+", t.lower())) for t in titles]
    df = collections.Counter(w for ws in words for w in ws)
    idf = {w: math.log(n / (1 + c)) for w, c in df.items()}
    vis = None
    if visual is not None:
        nrm = np.linalg.norm(visual, axis=1, keepdims=True)
        vis = np.divide(visual, nrm, out=np.zeros_like(visual), where=nrm > 0)

    hits = collections.defaultdict(float)
    for partial, cands, label in questions:
        bag = collections.Counter(w for i in partial for w in words[i])
        title = np.array([sum(idf[w] * bag[w] for w in words[c]) for c in cands])
        cooc = cos[np.ix_(partial, cands)].sum(0)
        tie = 1e-9 * pop[cands]
        hits["random"] += _hit(rng.random(k), label)
        hits["pop"] += _hit(pop[cands], label)
        hits["title"] += _hit(title, label)
        hits["cooccurrence"] += _hit(cooc + tie, label)
        hits["title+cooccurrence"] += _hit(_scaled(title) + _scaled(cooc) + tie, label)
        if vis is not None:
            v = vis[cands] @ vis[partial].mean(0)
            hits["visual"] += _hit(v, label)
            hits["title+visual"] += _hit(_scaled(title) + _scaled(v - v.min()), label)
    out = {name: hits[name] / len(questions) for name in SCORERS if name in hits}
    out["questions"] = len(questions)
    return out


def main(argv: Sequence[str] | None = None) -> Dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", default=str(ROOT / "dataset" / "sample"))
    p.add_argument("--dataset", default="sample")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--test-frac", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    titles, bundles, visual = read_dataset(Path(args.folder), args.dataset)
    rates = signal_hit_rates(titles, bundles, visual, k=args.k, test_frac=args.test_frac, seed=args.seed)
    print(f"{args.dataset}: {len(titles)} items, {len(bundles)} bundles, {rates['questions']} questions, "
          f"K={args.k} (chance {1 / args.k:.3f})")
    print("| scorer | HitRate@1 |\n|---|---|")
    for name in SCORERS:
        if name in rates:
            print(f"| {name} | {rates[name]:.3f} |")
    return rates


if __name__ == "__main__":
    main()
