"""HitRate@1 of the LLM models beside classic baselines on the SAME fixed questions.

    python benchmarks/llm_vs_baselines.py --dataset=debian-meta --test-max-questions=200
    python benchmarks/llm_vs_baselines.py --dataset=ifashion --test-max-questions=300 --variants=LightGCN,ItemKNN,LLMTextLoRA,BundleMLLM
    python benchmarks/llm_vs_baselines.py --dataset=debian-meta --scoring=candidate   # small backbones

Any further ``--key=value`` is a config override passed to every run (e.g. ``--scoring=candidate``,
``--s2_learning_rate=0.01``).

Every variant goes through run_recbole_bundle with the same seed, split and (sub)set of test questions
(``test_max_questions`` draws a fixed random subset, identical for every model). Writes md/csv/tex
tables and a JSONL run log to --out. CPU budget knobs: --train-questions (per epoch and stage),
--epochs (per stage), --valid-max-questions.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from recbole_bundle.quick_start import run_recbole_bundle
from recbole_bundle.tables import append_run_log, write_tables

VARIANTS = {
    "Random": ("Random", {}),
    "Pop": ("Pop", {}),
    "ItemKNN": ("ItemKNN", {}),
    "LightGCN": ("LightGCN", {}),
    "LLMZeroShot": ("LLMZeroShot", {}),
    "LLMTextLoRA (=S1 only)": ("LLMTextLoRA", {}),
    "BundleMLLM S1->S2": ("BundleMLLM", {"stages": ["s1", "s2"]}),
    "BundleMLLM joint": ("BundleMLLM", {"stages": ["joint"]}),
}
ALIASES = {"LLMTextLoRA": "LLMTextLoRA (=S1 only)", "BundleMLLM": "BundleMLLM S1->S2", "joint": "BundleMLLM joint"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="sample")
    p.add_argument("--variants", default="ItemKNN,LightGCN,LLMZeroShot,LLMTextLoRA,BundleMLLM,joint")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--test-max-questions", type=int, default=200)
    p.add_argument("--valid-max-questions", type=int, default=64)
    p.add_argument("--train-questions", type=int, default=160)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--llm", default="smollm2-135m-instruct")
    p.add_argument("--out", default="results/benchmarks")
    args, rest = p.parse_known_args()
    logging.basicConfig(level=logging.INFO)

    out = Path(args.out) / args.dataset
    records = []
    common = {"seed": args.seed, "test_max_questions": args.test_max_questions, "show_progress": False}
    llm_cfg = {"llm_name_or_path": args.llm, "train_questions_per_epoch": args.train_questions,
               "valid_max_questions": args.valid_max_questions, "epochs": args.epochs}
    for name in args.variants.split(","):
        label = ALIASES.get(name, name)
        model, extra = VARIANTS[label]
        cfg = {**common, **extra, **(llm_cfg if model.startswith(("LLM", "Bundle")) else {})}
        start = time.perf_counter()
        result = run_recbole_bundle(model, args.dataset, config_dict=cfg, cmd_args=rest)
        seconds = time.perf_counter() - start
        record = {"model": label, "seed": args.seed, "metrics": {**result["test_result"], "seconds": round(seconds, 1)}}
        records.append(record)
        append_run_log(out / "runs.jsonl", {**record, "config": result["config"]})
        logging.info("%s: %s (%.0f s)", label, result["test_result"], seconds)
        tables = write_tables(records, out, name="llm_vs_baselines", metrics=["hitrate@1", "validratio", "hitrate@1(valid)", "seconds"],
                              smaller_is_better={"seconds"})
    print(tables["md"].read_text())


if __name__ == "__main__":
    main()
