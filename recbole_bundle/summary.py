"""The at-a-glance summary a single CLI run ends with: HitRate@1 beside chance and a classic baseline.

A HitRate@1 alone says little: 0.3 is strong at K=50 and weak at K=2, and a model that loses to plain
co-occurrence has not learned much. So after a single run the CLI answers the SAME test questions with
ItemKNN (fitted in seconds; the questions are fixed per data, split, seed, K and negative strategy, and
:func:`baseline_on_same_questions` checks they are identical) and prints::

    ==== BundleMLLM on sample: 186 test questions, K=10 (uniform negatives), seed 2020 ====
    BundleMLLM   HitRate@1 0.430 +- 0.036   4.3x chance
    ItemKNN      HitRate@1 0.392 +- 0.036   classic baseline, same questions
    chance       HitRate@1 0.100            1/K
    BundleMLLM is 0.038 above ItemKNN (4 more correct answers of 186).
    validation curve: results/curves/sample_BundleMLLM_seed2020.png
    training, testing and the baseline took 6 min 10 s
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recbole_bundle.errors import BundleError

logger = logging.getLogger(__name__)

BASELINE = "ItemKNN"
# config keys that decide which test questions a run answers (data, split, questions) or where it
# reads and writes; the baseline run copies them from the finished run so it answers the same questions
SAME_QUESTION_KEYS = (
    "data_path", "seed", "reproducibility", "split_seed", "question_seed", "question_cache",
    "bundle_split", "bundle_split_ratio", "eval_input_ratio", "min_bundle_size", "rm_dup_inter",
    "n_candidates", "neg_strategy", "neg_pop_alpha", "hard_neg_pool", "hard_neg_feature",
    "test_max_questions", "valid_max_questions", "raw_format", "raw_data_path", "raw_pairs_file",
    "raw_titles_file", "checkpoint_dir", "state", "show_progress", "use_gpu", "gpu_id",
)


def same_questions(a, b) -> bool:
    """Whether two test loaders serve exactly the same questions (partial bundles, candidates, answers)."""
    qa, qb = getattr(a, "questions", None), getattr(b, "questions", None)
    if qa is None or qb is None:
        return False
    return all(np.array_equal(x, y) for x, y in zip(qa.arrays().values(), qb.arrays().values()))


def baseline_on_same_questions(result: dict[str, Any], baseline: str = BASELINE) -> dict[str, Any] | None:
    """Run ``baseline`` on the test questions ``result`` (a :func:`run_recbole_bundle` result) answered.

    Returns the baseline's result, or ``None`` when ``result`` is the baseline itself. Raises
    :class:`BundleError` when the baseline cannot run on the dataset or answered other questions (it
    never reports a comparison over different questions). Every process of a torchrun launch must call
    it (the evaluation gathers across processes).
    """
    from recbole_bundle.quick_start import run_recbole_bundle

    if result["model"] == baseline:
        return None
    config = result["config"]
    overrides = {k: config[k] for k in SAME_QUESTION_KEYS if config.get(k) is not None}
    if "data_path" in overrides:  # RecBole stores <data_path>/<dataset> in the final config
        path = Path(overrides["data_path"])
        overrides["data_path"] = str(path.parent if path.name == result["dataset"] else path)
    logger.info("answering the same %s test questions with %s for the summary", result["dataset"], baseline)
    other = run_recbole_bundle(baseline, result["dataset"], config_dict=overrides, saved=False)
    if not same_questions(result.get("test_data"), other.get("test_data")):
        raise BundleError(f"{baseline} did not get the same test questions as {result['model']} "
                          f"(a config key that changes the questions is missing from summary.SAME_QUESTION_KEYS)")
    return other


def _stderr(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), 0.0) / n) if n else float("nan")


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def format_summary(result: dict[str, Any], baseline: dict[str, Any] | None = None,
                   curve: Path | None = None, seconds: float | None = None,
                   baseline_error: str | None = None) -> str:
    """The summary block (several lines, ending with a newline) for a finished single run.

    ``result``/``baseline``: :func:`run_recbole_bundle` results on the same test questions (``baseline``
    ``None``: not run, then ``baseline_error`` says why, or the model is the baseline itself);
    ``curve``: the validation-curve PNG, if one was written; ``seconds``: wall time of the whole command.
    """
    cfg = result["config"]
    k = int(cfg["n_candidates"])
    test = result["test_result"]
    n = len(result["test_data"].questions) if result.get("test_data") is not None else 0
    chance = 1.0 / k
    hr = float(test["hitrate@1"])
    name = result["model"]
    rows: list[Sequence[str]] = [
        (name, f"HitRate@1 {hr:.3f} +- {_stderr(hr, n):.3f}", f"{hr / chance:.1f}x chance"),
    ]
    if "validratio" in test and float(test["validratio"]) < 1.0:
        rows[0] = (*rows[0][:2], f"{rows[0][2]}, {float(test['validratio']):.0%} of answers parseable")
    base_hr = None
    if baseline is not None:
        base_hr = float(baseline["test_result"]["hitrate@1"])
        rows.append((baseline["model"], f"HitRate@1 {base_hr:.3f} +- {_stderr(base_hr, n):.3f}",
                     "classic baseline, same questions"))
    rows.append(("chance", f"HitRate@1 {chance:.3f}", "1/K"))
    width = max(len(r[0]) for r in rows)
    lines = [f"==== {name} on {result['dataset']}: {n} test questions, K={k} ({cfg['neg_strategy']} negatives), "
             f"seed {result['seed']} ===="]
    lines += [f"{a:<{width}}   {b:<26}{c}".rstrip() for a, b, c in rows]
    if base_hr is not None:
        more = int(round((hr - base_hr) * n))
        if more == 0:
            lines.append(f"{name} and {baseline['model']} answer equally many of the {n} questions right.")
        else:
            lines.append(f"{name} is {abs(hr - base_hr):.3f} {'above' if more > 0 else 'below'} {baseline['model']} "
                         f"({abs(more)} {'more' if more > 0 else 'fewer'} correct answers of {n}).")
    elif baseline_error:
        lines.append(f"(no {BASELINE} comparison: {baseline_error})")
    if curve is not None:
        lines.append(f"validation curve: {curve}")
    if seconds is not None:
        lines.append(f"training, testing and the baseline took {_duration(seconds)}")
    return "\n".join(lines) + "\n"
