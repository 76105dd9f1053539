"""RecBole's Trainer, evaluating on multiple-choice questions and checkpointing atomically."""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import torch
from recbole.evaluator.collector import DataStruct
from recbole.trainer import Trainer
from recbole.utils import get_local_time, set_color
from tqdm import tqdm

from recbole_bundle import distributed
from recbole_bundle.compat import torch_load
from recbole_bundle.data.dataloader import LABEL
from recbole_bundle.io import atomic_torch_save
from recbole_bundle.metrics import HIT_KEY, VALID_KEY
from recbole_bundle.model.base import score_candidates


class ChoiceTrainer(Trainer):
    """Trains with RecBole's loop (early stopping on ``valid_metric``, default HitRate@1) and evaluates
    by letting the model score every question's K candidates; the top-scored candidate is its answer."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        name = f"{config['model']}-{config['dataset']}-seed{config['seed']}-{get_local_time()}-{os.getpid()}.pth"
        self.saved_model_file = distributed.broadcast_object(os.path.join(self.checkpoint_dir, name))
        self.last_predictions: dict[str, np.ndarray] = {}
        self.curve: list[dict] = []  # valid score after every epoch: {"stage", "epoch", "score"}

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        stage = getattr(self.model, "stage", "train")
        self.curve.append({"stage": stage, "epoch": len([c for c in self.curve if c["stage"] == stage]), "score": float(score)})
        return score, result

    def _is_main_process(self) -> bool:
        return distributed.is_main() and (self.config["single_spec"] or self.config["local_rank"] == 0)

    def _checkpoint_state(self, epoch: int) -> dict:
        """What a checkpoint holds (RecBole's layout); subclasses that train less save less."""
        return {
            "config": self.config,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
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
        checkpoint = torch_load(resume_file, map_location=self.device)
        self.saved_model_file = str(resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False) -> OrderedDict:
        """HitRate@1 & co. on ``eval_data``'s questions; per-question answers kept in ``last_predictions``."""
        if not eval_data:
            return OrderedDict()
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = torch_load(checkpoint_file, map_location=self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
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
        preds, hits, valids = [], [], []
        for batch in batches:
            batch = batch.to(self.device)
            scores = score_candidates(self.model, batch)
            valid = ~torch.isnan(scores).all(dim=-1)
            pred = torch.nan_to_num(scores, nan=-torch.inf).argmax(dim=-1)
            preds.append(pred.cpu())
            hits.append((pred == batch[LABEL]).cpu())
            valids.append(valid.cpu())
        pred, hit, valid = (torch.cat(x) if x else torch.zeros(0, dtype=t) for x, t in
                            ((preds, torch.long), (hits, torch.bool), (valids, torch.bool)))
        if order is not None:  # every rank's answers, back in question order
            pred, hit, valid = distributed.gather_by_index(order, len(eval_data.questions), pred, hit, valid)
        struct = DataStruct()
        struct.set(HIT_KEY, hit)
        struct.set(VALID_KEY, valid)
        self.last_predictions = {"answer": pred.numpy()}
        return self.evaluator.evaluate(struct)

    def _eval_order(self, eval_data) -> np.ndarray | None:
        """The order questions are answered in: by prompt length when the model can tell (LLMs: less
        padding per batch), else question order; None for loaders that are not question loaders."""
        if not hasattr(eval_data, "batches"):
            return None
        qs = eval_data.questions
        lengths = getattr(self.model, "prompt_lengths", None)
        if not (self.config["eval_sort_by_length"] and lengths):
            return np.arange(len(qs))
        return np.argsort(lengths(qs.partial, qs.partial_len, qs.candidates), kind="stable")


class TraditionalChoiceTrainer(ChoiceTrainer):
    """For models fitted in one pass over the training data (Random, Pop, ItemKNN)."""

    def __init__(self, config, model) -> None:
        super().__init__(config, model)
        self.epochs = 1
        self.eval_step = 1
