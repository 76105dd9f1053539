"""HitRate@1, ValidRatio and HitRate@1(valid) as RecBole metrics."""

import pytest
import torch
from recbole.evaluator import Evaluator
from recbole.evaluator.collector import DataStruct

from recbole_bundle.config import BundleConfig
from recbole_bundle.metrics import HIT_KEY, VALID_KEY


@pytest.fixture
def evaluator(data_root):
    config = BundleConfig("Pop", "sample", config_dict={"data_path": str(data_root), "state": "WARNING"})
    assert config["metrics"] == ["HitRate@1", "ValidRatio", "HitRate@1(valid)"]
    assert config["valid_metric"] == "HitRate@1"
    return Evaluator(config)


def evaluate(evaluator, hit, valid):
    s = DataStruct()
    s.set(HIT_KEY, torch.tensor(hit))
    s.set(VALID_KEY, torch.tensor(valid))
    return evaluator.evaluate(s)


def test_all_valid(evaluator):
    r = evaluate(evaluator, [True, False, True, False], [True] * 4)
    assert r == {"hitrate@1": 0.5, "validratio": 1.0, "hitrate@1(valid)": 0.5}


def test_invalid_answers_are_misses_but_not_in_valid_denominator(evaluator):
    # 5 questions: 2 correct, 1 "hit" flagged invalid (cannot count), 2 invalid in all
    r = evaluate(evaluator, [True, True, True, False, False], [True, True, False, True, False])
    assert r["hitrate@1"] == pytest.approx(2 / 5)
    assert r["validratio"] == pytest.approx(3 / 5)
    assert r["hitrate@1(valid)"] == pytest.approx(2 / 3, abs=1e-4)


def test_no_valid_answers(evaluator):
    r = evaluate(evaluator, [False, False], [False, False])
    assert r == {"hitrate@1": 0.0, "validratio": 0.0, "hitrate@1(valid)": 0.0}
