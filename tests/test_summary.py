"""The summary a single CLI run ends with: the model's HitRate@1 beside chance and beside ItemKNN on the
SAME test questions."""

import subprocess
import sys

import numpy as np
import pytest

from recbole_bundle import summary
from recbole_bundle.data.questions import QuestionSet
from recbole_bundle.errors import BundleError
from recbole_bundle.quick_start import run_recbole_bundle
from tests.conftest import ROOT


class _Loader:
    def __init__(self, n: int) -> None:
        z = np.zeros(n, dtype=np.int64)
        self.questions = QuestionSet(z, z[:, None], z + 1, np.zeros((n, 10), dtype=np.int64), z)


def _result(model: str, hr: float, n: int = 200) -> dict:
    return {"model": model, "dataset": "sample", "seed": 2020, "test_data": _Loader(n),
            "config": {"n_candidates": 10, "neg_strategy": "uniform"},
            "test_result": {"hitrate@1": hr, "validratio": 1.0, "hitrate@1(valid)": hr}}


def test_summary_puts_the_result_beside_chance_and_the_baseline(tmp_path):
    text = summary.format_summary(_result("BundleMLLM", 0.43), _result("ItemKNN", 0.40), tmp_path / "c.png", 371.0)
    lines = text.splitlines()
    assert lines[0] == "==== BundleMLLM on sample: 200 test questions, K=10 (uniform negatives), seed 2020 ===="
    assert lines[1].split() == ["BundleMLLM", "HitRate@1", "0.430", "+-", "0.035", "4.3x", "chance"]
    assert lines[2].split()[:3] == ["ItemKNN", "HitRate@1", "0.400"] and "same questions" in lines[2]
    assert lines[3].split() == ["chance", "HitRate@1", "0.100", "1/K"]
    assert lines[4] == "BundleMLLM is 0.030 above ItemKNN (6 more correct answers of 200)."
    assert lines[5] == f"validation curve: {tmp_path / 'c.png'}"
    assert lines[6] == "training, testing and the baseline took 6 min 11 s"
    below = summary.format_summary(_result("Pop", 0.2), _result("ItemKNN", 0.4))
    assert "Pop is 0.200 below ItemKNN (40 fewer correct answers of 200)." in below
    missing = summary.format_summary(_result("Pop", 0.2), None, baseline_error="no titles")
    assert "(no ItemKNN comparison: no titles)" in missing and "ItemKNN   " not in missing


def test_baseline_answers_exactly_the_same_questions(run_config):
    cfg = {**run_config, "n_candidates": 5, "seed": 7}
    pop = run_recbole_bundle("Pop", "sample", config_dict=cfg)
    knn = summary.baseline_on_same_questions(pop)
    assert knn["model"] == "ItemKNN" and summary.same_questions(pop["test_data"], knn["test_data"])
    assert knn["test_data"].questions.candidates.shape[1] == 5
    assert knn["test_result"]["hitrate@1"] > pop["test_result"]["hitrate@1"]  # co-occurrence beats popularity here
    assert summary.baseline_on_same_questions(knn) is None  # the baseline is not compared with itself


def test_a_baseline_on_other_questions_is_refused(run_config, monkeypatch):
    pop = run_recbole_bundle("Pop", "sample", config_dict={**run_config, "n_candidates": 5})
    monkeypatch.setattr(summary, "SAME_QUESTION_KEYS", tuple(k for k in summary.SAME_QUESTION_KEYS if k != "n_candidates"))
    with pytest.raises(BundleError, match="same test questions"):
        summary.baseline_on_same_questions(pop)


def test_cli_single_run_ends_with_the_summary(tmp_path, data_root):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_recbole_bundle.py"), "--model=Pop", "--dataset=sample", f"--data_path={data_root}",
         "--show_progress=False", "--state=WARNING", "--n_candidates=5"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics, block = proc.stdout.split("\n\n")
    hr = float(dict(line.split(": ") for line in metrics.splitlines())["hitrate@1"])
    lines = block.splitlines()
    assert lines[0].startswith("==== Pop on sample: ") and "K=5 (uniform negatives)" in lines[0]
    assert lines[1].split()[:3] == ["Pop", "HitRate@1", f"{hr:.3f}"]
    assert lines[2].startswith("ItemKNN ") and lines[3].split()[:3] == ["chance", "HitRate@1", "0.200"]
    assert "below ItemKNN" in lines[4]
