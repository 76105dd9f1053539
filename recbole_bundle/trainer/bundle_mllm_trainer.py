"""Progressive training for Bundle-MLLM: one RecBole fit loop per stage (S1 -> S2, or joint, ...).

Each stage gets a fresh AdamW over exactly the stage's trainable parameters (no optimizer state for
frozen weights), linear warm-up, gradient accumulation, bf16/fp16 autocast where the device has it,
and early stopping on valid HitRate@1; the next stage starts from the previous stage's best
checkpoint. Checkpoints hold only trained weights plus optimizer, scheduler and RNG states and are
written atomically: ``<run>.pth`` (best so far) and ``<run>.last.pth`` (end of every epoch), from
which ``resume_checkpoint`` continues mid-stage and reaches the same result as an unbroken run.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch
from recbole.utils import set_color
from tqdm import tqdm

from recbole_bundle import distributed
from recbole_bundle.compat import torch_load
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import atomic_torch_save
from recbole_bundle.trainer.choice_trainer import ChoiceTrainer


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
        self.stage_results: list[dict] = []

    # ------------------------------------------------------------------ optimisation
    def _build_optimizer(self, **kwargs):
        params = [p for p in self.model.parameters() if p.requires_grad]
        stage = getattr(self.model, "stage", "s1")
        lr = float(self.config[f"{stage}_learning_rate"] or self.config["learning_rate"])
        if not params:
            params = [torch.nn.Parameter(torch.zeros(1))]  # a stage with nothing to train (never fitted)
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
        self.model.train()
        total = 0.0
        batches = tqdm(train_data, total=len(train_data), ncols=100,
                       desc=set_color(f"Train {self.model.stage} {epoch_idx:>3}", "pink")) if show_progress else train_data
        self.optimizer.zero_grad(set_to_none=True)
        n = 0
        for n, batch in enumerate(batches, start=1):
            with self._autocast():
                loss = self.model.calculate_loss(batch.to(self.device)) / self.accum
            self._check_nan(loss)
            loss.backward()
            total += loss.item() * self.accum
            if n % self.accum == 0 or n == len(train_data):
                distributed.average_gradients(self.optimizer.param_groups[0]["params"])
                if self.clip_grad_norm:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            if show_progress:
                batches.set_postfix(loss=f"{total / n:.4f}")
        return total / max(n, 1)

    # ------------------------------------------------------------------ stages
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        self._train_loader = train_data
        stages = self.model.stages
        if not stages:  # zero-shot: nothing to train, report validation once
            result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
            self.best_valid_result = result
            self.best_valid_score = result[self.valid_metric] if result else -np.inf
            return self.best_valid_score, self.best_valid_result
        while self.stage_index < len(stages):
            stage = stages[self.stage_index]
            if not self._resumed:
                self.model.set_stage(stage)
                self.optimizer = self._build_optimizer()
                self.start_epoch, self.cur_step = 0, 0
                self.best_valid_score = -np.inf
            self._resumed = False
            self.logger.info(set_color(f"stage {stage}", "green") + f": {sum(p.numel() for p in self.model.parameters() if p.requires_grad)} trainable parameters")
            pending = getattr(self, "_pending_loader_rng", None)
            if pending is not None and hasattr(train_data, "_rng"):
                train_data._rng.bit_generator.state = pending
                self._pending_loader_rng = None

            def after_epoch(epoch_idx, valid_score):
                self._after_epoch(epoch_idx, valid_score)
                if callback_fn:
                    callback_fn(epoch_idx, valid_score)

            score, result = super().fit(train_data, valid_data, verbose, saved, show_progress, after_epoch)
            self.stage_results.append({"stage": stage, "best_valid_score": score, "best_valid_result": result})
            if saved and os.path.exists(self.saved_model_file):
                self._load_best()
            self.stage_index += 1
        return self.best_valid_score, self.best_valid_result

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self, epoch: int) -> dict:
        loader_rng = getattr(self._train_loader, "_rng", None)
        return {
            "config": dict(self.config.final_config_dict),
            "stage_index": self.stage_index,
            "stage": self.model.stage,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "best_valid_result": self.best_valid_result,
            "state_dict": self.model.trained_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "loader": loader_rng.bit_generator.state if loader_rng is not None else None},
        }

    def _after_epoch(self, epoch_idx: int, valid_score: float) -> None:
        """After each epoch's validation (and best-checkpoint update): write the resume point."""
        if self._is_main_process():
            atomic_torch_save(self._checkpoint_state(epoch_idx), self.last_file)

    def _load_best(self) -> None:
        ckpt = torch_load(self.saved_model_file, map_location="cpu")
        self.model.load_trained_state_dict(ckpt["state_dict"])

    def resume_checkpoint(self, resume_file) -> None:
        """Continue a killed run from its ``.last.pth`` (or best) checkpoint."""
        ckpt = torch_load(resume_file, map_location="cpu")
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
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self._pending_loader_rng = rng["loader"]
        self._resumed = True
        name = Path(resume_file).name  # only the file name: a folder may contain '.pth' (checkpoint_dir=x.pth.d)
        base = str(Path(resume_file).with_name(name[: -len(".last.pth")] + ".pth" if name.endswith(".last.pth") else name))
        self.saved_model_file, self.last_file = base, _last_path(base)
        self.logger.info(f"resuming stage {ckpt['stage']} at epoch {self.start_epoch} from {resume_file}")

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model and eval_data:
            path = model_file or self.saved_model_file
            self.model.load_trained_state_dict(torch_load(path, map_location="cpu")["state_dict"])
            self.logger.info(f"Loading trained weights from {path}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
