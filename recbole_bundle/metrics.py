"""Multiple-choice metrics, registered with RecBole's evaluator so ``metrics: [HitRate@1, ...]`` works.

Every metric reads two boolean tensors from the evaluator's DataStruct, one entry per question:
``choice.hit`` (the chosen letter is the positive) and ``choice.valid`` (an answer could be parsed;
always true under letter scoring).
"""

from __future__ import annotations

import re

from recbole.evaluator import register
from recbole.evaluator.base_metric import AbstractMetric
from recbole.utils import EvaluatorType

HIT_KEY = "choice.hit"
VALID_KEY = "choice.valid"


class _ChoiceMetric(AbstractMetric):
    metric_type = EvaluatorType.RANKING
    metric_need = [HIT_KEY, VALID_KEY]
    smaller = False
    name = ""

    def calculate_metric(self, dataobject) -> dict:
        hit = dataobject.get(HIT_KEY).bool()
        valid = dataobject.get(VALID_KEY).bool()
        return {self.name: round(float(self.value(hit, valid)), self.decimal_place)}

    @staticmethod
    def value(hit, valid) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class HitRateAt1(_ChoiceMetric):
    """Correct answers / all questions; an invalid answer counts as a miss."""

    name = "hitrate@1"

    @staticmethod
    def value(hit, valid) -> float:
        return (hit & valid).float().mean().item() if len(hit) else 0.0


class ValidRatio(_ChoiceMetric):
    """Parseable answers / all questions (1.0 under letter scoring)."""

    name = "validratio"

    @staticmethod
    def value(hit, valid) -> float:
        return valid.float().mean().item() if len(valid) else 0.0


class HitRateAt1Valid(_ChoiceMetric):
    """Correct answers / valid answers: the Bundle-MLLM paper's definition, for comparison with it."""

    name = "hitrate@1(valid)"

    @staticmethod
    def value(hit, valid) -> float:
        n_valid = int(valid.sum())
        return (hit & valid).sum().item() / n_valid if n_valid else 0.0


CHOICE_METRICS = (HitRateAt1, ValidRatio, HitRateAt1Valid)


def register_metrics() -> None:
    """Add the choice metrics to RecBole's metric registry (idempotent).

    RecBole builds its registry by scanning ``recbole.evaluator.metrics``; Config, Collector and
    Evaluator all read the same dicts, so adding entries to them is enough.
    """
    for cls in CHOICE_METRICS:
        register.metrics_dict[cls.name] = cls
        register.metric_information[cls.name] = cls.metric_need
        register.metric_types[cls.name] = cls.metric_type


#: Lower-case metric stems and how tables and messages spell them; anything else is shown as given.
METRIC_DISPLAY: dict[str, str] = {"hitrate": "HitRate", "validratio": "ValidRatio", "recall": "Recall", "ndcg": "NDCG"}
_STEM = re.compile(r"^([A-Za-z_]+)(.*)$", re.DOTALL)


def display_metric_name(metric: str) -> str:
    """``hitrate@1`` -> ``HitRate@1``, ``validratio`` -> ``ValidRatio``, ``recall@10`` -> ``Recall@10``, ``ndcg@10`` -> ``NDCG@10``, others unchanged."""
    m = _STEM.match(metric)
    if m is None:
        return metric
    stem, rest = m.groups()
    return METRIC_DISPLAY.get(stem, stem) + rest
