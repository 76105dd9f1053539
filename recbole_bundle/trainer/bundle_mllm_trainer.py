"""Progressive training for Bundle-MLLM: one RecBole fit loop per stage (S1 -> S2, or joint, ...).

Each stage gets a fresh AdamW over exactly the stage's trainable parameters (no optimizer state for
frozen weights), linear warm-up, gradient accumulation, bf16/fp16 autocast where the device has it,
and early stopping on valid HitRate@1; the next stage starts from the previous stage's best
checkpoint. Checkpoints hold only trained weights plus optimizer, scheduler and RNG states (tensors
and plain data: they load with ``weights_only=True``) and are written atomically: ``<run>.pth`` (best
so far) and ``<run>.last.pth`` (end of every epoch), from which ``resume_checkpoint`` continues
mid-stage and reaches the same result as an unbroken run.

Divergence: an accumulation window with a non-finite loss or gradient is dropped (no optimizer or
scheduler step, a warning); ``max_nonfinite_steps`` such windows in a row end the stage from its best
checkpoint and the next stage (or the test) runs. Gradients are clipped to ``llm_max_grad_norm``
(1.0, Hugging Face Trainer's ``max_grad_norm`` default that LoRA recipes like the paper's train under)
unless RecBole's ``clip_grad_norm`` is set.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from recbole.utils import set_color
from tqdm import tqdm

from recbole_bundle.data.dataloader import TrainQuestionLoader
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import atomic_torch_save
from recbole_bundle.trainer.checkpoint import FORMAT, config_json, load_checkpoint, plain_result, restore_rng, rng_state
from recbole_bundle.trainer.choice_trainer import ChoiceTrainer, _any_rank, _release_ddp, grad_norm


def _last_path(best_file: str) -> str:
    """``<run>.pth`` -> ``<run>.last.pth`` beside it (the file name only; the folder is kept as given)."""
    p = Path(best_file)
    stem = p.name[: -len(".pth")] if p.name.endswith(".pth") else p.name
    return str(p.with_name(stem + ".last.pth"))


class BundleMLLMTrainer(ChoiceTrainer):
    """Runs the model's ``stages`` in order, each with RecBole's epoch loop and early stopping."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        self.stage_index = 0
        self.accum = max(1, int(config["grad_accum_steps"]))
        self.scheduler = None
        self.last_file = _last_path(self.saved_model_file)
        self._train_loader = None
        self._resumed = False
        self._pending_loader_rng: dict | None = None  # a resumed run's train-question RNG, applied at fit()
        self.stage_results: list[dict] = []
        limit = config["llm_max_grad_norm"]
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0):
            raise BundleConfigError(f"config key 'llm_max_grad_norm' must be a float > 0 or ~ (no clipping), got {limit!r}")
        if not self.clip_grad_norm and limit is not None:
            self.clip_grad_norm = {"max_norm": float(limit)}
            self.logger.info(f"LLM stages clip gradients to norm {float(limit)} (llm_max_grad_norm)")

    # ------------------------------------------------------------------ optimisation
    def _build_optimizer(self, **kwargs):
        params = [p for p in self.model.parameters() if p.requires_grad]
        stage = getattr(self.model, "stage", "s1")
        lr = float(self.config[f"{stage}_learning_rate"] or self.config["learning_rate"])
        if not params:
            return None  # nothing to train (a zero-shot model: fit() never steps)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=float(self.config["weight_decay"]))
        warm = max(int(self.config["warmup_steps"]), 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
        return opt

    def _autocast(self):
        """Mixed precision on CUDA (``mixed_precision``: auto = the LLM's bf16/fp16 dtype, bf16, fp16, no)."""
        dev = torch.device(self.device)
        mode = self.config["mixed_precision"] or "auto"
        if mode not in ("auto", "bf16", "fp16", "no"):
            raise BundleConfigError(f"config key 'mixed_precision' must be auto, bf16, fp16 or no, got {mode!r}")
        if dev.type != "cuda" or mode == "no":
            return contextlib.nullcontext()
        if mode == "auto":
            dtype = next(self.model.llm.parameters()).dtype
            if dtype not in (torch.bfloat16, torch.float16):
                return contextlib.nullcontext()
        else:
            dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        """One epoch with gradient accumulation; a window whose loss or gradient is not finite is
        dropped (no optimizer/scheduler step) and left out of the epoch loss."""
        self.model.train()
        total, counted = 0.0, 0
        batches = tqdm(train_data, total=len(train_data), ncols=100,
                       desc=set_color(f"Train {self.model.stage} {epoch_idx:>3}", "pink")) if show_progress else train_data
        self.optimizer.zero_grad(set_to_none=True)
        params = self.optimizer.param_groups[0]["params"]
        bad: str | None = None  # why this accumulation window is dropped
        window_loss, window_n = 0.0, 0
        for n, batch in enumerate(batches, start=1):
            if bad is None:  # the rest of a dropped window is not worth a forward pass
                with self._autocast():
                    loss = self._loss_function()(batch.to(self.device)) / self.accum
                value = float(loss.item()) * self.accum
                if not _any_rank(not math.isfinite(value), self.device):  # every rank drops the same windows
                    loss.backward()
                    window_loss, window_n = window_loss + value, window_n + 1
                else:
                    _release_ddp(loss)
                    bad = f"loss ({value})"
            if n % self.accum == 0 or n == len(train_data):
                step = (n - 1) // self.accum
                if _any_rank(bad is not None, self.device):  # every rank skips the same windows
                    self._skip_step(epoch_idx, step, bad or "loss on another rank")
                else:
                    norm = grad_norm(params, self.clip_grad_norm)
                    if not torch.isfinite(norm):
                        self._skip_step(epoch_idx, step, f"gradient (norm {norm.item()})")
                    else:
                        self.optimizer.step()
                        self.scheduler.step()
                        self.optimizer.zero_grad(set_to_none=True)
                        self.nonfinite_run = 0
                        total, counted = total + window_loss, counted + window_n
                bad, window_loss, window_n = None, 0.0, 0
            if show_progress:
                batches.set_postfix(loss=f"{total / max(counted, 1):.4f}")
        return total / max(counted, 1)

    # ------------------------------------------------------------------ stages
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        self._train_loader = train_data
        stages = self.model.stages
        if not stages:  # zero-shot: nothing to train, report validation once
            with self._validation():
                result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
            self.best_valid_result = result
            self.best_valid_score = result[self.valid_metric] if result else -np.inf
            return self.best_valid_score, self.best_valid_result
        while self.stage_index < len(stages):
            stage = stages[self.stage_index]
            if not self._resumed:
                self.model.set_stage(stage)
                self.optimizer = self._build_optimizer()
                if self.optimizer is None:
                    raise BundleConfigError(
                        f"stage {stage} has no trainable parameters (s1 and joint train LoRA: lora_r > 0; s2 and "
                        f"joint train the fused token: use_fused_token: True); remove {stage} from 'stages'")
                self.start_epoch, self.cur_step = 0, 0
                self.best_valid_score = -np.inf
            self._resumed = False
            self.logger.info(set_color(f"stage {stage}", "green") + f": {sum(p.numel() for p in self.model.parameters() if p.requires_grad)} trainable parameters")
            if self._pending_loader_rng is not None and isinstance(train_data, TrainQuestionLoader):
                train_data.rng.bit_generator.state = self._pending_loader_rng  # resume: the same next epoch
                self._pending_loader_rng = None

            def after_epoch(epoch_idx, valid_score):
                self._after_epoch(epoch_idx, valid_score)
                if callback_fn:
                    callback_fn(epoch_idx, valid_score)

            score, result = super().fit(train_data, valid_data, verbose, saved, show_progress, after_epoch)
            diverged = stage in self.diverged_stages
            if diverged and score == -np.inf and self.stage_results:
                # ended before its first validation: it ends from the previous stage's best checkpoint
                prev = self.stage_results[-1]
                score, result = prev["best_valid_score"], prev["best_valid_result"]
                self.best_valid_score, self.best_valid_result = score, result
            self.stage_results.append({"stage": stage, "best_valid_score": score, "best_valid_result": result,
                                       "diverged": diverged})
            if saved and os.path.exists(self.saved_model_file):
                self._load_best()
            self.stage_index += 1
        return self.best_valid_score, self.best_valid_result

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self, epoch: int) -> dict:
        """Trained weights, optimizer, scheduler and every RNG, as tensors and plain data only."""
        return {
            "format": FORMAT,
            "config_json": config_json(self.config),
            "stage_index": self.stage_index,
            "stage": self.model.stage,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": plain_result(self.best_valid_result),
            "state_dict": self.model.trained_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": rng_state(self._train_loader.rng if isinstance(self._train_loader, TrainQuestionLoader) else None),
        }

    def _after_epoch(self, epoch_idx: int, valid_score: float) -> None:
        """After each epoch's validation (and best-checkpoint update): write the resume point."""
        if self._is_main_process():
            atomic_torch_save(self._checkpoint_state(epoch_idx), self.last_file)

    def _load_best(self) -> None:
        ckpt = load_checkpoint(self.saved_model_file, self.config)
        self.model.load_trained_state_dict(ckpt["state_dict"])

    def _restore_best(self) -> str | None:
        if not os.path.exists(self.saved_model_file):
            return None
        self._load_best()
        return self.saved_model_file

    def resume_checkpoint(self, resume_file) -> None:
        """Continue a killed run from its ``.last.pth`` (or best) checkpoint; a checkpoint of another
        experiment (dataset, K, model, backbone, modalities, scoring, ...) is refused."""
        ckpt = load_checkpoint(resume_file, self.config)
        if "stage_index" not in ckpt or "rng" not in ckpt:
            raise BundleConfigError(
                f"{resume_file}: not a resumable Bundle-MLLM checkpoint (no stage or RNG state); pass the "
                "<run>.last.pth or <run>.pth that a BundleMLLM / LLM run wrote"
            )
        self.stage_index = ckpt["stage_index"]
        self.model.set_stage(ckpt["stage"])
        self.model.load_trained_state_dict(ckpt["state_dict"])
        self.optimizer = self._build_optimizer()
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.start_epoch = ckpt["epoch"] + 1
        self.cur_step = ckpt["cur_step"]
        self.best_valid_score = ckpt["best_valid_score"]
        self.best_valid_result = ckpt["best_valid_result"]
        self._pending_loader_rng = restore_rng(ckpt["rng"])
        self._resumed = True
        name = Path(resume_file).name  # only the file name: a folder may contain '.pth' (checkpoint_dir=x.pth.d)
        base = str(Path(resume_file).with_name(name[: -len(".last.pth")] + ".pth" if name.endswith(".last.pth") else name))
        self.saved_model_file, self.last_file = base, _last_path(base)
        self.logger.info(f"resuming stage {ckpt['stage']} at epoch {self.start_epoch} from {resume_file}")

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model and eval_data:
            path = model_file or self.saved_model_file
            self.model.load_trained_state_dict(load_checkpoint(path, self.config)["state_dict"])
            self.logger.info(f"Loading trained weights from {path}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
