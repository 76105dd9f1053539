"""Dataloaders that serve multiple-choice questions as RecBole ``Interaction`` batches."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_bundle import distributed
from recbole_bundle.data.questions import QuestionSet, check_train_bundles, sample_train_questions

PARTIAL = "partial"
PARTIAL_LEN = "partial_len"
CANDIDATES = "candidates"
LABEL = "label"


def questions_to_interaction(qs: QuestionSet, index: np.ndarray, uid_field: str) -> Interaction:
    """A batch of questions; ``partial`` is trimmed to the batch's longest partial bundle."""
    plen = qs.partial_len[index]
    width = max(int(plen.max(initial=1)), 1)
    return Interaction({
        uid_field: torch.from_numpy(qs.bundle[index]),
        PARTIAL: torch.from_numpy(np.ascontiguousarray(qs.partial[index, :width])),
        PARTIAL_LEN: torch.from_numpy(plen),
        CANDIDATES: torch.from_numpy(qs.candidates[index]),
        LABEL: torch.from_numpy(qs.label[index]),
    })


class _QuestionLoader:
    """What both question loaders share: the dataset they serve and batching a question set."""

    def __init__(self, dataset, batch_size: int) -> None:
        self._dataset, self.batch_size, self.uid_field = dataset, int(batch_size), dataset.uid_field

    @property
    def dataset(self):
        return self._dataset

    def _batches(self, qs: QuestionSet, order: np.ndarray) -> Iterator[Interaction]:
        for s in range(0, len(order), self.batch_size):
            yield questions_to_interaction(qs, order[s : s + self.batch_size], self.uid_field)


class ChoiceDataLoader(_QuestionLoader):
    """Iterates a fixed :class:`QuestionSet` in its fixed order (evaluation)."""

    def __init__(self, config, dataset, questions: QuestionSet, batch_size: int) -> None:
        super().__init__(dataset, batch_size)
        self.config, self.questions = config, questions

    def __len__(self) -> int:
        return (len(self.questions) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Interaction]:
        return self.batches()

    def batches(self, order: np.ndarray | None = None) -> Iterator[Interaction]:
        """Batches in question order, or in ``order`` (a permutation; e.g. by prompt length)."""
        return self._batches(self.questions, np.arange(len(self.questions)) if order is None else order)


class TrainQuestionLoader(_QuestionLoader):
    """Fresh training questions every epoch from the pure train bundles (the paper's recipe)."""

    def __init__(self, config, dataset, sampler) -> None:
        super().__init__(dataset, config["train_batch_size"])
        self.config, self.sampler = config, sampler
        self.k = int(config["n_candidates"])
        self.max_items = int(config["train_max_items"])
        self.bundle_ids, self.bundle_items = dataset.train_bundles
        # the same feasibility check as the eval questions: a bundle leaving < K-1 negatives has no question
        names = dataset.id2token(dataset.uid_field, self.bundle_ids) if len(self.bundle_ids) else []
        check_train_bundles(sampler, self.k, self.bundle_items, list(map(str, names)))
        cap = config["train_questions_per_epoch"]
        self.per_epoch = min(int(cap), len(self.bundle_ids)) if cap else len(self.bundle_ids)
        self.rng = np.random.default_rng(config["seed"])  # draws every epoch's questions; a resumed run restores its state

    def __len__(self) -> int:
        share = -(-self.per_epoch // distributed.world_size())  # this rank's questions (torchrun)
        return (share + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Interaction]:
        pick = np.sort(self.rng.choice(len(self.bundle_ids), size=self.per_epoch, replace=False))
        items = [self.bundle_items[j] for j in pick]
        qs = sample_train_questions(items, self.bundle_ids[pick], self.sampler, self.k, self.rng, self.max_items)
        # every rank draws the same questions (same seed) and trains on its shard
        return self._batches(qs, distributed.shard(self.rng.permutation(len(qs))))
