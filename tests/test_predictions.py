"""save_predictions: every test answer on disk, one row per question, agreeing with the reported HitRate@1."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_bundle.model.itemknn import ItemKNN
from recbole_bundle.quick_start import run_recbole_bundle


def _rows(checkpoint_dir: Path) -> list[dict]:
    (path,) = glob.glob(str(checkpoint_dir / "*.test_predictions.jsonl"))
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _titles(data_root: Path) -> dict[str, str]:
    lines = (data_root / "sample" / "sample.item").read_text(encoding="utf-8").splitlines()[1:]
    return {cols[0]: cols[1] for cols in (line.split("\t") for line in lines)}


@pytest.mark.parametrize("model", ["ItemKNN", "BPR"])
def test_predictions_file_matches_the_reported_hitrate(run_config, tmp_path, data_root, model):
    result = run_recbole_bundle(model, "sample", config_dict=dict(run_config, save_predictions=True, epochs=1))
    rows = _rows(tmp_path / "saved")
    questions = result["test_data"].questions
    assert [r["question"] for r in rows] == list(range(len(questions)))  # one row per test question, in order
    hits = [r["hit"] for r in rows]
    assert round(sum(hits) / len(hits), 4) == result["test_result"]["hitrate@1"]
    titles = _titles(data_root)
    ds = result["test_data"].dataset
    for r, label, cands in zip(rows, questions.label, questions.candidates):
        assert r["label"] == int(label)
        assert r["candidates"] == [str(t) for t in ds.id2token(ds.iid_field, cands)]
        assert r["candidate_titles"] == [titles[t] for t in r["candidates"]]
        assert len(r["scores"]) == len(r["candidates"]) == 10
        assert r["answer"] == int(np.argmax(r["scores"])) and r["hit"] == (r["answer"] == r["label"])
        assert r["bundle"] and 1 <= len(r["partial"])
    if model == "BPR":  # trained: the file sits beside the checkpoint, named after it
        assert Path(result["checkpoint"]).with_suffix(".test_predictions.jsonl").exists()


def test_invalid_answers_are_written_as_misses(run_config, tmp_path, monkeypatch):
    """A question the model cannot answer (all-NaN scores) has answer null and scores null, and
    counts as a miss, exactly as HitRate@1 counts it."""
    original = ItemKNN.predict

    def half_invalid(self, pairs):  # (bundle, candidate) pairs, K=10 per question
        scores = original(self, pairs).clone().float()
        scores.view(-1, 10)[::2] = torch.nan  # every other question: no valid answer
        return scores

    monkeypatch.setattr(ItemKNN, "predict", half_invalid)
    result = run_recbole_bundle("ItemKNN", "sample", config_dict=dict(run_config, save_predictions=True))
    rows = _rows(tmp_path / "saved")
    invalid = [r for r in rows if r["answer"] is None]
    assert invalid and all(r["hit"] is False and r["scores"] == [None] * 10 for r in invalid)
    assert round(sum(r["hit"] for r in rows) / len(rows), 4) == result["test_result"]["hitrate@1"]
    assert round(1 - len(invalid) / len(rows), 4) == result["test_result"]["validratio"]


def test_no_file_without_save_predictions_and_never_for_validation(run_config, tmp_path, monkeypatch):
    run_recbole_bundle("ItemKNN", "sample", config_dict=dict(run_config))
    assert not glob.glob(str(tmp_path / "saved" / "*.jsonl"))
    from recbole_bundle.trainer import ChoiceTrainer

    written = []
    original = ChoiceTrainer.write_predictions
    monkeypatch.setattr(ChoiceTrainer, "write_predictions",
                        lambda self, data, path: written.append(len(data.questions)) or original(self, data, path))
    result = run_recbole_bundle("BPR", "sample", config_dict=dict(run_config, save_predictions=True, epochs=2))
    assert written == [len(result["test_data"].questions)]  # two validations, one test: written once, for the test
