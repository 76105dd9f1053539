"""Ablation and analysis runners: one command each, each writing md/csv/tex tables (and PNGs).

    python -m recbole_bundle.studies --study=separator  --dataset=sample     # soft / hard / none
    python -m recbole_bundle.studies --study=stages     --dataset=sample     # S1->S2 / joint / S1 only / S2 only
    python -m recbole_bundle.studies --study=modalities --dataset=sample     # drop each modality in turn
    python -m recbole_bundle.studies --study=negatives  --dataset=sample --models=ItemKNN,LightGCN,CLHE,BundleMLLM
    python -m recbole_bundle.studies --study=k          --dataset=sample --models=... --ks=2,5,10,20,50
    python -m recbole_bundle.studies --study=ranking    --dataset=sample --retriever=LightGCN --reranker=BundleMLLM --top_n=20

Every run goes through :func:`run_recbole_bundle` (same split, seed and questions for all variants);
other ``--key=value`` arguments are config keys applied to every variant (e.g. a CPU budget:
``--train_questions_per_epoch=64 --test_max_questions=100``). Output: ``<out_dir>/<dataset>/<study>.*``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recbole_bundle.config import BundleConfig, parse_int_list
from recbole_bundle.errors import BundleConfigError, BundleError, cli_main  # noqa: F401
from recbole_bundle.quick_start import run_recbole_bundle, run_variants

STUDIES = ("separator", "stages", "modalities", "negatives", "k", "ranking")
STAGE_VARIANTS = {"S1->S2": ["s1", "s2"], "joint": ["joint"], "S1 only": ["s1"], "S2 only": ["s2"]}


def variants_for(study: str, dataset: str, models: Sequence[str], ks: Sequence[int], cmd_args: Sequence[str] = (),
                 config_dict: dict | None = None) -> list[tuple[str, str, dict]]:
    """The ``(label, model, overrides)`` list a study runs."""
    if study == "separator":
        return [(f"BundleMLLM separator={v}", "BundleMLLM", {"separator": v}) for v in ("soft", "hard", "none")]
    if study == "stages":
        return [(f"BundleMLLM {name}", "BundleMLLM", {"stages": stages}) for name, stages in STAGE_VARIANTS.items()]
    if study == "modalities":
        from recbole_bundle.config import BundleConfig

        names = list(BundleConfig("BundleMLLM", dataset, config_dict=config_dict, cmd_args=cmd_args)["modalities"] or [])
        if not names:
            raise BundleConfigError(f"the modalities study needs 'modalities' for {dataset} (dataset yaml or --modalities)")
        out = [(f"BundleMLLM all ({'+'.join(names)})", "BundleMLLM", {})]
        for drop in names:
            rest = [n for n in names if n != drop]
            extra = {"modalities": rest} if rest else {"use_fused_token": False, "stages": ["s1"]}
            out.append((f"BundleMLLM without {drop}" + ("" if rest else " (text only)"), "BundleMLLM", extra))
        return out
    if study == "negatives":
        return [(f"{m} ({s})", m, {"neg_strategy": s}) for m in models for s in ("uniform", "popularity", "hard")]
    if study == "k":
        return [(f"{m} K={k}", m, {"n_candidates": int(k)}) for m in models for k in ks]
    raise BundleConfigError(f"unknown study {study!r}; use one of {STUDIES}")


def k_study(dataset: str, models: Sequence[str], ks: Sequence[int], seeds: Sequence[int], out: Path,
            config_dict: dict | None, cmd_args: Sequence[str]) -> dict[str, Any]:
    """HitRate@1 for every model at every K: the long table, a model x K table and a PNG plot."""
    from recbole_bundle.plots import plot_metric_vs_k
    from recbole_bundle.tables import write_tables

    result = run_variants(variants_for("k", dataset, models, ks), dataset, seeds, config_dict=config_dict,
                          cmd_args=cmd_args, out_dir=out, name="k_runs")
    by_model: dict[str, dict[int, list[float]]] = {}
    for rec in result["records"]:
        model, k = rec["model"].rsplit(" K=", 1)
        by_model.setdefault(model, {}).setdefault(int(k), []).append(rec["metrics"]["hitrate@1"])
    pivot = [{"model": m, "seed": 0, "metrics": {f"K={k}": float(np.mean(v)) for k, v in sorted(ks_.items())}}
             for m, ks_ in by_model.items()]
    tables = write_tables(pivot, out, name="k", metrics=[f"K={k}" for k in ks])
    means = {m: {k: float(np.mean(v)) for k, v in ks_.items()} for m, ks_ in by_model.items()}
    png = plot_metric_vs_k(means, out / "k.png", title=f"HitRate@1 vs K on {dataset}")
    return {**result, "tables": tables, "plot": png}


def ranking_study(dataset: str, retriever: str, reranker: str, top_n: int, ks: Sequence[int], seed: int, out: Path,
                  config_dict: dict | None, cmd_args: Sequence[str]) -> dict[str, Any]:
    """The retriever ranks the whole catalogue for each test bundle; the reranker re-orders its top-N by
    letter scoring in chunks (tournament). Recall@K / NDCG@K of both against the held-out items."""
    from recbole_bundle.ranking import rank_bundles, ranking_metrics, bundles_of
    from recbole_bundle.tables import write_tables

    if max(ks) > top_n:
        raise BundleConfigError(f"--ks {list(ks)} go beyond --top_n={top_n}: the reranker only sees the top {top_n}")
    cfg = {**(config_dict or {}), "seed": seed}
    ret = run_recbole_bundle(retriever, dataset, config_dict=cfg, cmd_args=cmd_args)
    rer = run_recbole_bundle(reranker, dataset, config_dict=cfg, cmd_args=cmd_args)
    qs = ret["test_data"].questions
    rows, truths = bundles_of(qs)  # one ranking per test bundle, its held-out items relevant
    # the catalogue minus the partial bundle (shared with complete and the pipeline); any model can rerank
    retrieved, reranked = rank_bundles(ret["net"].eval(), qs, rows, top_n, rer["net"].eval())
    records = [
        {"model": f"{retriever} (retriever, top {top_n})", "seed": seed, "metrics": ranking_metrics(retrieved, truths, ks)},
        {"model": f"{retriever} -> {reranker} rerank", "seed": seed, "metrics": ranking_metrics(reranked, truths, ks)},
    ]
    tables = write_tables(records, out, name="ranking")
    return {"records": records, "tables": tables, "n_bundles": len(rows)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m recbole_bundle.studies", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("--study", required=True, choices=STUDIES)
    p.add_argument("--dataset", default="sample")
    p.add_argument("--models", default="ItemKNN,LightGCN,CLHE,BundleMLLM", help="negatives / k: comma-separated models")
    p.add_argument("--ks", default="2,5,10,20,50", help="k: candidate counts; ranking: cut-offs (default 5,10,20)")
    p.add_argument("--seeds", default="2020")
    p.add_argument("--retriever", default="LightGCN")
    p.add_argument("--reranker", default="BundleMLLM")
    p.add_argument("--top_n", type=int, default=20)
    p.add_argument("--out_dir", default="results/studies")
    args, rest = p.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = Path(args.out_dir) / args.dataset
    models = [m for m in args.models.split(",") if m]
    seeds = parse_int_list(args.seeds, "--seeds")
    if args.study == "ranking":
        ks = parse_int_list(args.ks if args.ks != p.get_default("ks") else "5,10,20", "--ks", minimum=1)
        return ranking_study(args.dataset, args.retriever, args.reranker, args.top_n, ks, seeds[0], out, None, rest)
    ks = parse_int_list(args.ks, "--ks", minimum=2)
    if args.study == "k":
        return k_study(args.dataset, models, ks, seeds, out, None, rest)
    variants = variants_for(args.study, args.dataset, models, ks, rest)
    if args.study == "modalities" and any(a.startswith("--modalities=") for a in rest):
        # --modalities chooses the set the study drops from; on the command line it would override every variant
        names = BundleConfig("BundleMLLM", args.dataset, cmd_args=rest)["modalities"]
        rest = [a for a in rest if not a.startswith("--modalities=")]
        variants[0] = (variants[0][0], variants[0][1], {**variants[0][2], "modalities": list(names)})
    return run_variants(variants, args.dataset, seeds, cmd_args=rest, out_dir=out, name=args.study)


if __name__ == "__main__":
    sys.exit(cli_main(lambda: sys.stdout.write(Path(main()["tables"]["md"]).read_text())))
