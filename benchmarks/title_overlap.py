"""A no-learning reference for title-based models: IDF-weighted word overlap between a candidate's title
and the partial bundle's titles, on the same questions the models answer.

    python benchmarks/title_overlap.py --dataset=debian-meta --test-max-questions=150

Tells how much of a dataset's signal is plain lexical overlap (debian-meta: package names share
prefixes), i.e. what a text-only LLM can reach by learning to match words. Same seed, split and
question subset as ``llm_vs_baselines.py``.
"""

from __future__ import annotations

import argparse
import collections
import math
import re

import numpy as np

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.prepare import create_dataset, data_preparation


def overlap_hit_rate(dataset_name: str, config_dict: dict) -> tuple[float, int]:
    """HitRate@1 and question count of IDF-weighted word overlap (ties broken at random, seeded)."""
    cfg = BundleConfig("ItemKNN", dataset_name, config_dict=config_dict)
    ds = create_dataset(cfg)
    _, _, test = data_preparation(cfg, ds)
    words = [set(re.findall(r"[a-z0-9]+", t.lower())) for t in ds.item_titles()]
    df = collections.Counter(w for ws in words for w in ws)
    idf = {w: math.log(len(words) / (1 + c)) for w, c in df.items()}
    rng = np.random.default_rng(int(cfg["seed"]))
    hits = n = 0
    for batch in test:
        partial, plen, cands, label = (batch[k].numpy() for k in ("partial", "partial_len", "candidates", "label"))
        for b in range(len(cands)):
            bag = collections.Counter(w for i in partial[b, : plen[b]] for w in words[i])
            scores = [sum(idf[w] * bag[w] for w in words[c]) for c in cands[b]]
            scores = np.asarray(scores) + 1e-9 * rng.random(len(scores))
            hits += int(np.argmax(scores) == label[b])
            n += 1
    return hits / max(n, 1), n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="debian-meta")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--test-max-questions", type=int, default=150)
    p.add_argument("--data_path", default=None)
    args = p.parse_args()
    cfg = {"seed": args.seed, "test_max_questions": args.test_max_questions, "show_progress": False}
    if args.data_path:
        cfg["data_path"] = args.data_path
    rate, n = overlap_hit_rate(args.dataset, cfg)
    print(f"{args.dataset}: IDF title-word overlap HitRate@1 = {rate:.4f} on {n} test questions (chance {1 / 10:.2f} at K=10)")


if __name__ == "__main__":
    main()
