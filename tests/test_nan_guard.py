"""No NaN kills a run: a non-finite loss skips its optimizer step; repeated ones end the stage from its
best checkpoint and the run still reports a test result (ChoiceTrainer and BundleMLLMTrainer)."""

from __future__ import annotations

import logging

import pytest
import torch
from recbole.model.general_recommender import BPR

from recbole_bundle.compat import torch_load
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.model.bundle_mllm import BundleMLLM
from recbole_bundle.testing import tiny_llama
from recbole_bundle.quick_start import run_recbole_bundle

METRICS = {"hitrate@1", "validratio", "hitrate@1(valid)"}


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What training can change: trainable parameters (BundleMLLM: its trained state)."""
    if hasattr(model, "trained_state_dict"):
        return {k: v.clone() for k, v in model.trained_state_dict().items()}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _patch_loss(monkeypatch, cls, nan_when, stage: str | None = None) -> list[dict]:
    """Wrap ``cls.calculate_loss``: record the weights before every call (of ``stage``, if given) and
    return NaN on the calls (1-based) where ``nan_when(call)`` is true."""
    snaps: list[dict] = []
    original = cls.calculate_loss

    def calculate_loss(self, interaction):
        if stage is not None and self.stage != stage:
            return original(self, interaction)
        snaps.append(_snapshot(self))
        loss = original(self, interaction)
        return loss * float("nan") if nan_when(len(snaps)) else loss

    monkeypatch.setattr(cls, "calculate_loss", calculate_loss)
    return snaps


# ---------------------------------------------------------------------------- ChoiceTrainer (RecBole models)


@pytest.fixture
def bpr_config(run_config):
    return dict(run_config, train_batch_size=1024, epochs=2, eval_step=1, stopping_step=5, max_nonfinite_steps=3)


def test_nan_step_is_skipped_and_training_goes_on(bpr_config, monkeypatch, caplog):
    snaps = _patch_loss(monkeypatch, BPR, lambda call: call == 2)
    with caplog.at_level(logging.WARNING):
        result = run_recbole_bundle("BPR", "sample", config_dict=bpr_config)
    assert len(snaps) >= 6  # two epochs of >= 3 steps: training went on after the NaN
    assert not _equal(snaps[0], snaps[1])  # a finite step moves the weights
    assert _equal(snaps[1], snaps[2])      # the NaN step (call 2) did not: no optimizer step
    assert not _equal(snaps[2], snaps[3])  # and the next finite step trains again
    assert any("non-finite loss" in r.getMessage() and "step skipped" in r.getMessage() for r in caplog.records)
    assert set(result["test_result"]) == METRICS
    state = torch_load(result["checkpoint"])["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())


def test_repeated_nans_end_the_stage_from_its_best_checkpoint(bpr_config, monkeypatch, caplog):
    from recbole_bundle.trainer import ChoiceTrainer

    nan_from = {"call": None}  # epoch 0 trains normally; every step of epoch 1 is NaN
    snaps = _patch_loss(monkeypatch, BPR, lambda call: nan_from["call"] is not None and call >= nan_from["call"])
    original = ChoiceTrainer._train_epoch

    def train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if epoch_idx == 1:
            nan_from["call"] = len(snaps) + 1
        return original(self, train_data, epoch_idx, loss_func, show_progress)

    monkeypatch.setattr(ChoiceTrainer, "_train_epoch", train_epoch)
    with caplog.at_level(logging.WARNING):
        result = run_recbole_bundle("BPR", "sample", config_dict=dict(bpr_config, epochs=4))
    per_epoch = nan_from["call"] - 1
    assert per_epoch >= 3
    assert len(snaps) == per_epoch + 3  # epoch 1 ended after max_nonfinite_steps=3 skipped steps; no epoch 2, 3
    best = torch_load(result["checkpoint"])
    assert best["epoch"] == 0
    net_state = {k: v.detach().cpu() for k, v in result["net"].state_dict().items()}
    assert _equal(net_state, best["state_dict"])   # the model ends on its best checkpoint
    assert _equal(net_state, snaps[per_epoch])     # = the weights after epoch 0
    assert any("ending stage" in r.getMessage() and "best checkpoint" in r.getMessage() for r in caplog.records)
    assert set(result["test_result"]) == METRICS and result["best_valid_score"] == best["best_valid_score"]


def test_nans_before_any_checkpoint_still_report_a_test_result(bpr_config, monkeypatch, caplog):
    snaps = _patch_loss(monkeypatch, BPR, lambda call: True)
    with caplog.at_level(logging.WARNING):
        result = run_recbole_bundle("BPR", "sample", config_dict=bpr_config)
    assert len(snaps) == 3  # the first three steps were skipped, then the stage ended
    assert _equal(snaps[0], {k: v.detach().cpu() for k, v in result["net"].state_dict().items()})  # never stepped
    assert set(result["test_result"]) == METRICS
    assert any("no checkpoint of this stage yet" in r.getMessage() for r in caplog.records)


def test_max_nonfinite_steps_must_be_a_non_negative_int(bpr_config):
    with pytest.raises(BundleConfigError, match="max_nonfinite_steps"):
        run_recbole_bundle("BPR", "sample", config_dict=dict(bpr_config, max_nonfinite_steps=-1))


# ---------------------------------------------------------------------------- BundleMLLMTrainer (stages)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(tiny_llama(tmp_path_factory.mktemp("tiny") / "llama"))


@pytest.fixture
def mllm_config(run_config, tiny_path):
    return dict(run_config, llm_name_or_path=tiny_path, train_questions_per_epoch=16, valid_max_questions=16,
                test_max_questions=16, relational_epochs=1, n_candidates=4, eval_batch_size=16,
                train_batch_size=2, grad_accum_steps=2, max_nonfinite_steps=3, modalities=["relational"])


def test_bundle_mllm_nan_window_is_skipped(mllm_config, monkeypatch):
    """S2 with gradient accumulation (2 micro-batches per step): a NaN in the second window's first
    micro-batch drops that whole window; the weights before and after it are equal."""
    snaps = _patch_loss(monkeypatch, BundleMLLM, lambda call: call == 3, stage="s2")
    result = run_recbole_bundle("BundleMLLM", "sample", config_dict=dict(mllm_config, stages=["s2"], epochs=1))
    # calls 1, 2: window 1 (one step after call 2); call 3: NaN -> window 2 dropped (its 2nd micro-batch is
    # not even computed); call 4 starts window 3
    assert len(snaps) == 7  # 8 micro-batches: windows 1, 3, 4 in full, window 2 stopped at its NaN
    assert _equal(snaps[0], snaps[1])      # no step inside a window
    assert not _equal(snaps[1], snaps[2])  # window 1 stepped
    assert _equal(snaps[2], snaps[3])      # window 2 (NaN) did not
    assert not _equal(snaps[3], snaps[5])  # window 3 stepped again
    assert set(result["test_result"]) == METRICS


def test_bundle_mllm_diverging_s2_ends_from_best_and_the_run_goes_on(mllm_config, monkeypatch, caplog):
    per_epoch = 8  # micro-batches per epoch: 16 questions / 2
    snaps = _patch_loss(monkeypatch, BundleMLLM, lambda call: call > per_epoch, stage="s2")
    with caplog.at_level(logging.WARNING):
        result = run_recbole_bundle("BundleMLLM", "sample", config_dict=dict(mllm_config, epochs=2, stopping_step=5))
    # S2 epoch 0 trains; epoch 1 is NaN from its first micro-batch: 3 dropped windows (1 call each) end S2
    # before its 4th window
    assert len(snaps) == per_epoch + 3
    best = torch_load(result["checkpoint"])
    assert best["stage"] == "s2" and best["epoch"] == 0
    final = result["net"].trained_state_dict()
    assert _equal(final, best["state_dict"])  # S2 ended on its best checkpoint ...
    assert _equal(final, snaps[per_epoch])    # ... = the weights after S2's epoch 0
    assert any("ending stage s2" in r.getMessage() for r in caplog.records)
    assert set(result["test_result"]) == METRICS
