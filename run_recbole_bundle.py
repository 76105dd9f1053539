"""Command line: train and evaluate one model, or compare several over seeds.

    python run_recbole_bundle.py --model=LightGCN --dataset=sample
    python run_recbole_bundle.py --model=Random,Pop,ItemKNN,BPR,LightGCN --dataset=ifashion --seeds=1,2,3
    python run_recbole_bundle.py --model=BPR --dataset=sample --config_files=my.yaml --n_candidates=20

Any other ``--key=value`` overrides that config key.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from recbole_bundle.errors import EXIT_INTERRUPTED, EXIT_USAGE, BundleError


def main(argv: list[str] | None = None) -> int:
    # allow_abbrev=False: '--seed=7' is the config key seed, never an abbreviation of --seeds
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--model", "-m", default="BundleMLLM", help="model name, or a comma-separated list to compare")
    parser.add_argument("--dataset", "-d", default="sample", help="dataset name (see dataset/README.md)")
    parser.add_argument("--config_files", default=None, help="space- or comma-separated yaml files")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds: run each model once per seed and write tables")
    parser.add_argument("--out_dir", default="results", help="where comparison tables and run logs go")
    parser.add_argument("--proposed", default="", help="comma-separated models whose gain over the best baseline is reported")
    parser.add_argument("--model_file", default=None,
                        help="test only: a saved run (saved/<run>.pth or a save_pretrained folder) answers the test "
                             "questions, no training; model, dataset and config come from it")
    args, rest = parser.parse_known_args(argv)

    from recbole_bundle import distributed
    from recbole_bundle.config import parse_int_list
    from recbole_bundle.quick_start import compare, run_recbole_bundle, save_curve

    files = args.config_files.replace(",", " ").split() if args.config_files else None
    models = [m for m in args.model.split(",") if m]
    try:
        if args.model_file:  # test only: the saved run's model answers its test questions
            from recbole_bundle.inference import evaluate_saved

            for key, value in evaluate_saved(args.model_file, cmd_args=rest)["test_result"].items():
                sys.stdout.write(f"{key}: {value}\n")
            return 0
        if not models:
            raise BundleError("--model is empty; give a model name, e.g. --model=LightGCN, or a list: --model=Pop,BPR")
        if len(models) > 1 or args.seeds:
            seeds = parse_int_list(args.seeds, "--seeds") if args.seeds else [2020]
            out = compare(models, args.dataset, seeds, files, cmd_args=rest, out_dir=args.out_dir,
                          proposed=[p for p in args.proposed.split(",") if p])
            sys.stdout.write(out["tables"]["md"].read_text())
        else:
            from recbole_bundle.summary import baseline_on_same_questions, format_summary

            start = time.perf_counter()
            result = run_recbole_bundle(models[0], args.dataset, files, cmd_args=rest)
            curve = None
            if len(result["curve"]) > 1 and distributed.is_main():  # validation curve beside the results
                curve = Path(args.out_dir) / "curves" / f"{args.dataset}_{models[0]}_seed{result['seed']}.png"
                save_curve(result["curve"], curve, f"{models[0]} on {args.dataset} (seed {result['seed']})",
                           result["config"]["valid_metric"])
            for key, value in result["test_result"].items():
                sys.stdout.write(f"{key}: {value}\n")
            baseline, why = None, None
            try:  # the same test questions answered by a classic baseline (every process: evaluation gathers)
                baseline = baseline_on_same_questions(result)
            except BundleError as e:
                why = str(e)
            if distributed.is_main():  # what a person reads: the result beside chance and the baseline
                sys.stdout.write("\n" + format_summary(result, baseline, curve if curve and curve.is_file() else None,
                                                        time.perf_counter() - start, why))
    except BundleError as e:  # usage / config / data error: one message, exit 2 (README "Bad input")
        sys.stderr.write(f"error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
