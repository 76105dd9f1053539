"""RecBole's Trainer, evaluating on multiple-choice questions and checkpointing atomically.

Beyond RecBole's loop: a non-finite loss or gradient skips that optimizer step with a warning
instead of killing the run (RecBole raises ``Training loss is nan``); ``max_nonfinite_steps`` skipped
steps in a row end the stage from its best checkpoint and the run goes on. Checkpoints hold only
tensors and plain data (:mod:`recbole_bundle.trainer.checkpoint`) and load with ``weights_only=True``.
With ``save_predictions`` the test evaluation writes every answer to ``<run>.test_predictions.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from recbole.evaluator.collector import DataStruct
from recbole.trainer import Trainer
from recbole.utils import get_gpu_usage, get_local_time, set_color
from tqdm import tqdm

from recbole_bundle import distributed
from recbole_bundle.data.dataloader import LABEL
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import atomic_open, atomic_torch_save
from recbole_bundle.metrics import HIT_KEY, VALID_KEY
from recbole_bundle.model.base import BundleChoiceModel, score_candidates
from recbole_bundle.trainer.checkpoint import FORMAT, config_json, load_checkpoint, load_weights, plain_result


class NonFiniteTraining(Exception):
    """``max_nonfinite_steps`` optimizer steps in a row were skipped: the stage has diverged.
    Raised inside the epoch loop and handled by :meth:`ChoiceTrainer.fit` (the run goes on)."""


def _release_ddp(loss: torch.Tensor) -> None:
    """Under DDP a forward pass expects its backward: a step skipped for a non-finite loss still runs a
    zero-weighted backward (its gradients are dropped right after), so the ranks stay in step."""
    if distributed.active() and loss.requires_grad:
        (loss * 0.0).backward()


def _any_rank(flag: bool, device) -> bool:
    """``flag`` OR-ed over every process of a torch.distributed group (torchrun, RecBole's DDP), so
    all ranks skip (or take) the same optimizer steps; ``flag`` itself in a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    dev = torch.device(device) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1.0 if flag else 0.0], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def grad_norm(params: list[torch.nn.Parameter], clip: dict | None = None) -> torch.Tensor:
    """Total gradient norm of ``params`` (before clipping); clips in place with ``clip`` (the kwargs
    of ``clip_grad_norm_``, e.g. ``{"max_norm": 1.0}``). Non-finite when any gradient is."""
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if clip:
        return torch.nn.utils.clip_grad_norm_(grads, **clip)
    return torch.nn.utils.get_total_norm([p.grad for p in grads])


