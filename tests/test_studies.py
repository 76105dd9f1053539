"""Ablation / K / ranking runners and plots on the shipped sample (tiny LLM, tiny budgets)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from recbole_bundle.studies import main as studies_main, variants_for



def _args(cfg: dict) -> list[str]:
    return [f"--{k}={v}" for k, v in cfg.items()]


def _rows(path) -> dict[str, dict]:
    """CSV rows by model, metric columns by metric name (their ``_mean``)."""
    with open(path) as f:
        return {r["model"]: {k[: -len("_mean")]: v for k, v in r.items() if k.endswith("_mean")} for r in csv.DictReader(f)}


def _png_ok(path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
        assert len(set(im.convert("L").getdata())) > 10  # not a blank canvas


@pytest.mark.parametrize("study,n", [("separator", 3), ("stages", 4), ("modalities", 4)])
def test_llm_ablation_runners_write_tables(study, n, mllm_config, tmp_path):
    cfg = {**mllm_config, "test_max_questions": 16}
    out = studies_main([f"--study={study}", "--dataset=sample", f"--out_dir={tmp_path / 'st'}", *_args(cfg)])
    rows = _rows(out["tables"]["csv"])
    assert len(rows) == n and all(0 <= float(r["hitrate@1"]) <= 1 for r in rows.values())
    for ext in ("md", "tex"):
        assert out["tables"][ext].is_file()
    if study == "modalities":  # visual, text, relational: all, then each dropped once
        assert set(rows) == {"BundleMLLM all (visual+text+relational)", "BundleMLLM without visual",
                             "BundleMLLM without text", "BundleMLLM without relational"}
    if study == "stages":  # trained runs leave a training curve per variant
        curves = sorted((tmp_path / "st" / "sample" / "curves").glob("*.png"))
        assert any("S1-_S2" in p.name or "S1-" in p.name for p in curves) and curves
        _png_ok(curves[0])


def test_modalities_study_with_a_single_modality_falls_back_to_text_only():
    variants = variants_for("modalities", "sample", [], [], ["--modalities=['visual']"])
    assert variants[-1] == ("BundleMLLM without visual (text only)", "BundleMLLM", {"use_fused_token": False, "stages": ["s1"]})


def test_negatives_study(run_config, tmp_path):
    out = studies_main(["--study=negatives", "--dataset=sample", "--models=ItemKNN", f"--out_dir={tmp_path}", *_args(run_config)])
    rows = _rows(out["tables"]["csv"])
    assert set(rows) == {"ItemKNN (uniform)", "ItemKNN (popularity)", "ItemKNN (hard)"}
    # harder negatives make the same model's questions harder
    assert float(rows["ItemKNN (uniform)"]["hitrate@1"]) > float(rows["ItemKNN (popularity)"]["hitrate@1"])


def test_k_study_table_and_plot(run_config, tmp_path):
    out = studies_main(["--study=k", "--dataset=sample", "--models=Random,ItemKNN", "--ks=2,5,20", f"--out_dir={tmp_path}",
                        *_args(run_config)])
    rows = _rows(out["tables"]["csv"])
    assert set(rows) == {"Random", "ItemKNN"}
    rnd = [float(rows["Random"][f"K={k}"]) for k in (2, 5, 20)]
    knn = [float(rows["ItemKNN"][f"K={k}"]) for k in (2, 5, 20)]
    assert rnd[0] > rnd[1] > rnd[2] and abs(rnd[0] - 0.5) < 0.1  # chance 1/K
    assert all(a > b for a, b in zip(knn, rnd))
    _png_ok(out["plot"])


def test_ranking_rerank_study(mllm_config, tmp_path):
    cfg = {**mllm_config, "epochs": 2}
    out = studies_main(["--study=ranking", "--dataset=sample", "--retriever=LightGCN", "--reranker=LLMZeroShot", "--top_n=12",
                        "--ks=5,12", f"--out_dir={tmp_path}", *_args(cfg)])
    rows = list(_rows(out["tables"]["csv"]).values())
    assert len(rows) == 2 and out["n_bundles"] > 10
    ret, rer = rows
    assert float(ret["recall@12"]) == pytest.approx(float(rer["recall@12"]))  # a reranking keeps the top-N set
    for r in rows:
        assert 0 <= float(r["recall@5"]) <= float(r["recall@12"]) <= 1 and 0 <= float(r["ndcg@5"]) <= 1
    assert float(ret["recall@12"]) > 12 / 480  # LightGCN retrieves better than chance (480 sample items)


def test_ranking_cutoffs_beyond_top_n_are_refused(run_config, tmp_path):
    from recbole_bundle.errors import BundleConfigError

    with pytest.raises(BundleConfigError, match="beyond --top_n"):
        studies_main(["--study=ranking", "--dataset=sample", "--top_n=5", "--ks=10", f"--out_dir={tmp_path}", *_args(run_config)])
