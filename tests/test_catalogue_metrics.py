"""Full-catalogue Recall@K / NDCG@K beside HitRate@1 (``catalogue_metrics``, CLHE's protocol) on the sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_bundle.data.dataloader import questions_to_interaction
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.quick_start import compare, run_recbole_bundle
from recbole_bundle.ranking import (catalogue_metrics, catalogue_scores, fit_itemknn, rank_bundles, ranking_metrics,
                                    bundles_of)

KS = [5, 10]


def _direct(ranked: np.ndarray, truths: list[set], ks: list[int]) -> dict[str, float]:
    """RecBole's Recall / NDCG classes on the same rankings, through their per-row metric_info."""
    from recbole.evaluator.metrics import NDCG, Recall

    pos_index = np.array([[int(i) in t for i in row[: max(ks)]] for row, t in zip(ranked, truths)], dtype=bool)
    pos_len = np.array([len(t) for t in truths])
    cfg = {"topk": ks, "metric_decimal_place": 4}
    out = {}
    for name, cls in (("recall", Recall), ("ndcg", NDCG)):
        per_row = cls(cfg).metric_info(pos_index, pos_len).mean(axis=0)
        out.update({f"{name}@{k}": round(float(per_row[k - 1]), 4) for k in ks})
    return out


class _ByIdReranker(torch.nn.Module):
    """A stub multiple-choice model: scores a candidate by minus its item id (the smallest id first)."""

    def score_candidates(self, interaction) -> torch.Tensor:
        from recbole_bundle.data.dataloader import CANDIDATES

        return -interaction[CANDIDATES].float()


@pytest.fixture(scope="module")
def itemknn_runs(tmp_path_factory):
    """ItemKNN on the sample with and without catalogue_metrics (one data folder, same questions)."""
    import shutil

    SAMPLE_DIR = Path(__file__).resolve().parents[1] / "dataset" / "sample"
    root = tmp_path_factory.mktemp("catm")
    shutil.copytree(SAMPLE_DIR, root / "data" / "sample", ignore=shutil.ignore_patterns("cache"))
    cfg = {"data_path": str(root / "data"), "checkpoint_dir": str(root / "saved"), "show_progress": False,
           "state": "WARNING"}
    with_key = run_recbole_bundle("ItemKNN", "sample", config_dict={**cfg, "catalogue_metrics": KS})
    without = run_recbole_bundle("ItemKNN", "sample", config_dict=cfg)
    return with_key, without


def test_catalogue_metrics_equal_recbole_metric_classes_on_the_same_rankings(itemknn_runs):
    result, _ = itemknn_runs
    net, qs = result["net"], result["test_data"].questions
    rows, truths = bundles_of(qs)
    assert len(rows) == len(set(int(b) for b in qs.bundle))  # one ranking per test bundle
    assert sum(len(t) for t in truths) == len(qs.bundle)  # every held-out item is relevant
    batch = questions_to_interaction(qs, rows, net.USER_ID)
    scores = catalogue_scores(net, batch).float().clone()
    scores[:, 0] = -torch.inf
    for r in range(len(rows)):
        scores[r, batch["partial"][r, : int(batch["partial_len"][r])]] = -torch.inf
    ranked = torch.argsort(scores, dim=1, descending=True, stable=True)[:, : max(KS)].numpy()
    expected = _direct(ranked, truths, KS)
    got = {k: v for k, v in result["test_result"].items() if k.startswith(("recall@", "ndcg@"))}
    assert got == pytest.approx(expected, abs=1e-4)
    assert set(got) == {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}
    assert got["recall@10"] > 0  # ItemKNN finds some held-out items on the sample


def test_partial_bundle_items_are_never_ranked(itemknn_runs):
    result, _ = itemknn_runs
    net, qs = result["net"], result["test_data"].questions
    rows, _ = bundles_of(qs)
    ranked, _ = rank_bundles(net, qs, rows, 50)
    batch = questions_to_interaction(qs, rows, net.USER_ID)
    for r in range(len(rows)):
        partial = set(batch["partial"][r, : int(batch["partial_len"][r])].tolist())
        assert not partial & set(ranked[r].tolist())
        assert 0 not in ranked[r]  # nor padding


def test_hitrate_is_unchanged_by_the_key(itemknn_runs):
    with_key, without = itemknn_runs
    assert with_key["test_result"]["hitrate@1"] == without["test_result"]["hitrate@1"]
    assert not any(k.startswith("recall@") for k in without["test_result"])


def test_reranker_reorders_the_itemknn_retrievers_top_n(itemknn_runs):
    result, _ = itemknn_runs
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.data.prepare import create_dataset, data_preparation

    cfg = BundleConfig("ItemKNN", "sample", config_dict={"data_path": str(Path(result["config"]["data_path"]).parent),
                                                     "state": "WARNING", "show_progress": False})
    train, _, test_data = data_preparation(cfg, create_dataset(cfg))  # the run's split (same seed)
    config = {**result["config"], "catalogue_metrics": KS, "catalogue_reranker_top_n": 12}
    got = catalogue_metrics(_ByIdReranker(), test_data, config, train.dataset)
    rows, truths = bundles_of(test_data.questions)
    retriever = fit_itemknn(result["config"], train.dataset)
    top, _ = rank_bundles(retriever, test_data.questions, rows, 12)
    expected = _direct(np.sort(top, axis=1), truths, KS)  # the stub puts the smallest item id first
    assert got == pytest.approx(expected, abs=1e-4)
    assert got["recall@10"] != pytest.approx(result["test_result"]["recall@10"])  # really reranked, not ItemKNN's order


def test_comparison_table_shows_the_catalogue_columns(run_config, tmp_path):
    out = compare(["Pop", "ItemKNN"], "sample", [2020], config_dict=run_config,
                  cmd_args=["--catalogue_metrics=[10,20]"], out_dir=tmp_path / "cmp")
    header = out["tables"]["md"].read_text().splitlines()[0]
    for col in ("HitRate@1", "Recall@10", "NDCG@10", "Recall@20", "NDCG@20"):
        assert col in header
    assert all("ndcg@20" in r["metrics"] for r in out["records"])


@pytest.mark.parametrize("extra,key", [({"catalogue_metrics": [10, 30], "catalogue_reranker_top_n": 20}, "catalogue_reranker_top_n"),
                                       ({"catalogue_metrics": [0, 10]}, "catalogue_metrics"),
                                       ({"catalogue_metrics": "ten"}, "catalogue_metrics")])
def test_bad_catalogue_keys_stop_before_training(run_config, extra, key):
    with pytest.raises(BundleConfigError, match=key):
        run_recbole_bundle("Pop", "sample", config_dict={**run_config, **extra})


def test_ranking_metrics_is_recbole_recall_and_ndcg():
    ranked = np.array([[3, 1, 2], [5, 6, 7]])
    truths = [{1, 9}, {7}]
    got = ranking_metrics(ranked, truths, [1, 3])
    assert got == pytest.approx(_direct(ranked, truths, [1, 3]))
    assert got["recall@3"] == pytest.approx((0.5 + 1.0) / 2)
    assert list(got) == ["recall@1", "ndcg@1", "recall@3", "ndcg@3"]