class ChoiceTrainer(Trainer):
    """Trains with RecBole's loop (early stopping on ``valid_metric``, default HitRate@1) and evaluates
    by letting the model score every question's K candidates; the top-scored candidate is its answer."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        name = f"{config['model']}-{config['dataset']}-seed{config['seed']}-{get_local_time()}-{os.getpid()}.pth"
        self.saved_model_file = distributed.broadcast_object(os.path.join(self.checkpoint_dir, name))
        self.last_predictions: dict[str, np.ndarray] = {}
        self.curve: list[dict] = []  # valid score after every epoch: {"stage", "epoch", "score"}
        limit = config["max_nonfinite_steps"]
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise BundleConfigError(
                f"config key 'max_nonfinite_steps' must be an int >= 0 (0 or ~ = never end a stage, only skip "
                f"steps), got {limit!r}"
            )
        self.max_nonfinite_steps = int(limit or 0)
        self.nonfinite_run = 0        # optimizer steps skipped in a row (non-finite loss or gradient)
        self.nonfinite_skipped = 0    # all skipped steps of this run
        self.diverged_stages: list[str] = []  # stages ended by max_nonfinite_steps
        self._validating = False
        self._titles: list[str] | None = None

    @contextlib.contextmanager
    def _validation(self) -> Iterator[None]:
        """Marks evaluations that are validation (never written as test predictions)."""
        before, self._validating = self._validating, True
        try:
            yield
        finally:
            self._validating = before

    def _valid_epoch(self, valid_data, show_progress=False):
        with self._validation():
            score, result = super()._valid_epoch(valid_data, show_progress)
        stage = getattr(self.model, "stage", "train")
        self.curve.append({"stage": stage, "epoch": len([c for c in self.curve if c["stage"] == stage]), "score": float(score)})
        return score, result

    def _is_main_process(self) -> bool:
        return distributed.is_main() and (self.config["single_spec"] or self.config["local_rank"] == 0)

    def _checkpoint_state(self, epoch: int) -> dict:
        """What a checkpoint holds (RecBole's layout); subclasses that train less save less."""
        return {
            "format": FORMAT,
            "config_json": config_json(self.config),
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": plain_result(self.best_valid_result),
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
        }

    def _save_checkpoint(self, epoch, verbose=True, **kwargs) -> None:
        if self._is_main_process():
            path = kwargs.pop("saved_model_file", self.saved_model_file)
            atomic_torch_save(self._checkpoint_state(epoch), path)
            if verbose:
                self.logger.info(set_color("Saving current", "blue") + f": {path}")
        distributed.barrier()  # every rank reaches this together (same valid scores): the file is there for all

    def resume_checkpoint(self, resume_file) -> None:
        """Continue after the epoch of ``resume_file`` (refused if it belongs to another experiment)."""
        checkpoint = load_checkpoint(resume_file, self.config, map_location=self.device)
        self.saved_model_file = str(resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint.get("best_valid_result")
        load_weights(self.model, checkpoint["state_dict"], resume_file)
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    # ------------------------------------------------------------------ non-finite guard
    def _skip_step(self, epoch_idx: int, step: int, reason: str) -> None:
        """Drop this step's gradients without stepping the optimizer (or scheduler); after
        ``max_nonfinite_steps`` such steps in a row raise :class:`NonFiniteTraining`."""
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_run += 1
        self.nonfinite_skipped += 1
        stage = getattr(self.model, "stage", "train")
        limit = f"the stage ends at {self.max_nonfinite_steps}" if self.max_nonfinite_steps else "never ends the stage"
        self.logger.warning(
            f"stage {stage} epoch {epoch_idx} step {step}: non-finite {reason}; optimizer step skipped "
            f"({self.nonfinite_run} in a row; max_nonfinite_steps: {limit})"
        )
        if self.max_nonfinite_steps and self.nonfinite_run >= self.max_nonfinite_steps:
            raise NonFiniteTraining(
                f"stage {stage}: {self.nonfinite_run} optimizer steps in a row had a non-finite loss or gradient "
                f"(last at epoch {epoch_idx} step {step})"
            )

    def _loss_function(self):
        """``calculate_loss``; for question-trained models under torchrun, through torch DDP
        (:func:`recbole_bundle.distributed.loss_function`: one model across ranks), rebuilt when the
        set of trainable parameters changes (a new stage). RecBole's own models keep RecBole's ``nproc`` path."""
        if not (distributed.active() and getattr(self.model, "train_on", None) == "questions"):
            return self.model.calculate_loss
        key = tuple(id(p) for p in self.model.parameters() if p.requires_grad)
        if getattr(self, "_ddp_key", None) != key:
            self._ddp_key, self._ddp_loss = key, distributed.loss_function(self.model)
        return self._ddp_loss

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        """RecBole's ``Trainer._train_epoch`` with the non-finite guard: a NaN/inf loss or gradient
        skips the step (RecBole's ``_check_nan`` would end the run) and is left out of the epoch loss."""
        self.model.train()
        loss_func = loss_func or self._loss_function()
        total_loss = None
        iter_data = tqdm(train_data, total=len(train_data), ncols=100,
                         desc=set_color(f"Train {epoch_idx:>5}", "pink")) if show_progress else train_data
        if not self.config["single_spec"] and getattr(train_data, "shuffle", False):
            train_data.sampler.set_epoch(epoch_idx)
        device_type = torch.device(self.device).type
        scaler = torch.amp.GradScaler(device_type, enabled=bool(self.enable_scaler))
        for batch_idx, interaction in enumerate(iter_data):
            interaction = interaction.to(self.device)
            self.optimizer.zero_grad()
            sync_loss = 0
            if not self.config["single_spec"]:
                self.set_reduce_hook()
                sync_loss = self.sync_grad_loss()
            with torch.autocast(device_type=device_type, enabled=bool(self.enable_amp)):
                losses = loss_func(interaction)
            loss = sum(losses) if isinstance(losses, tuple) else losses
            value = float(loss.item())
            if _any_rank(not math.isfinite(value), self.device):
                _release_ddp(loss)
                self._skip_step(epoch_idx, batch_idx, f"loss ({value})")
                continue
            if isinstance(losses, tuple):
                parts = tuple(float(x.item()) for x in losses)
                total_loss = parts if total_loss is None else tuple(map(sum, zip(total_loss, parts)))
            else:
                total_loss = value if total_loss is None else total_loss + value
            scaler.scale(loss + sync_loss).backward()
            norm = grad_norm([p for p in self.model.parameters() if p.requires_grad], self.clip_grad_norm)
            if not scaler.is_enabled() and not torch.isfinite(norm):  # (a GradScaler skips inf steps itself)
                self._skip_step(epoch_idx, batch_idx, f"gradient (norm {norm.item()})")
                continue
            scaler.step(self.optimizer)
            scaler.update()
            self.nonfinite_run = 0
            if self.gpu_available and show_progress:
                iter_data.set_postfix_str(set_color("GPU RAM: " + get_gpu_usage(self.device), "yellow"))
        return 0.0 if total_loss is None else total_loss

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """RecBole's fit; a stage that diverges (``max_nonfinite_steps``) ends from its best checkpoint
        and returns its best validation so far instead of killing the run."""
        self.nonfinite_run = 0
        try:
            return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        except NonFiniteTraining as e:
            stage = getattr(self.model, "stage", "train")
            self.diverged_stages.append(stage)
            restored = self._restore_best() if saved else None
            where = (f"its best checkpoint {restored} (valid {self.valid_metric} {self.best_valid_score})" if restored
                     else "the weights of its last finite step (no checkpoint of this stage yet; skipped steps were "
                          "never applied)")
            self.logger.error(
                set_color("non-finite training", "red") + f": {e}; ending stage {stage} from {where}. The run goes on. "
                "Lower the learning rate, set clip_grad_norm, or mixed_precision: no, to avoid it."
            )
            return self.best_valid_score, self.best_valid_result

    def _restore_best(self) -> str | None:
        """Load this run's best checkpoint into the model; returns its path, None if there is none yet."""
        if not os.path.exists(self.saved_model_file):
            return None
        checkpoint = load_checkpoint(self.saved_model_file, self.config, map_location=self.device)
        load_weights(self.model, checkpoint["state_dict"], self.saved_model_file)
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        return self.saved_model_file

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False) -> OrderedDict:
        """HitRate@1 & co. on ``eval_data``'s questions; per-question answers and scores are kept in
        ``last_predictions`` and, with ``save_predictions`` outside validation, written to
        :attr:`predictions_file`. A ``model_file`` of another experiment is refused (names the keys)."""
        if not eval_data:
            return OrderedDict()
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = load_checkpoint(checkpoint_file, self.config, map_location=self.device)
            load_weights(self.model, checkpoint["state_dict"], checkpoint_file)
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        self.model.eval()
        order = self._eval_order(eval_data)
        if order is not None:
            order = distributed.shard(order)  # this rank's share
            batches, n_batches = eval_data.batches(order), -(-len(order) // eval_data.batch_size)
        else:
            batches, n_batches = eval_data, len(eval_data)
        batches = tqdm(batches, total=n_batches, ncols=100, desc=set_color("Evaluate   ", "pink")) \
            if show_progress else batches
        preds, hits, valids, all_scores = [], [], [], []
        for batch in batches:
            batch = batch.to(self.device)
            # scores may come back on another device than the batch (generate scoring decodes on the CPU
            # side): answers are compared on the CPU, where they are kept anyway
            scores = score_candidates(self.model, batch).detach().float().cpu()
            label = batch[LABEL].cpu()
            valid = ~torch.isnan(scores).all(dim=-1)
            pred = torch.nan_to_num(scores, nan=-torch.inf).argmax(dim=-1)
            preds.append(pred)
            hits.append(pred == label)
            valids.append(valid)
            all_scores.append(scores)
        k = all_scores[0].shape[-1] if all_scores else 0
        pred, hit, valid, scores = (torch.cat(x) if x else torch.zeros(shape, dtype=t) for x, t, shape in
                                    ((preds, torch.long, (0,)), (hits, torch.bool, (0,)), (valids, torch.bool, (0,)),
                                     (all_scores, torch.float32, (0, k))))
        if order is not None:  # every rank's answers, back in question order
            pred, hit, valid, scores = distributed.gather_by_index(order, len(eval_data.questions), pred, hit, valid,
                                                                   scores)
        struct = DataStruct()
        struct.set(HIT_KEY, hit)
        struct.set(VALID_KEY, valid)
        self.last_predictions = {"answer": pred.numpy(), "scores": scores.numpy(), "hit": (hit & valid).numpy(),
                                 "valid": valid.numpy()}
        result = self.evaluator.evaluate(struct)
        if self.config["save_predictions"] and not self._validating and hasattr(eval_data, "questions"):
            if self._is_main_process():
                self.write_predictions(eval_data, self.predictions_file)
            distributed.barrier()
        return result

    @property
    def predictions_file(self) -> str:
        """Where ``save_predictions`` writes the test answers: beside the run's checkpoint,
        ``<checkpoint_dir>/<run>.test_predictions.jsonl``."""
        path = Path(self.saved_model_file)
        stem = path.name
        for suffix in (".last.pth", ".pth"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        return str(path.with_name(stem + ".test_predictions.jsonl"))

    def write_predictions(self, eval_data, path: str | os.PathLike) -> Path:
        """Write :attr:`last_predictions` for ``eval_data``'s questions as JSON lines (atomically), one
        row per question: ``question`` (index in the evaluated question set), ``bundle`` (token),
        ``partial`` and ``candidates`` (item tokens), ``candidate_titles`` (datasets with titles),
        ``label`` and ``answer`` (candidate indices; ``answer`` is null when the model gave no valid
        answer), ``scores`` (one per candidate, null where not finite) and ``hit``. The mean of ``hit`` is
        exactly the reported HitRate@1 (before rounding)."""
        qs = eval_data.questions
        ds = eval_data.dataset
        bundle_tokens = ds.field2id_token[ds.uid_field]
        item_tokens = ds.field2id_token[ds.iid_field]
        titles = self._item_titles(ds)
        p = self.last_predictions
        path = Path(path)
        with atomic_open(path, "w") as f:
            for q in range(len(qs)):
                cands = qs.candidates[q]
                row: dict[str, Any] = {
                    "question": q,
                    "bundle": str(bundle_tokens[qs.bundle[q]]),
                    "partial": [str(item_tokens[i]) for i in qs.partial[q, : qs.partial_len[q]]],
                    "candidates": [str(item_tokens[i]) for i in cands],
                }
                if titles is not None:
                    row["candidate_titles"] = [titles[i] for i in cands]
                row.update({
                    "label": int(qs.label[q]),
                    "scores": [x if math.isfinite(x) else None for x in p["scores"][q].tolist()],
                    "answer": int(p["answer"][q]) if p["valid"][q] else None,
                    "hit": bool(p["hit"][q]),
                })
                f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        self.logger.info(f"predictions of {len(qs)} questions written to {path}")
        return path

    def _item_titles(self, dataset) -> list[str] | None:
        if self._titles is None and "title" in getattr(dataset, "field2type", {}) and hasattr(dataset, "item_titles"):
            self._titles = dataset.item_titles()
        return self._titles

    def _eval_order(self, eval_data) -> np.ndarray | None:
        """The order questions are answered in: by prompt length when the model can tell (LLMs: less
        padding per batch), else question order; None for loaders that are not question loaders."""
        if not hasattr(eval_data, "batches"):
            return None
        qs = eval_data.questions
        lengths = (self.model.prompt_lengths(qs.partial, qs.partial_len, qs.candidates)
                   if self.config["eval_sort_by_length"] and isinstance(self.model, BundleChoiceModel) else None)
        return np.arange(len(qs)) if lengths is None else np.argsort(lengths, kind="stable")


class TraditionalChoiceTrainer(ChoiceTrainer):
    """For models fitted in one pass over the training data (Random, Pop, ItemKNN)."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        self.epochs = 1
        self.eval_step = 1
