"""Dataloaders that serve multiple-choice questions as RecBole ``Interaction`` batches."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_bundle.data.questions import QuestionSet

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


class ChoiceDataLoader:
    """Iterates a fixed :class:`QuestionSet` in order (eval) or shuffled (training)."""

    def __init__(self, config, dataset, questions: QuestionSet, batch_size: int, shuffle: bool = False) -> None:
        self.config, self._dataset, self.questions = config, dataset, questions
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.uid_field = dataset.uid_field
        self._rng = np.random.default_rng(config["seed"])

    @property
    def dataset(self):
        return self._dataset

    def __len__(self) -> int:
        return (len(self.questions) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Interaction]:
        n = len(self.questions)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        for s in range(0, n, self.batch_size):
            yield questions_to_interaction(self.questions, order[s : s + self.batch_size], self.uid_field)


class TrainQuestionLoader:
    """Fresh training questions every epoch from the pure train bundles (the paper's recipe)."""

    def __init__(self, config, dataset, sampler) -> None:
        from recbole_bundle.data.questions import sample_train_questions

        self.config, self._dataset, self.sampler = config, dataset, sampler
        self._sample = sample_train_questions
        self.batch_size = int(config["train_batch_size"])
        self.k = int(config["n_candidates"])
        self.max_items = int(config["train_max_items"])
        self.bundle_ids, self.bundle_items = dataset.train_bundles
        cap = config["train_questions_per_epoch"]
        self.per_epoch = min(int(cap), len(self.bundle_ids)) if cap else len(self.bundle_ids)
        self._rng = np.random.default_rng(config["seed"])
        self.uid_field = dataset.uid_field

    @property
    def dataset(self):
        return self._dataset

    def __len__(self) -> int:
        return (self.per_epoch + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Interaction]:
        pick = np.sort(self._rng.choice(len(self.bundle_ids), size=self.per_epoch, replace=False))
        items = [self.bundle_items[j] for j in pick]
        qs = self._sample(items, self.bundle_ids[pick], self.sampler, self.k, self._rng, self.max_items)
        order = self._rng.permutation(len(qs))
        for s in range(0, len(qs), self.batch_size):
            yield questions_to_interaction(qs, order[s : s + self.batch_size], self.uid_field)
