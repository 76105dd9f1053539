"""Tune each classic baseline's key hyper-parameters on VALIDATION HitRate@1, then report test at the choice.

    python benchmarks/tune_baselines.py --dataset=debian-meta --seeds=2020
    python benchmarks/tune_baselines.py --dataset=ifashion --models=ItemKNN,LightGCN --seeds=2020

A comparison against a weakened baseline means nothing: every grid point runs through the one pipeline
(``run_recbole_bundle``) on the same split and the same fixed questions, the point with the best mean
valid HitRate@1 over ``--seeds`` is chosen (never test), and its test HitRate@1 is reported beside the
yaml default's. The grids (the stated budget) are :data:`GRIDS`; a plain grid is all this needs
(RecBole's ``HyperTuning`` adds hyperopt and ray for the same loop). Writes ``<out>/<dataset>_tuned.md``
and ``<dataset>_tuned.json`` (the chosen values per model).
Any further ``--key=value`` is a config override for every run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np

from recbole_bundle.quick_start import run_recbole_bundle

#: model -> {key: values}; the yaml default is always one of the points.
GRIDS: dict[str, dict[str, list]] = {
    "ItemKNN": {"k": [50, 100, 200, None], "shrink": [0.0, 10.0]},
    "BPR": {"learning_rate": [1e-3, 5e-3, 1e-2], "embedding_size": [64]},
    "LightGCN": {"learning_rate": [1e-3, 5e-3, 1e-2], "n_layers": [1, 2, 3]},
    "CLHE": {"learning_rate": [1e-3, 3e-3], "cl_alpha": [0.1, 0.5]},
}


def points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def tune(model: str, dataset: str, seeds: list[int], overrides: dict, cmd_args: list[str]) -> list[dict]:
    """Valid and test HitRate@1 (mean over seeds) of every grid point of ``model``."""
    rows = []
    for point in points(GRIDS[model]):
        valid, test, start = [], [], time.perf_counter()
        for seed in seeds:
            res = run_recbole_bundle(model, dataset, config_dict={**overrides, **point, "seed": seed}, cmd_args=cmd_args)
            valid.append(float(res["best_valid_score"]))
            test.append(float(res["test_result"]["hitrate@1"]))
        rows.append({"model": model, "point": point, "valid": float(np.mean(valid)), "test": float(np.mean(test)),
                     "test_std": float(np.std(test)), "seconds": round(time.perf_counter() - start, 1)})
        logging.info("%s %s: valid %.4f test %.4f", model, point, rows[-1]["valid"], rows[-1]["test"])
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--dataset", default="debian-meta")
    p.add_argument("--models", default="ItemKNN,BPR,LightGCN,CLHE")
    p.add_argument("--seeds", default="2020")
    p.add_argument("--out", default="results/tuning")
    args, rest = p.parse_known_args()
    logging.basicConfig(level=logging.INFO)
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = {"show_progress": False, "state": "WARNING"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Baseline tuning on {args.dataset} (valid HitRate@1 chooses; seeds {args.seeds})", "",
             "| model | chosen (by valid) | valid | test | all points (valid / test) |", "|---|---|---|---|---|"]
    chosen = {}
    for model in args.models.split(","):
        rows = tune(model, args.dataset, seeds, overrides, rest)
        best = max(rows, key=lambda r: r["valid"])
        chosen[model] = best["point"]
        every = "; ".join(f"{json.dumps(r['point'])}: {r['valid']:.3f} / {r['test']:.3f}" for r in rows)
        lines.append(f"| {model} | `{json.dumps(best['point'])}` | {best['valid']:.4f} | {best['test']:.4f} ± {best['test_std']:.4f} | {every} |")
    (out / f"{args.dataset}_tuned.md").write_text("\n".join(lines) + "\n")
    (out / f"{args.dataset}_tuned.json").write_text(json.dumps(chosen, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
