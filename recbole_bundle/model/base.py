"""The one scoring interface every bundle model shares: score K candidates for a partial bundle."""

from __future__ import annotations

import numpy as np
import torch
from recbole.data.interaction import Interaction
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType, ModelType

from recbole_bundle.data.dataloader import CANDIDATES


class BundleChoiceModel(GeneralRecommender):
    """Base class for models that answer multiple-choice questions from the partial bundle itself.

    Subclasses implement :meth:`calculate_loss` and :meth:`score_candidates`; the batch carries
    ``partial`` ``[B, L]`` (0-padded item ids), ``partial_len`` ``[B]``, ``candidates`` ``[B, K]`` and,
    for training questions, ``label`` ``[B]``. Set ``train_on = "questions"`` to be trained on fresh
    multiple-choice questions each epoch, or ``"interactions"`` for RecBole's bundle–item
    TrainDataLoader (with its negative sampler).
    """

    input_type = InputType.POINTWISE
    type = ModelType.GENERAL
    train_on = "questions"
    stage = "train"  # the training stage the model is in (multi-stage models set their own; trainers log it)
    ranks_catalogue = False  # True when full_sort_scores ranks the whole catalogue (retrieval)

    # ----------------------------------------------------------------- hooks the pipeline and trainers use
    @classmethod
    def item_feature_names(cls, config) -> list[str]:
        """Item features the pipeline prepares BEFORE building the model (feature files, or ``relational``
        = LightGCN trained on the run's train graph); the model reads them with
        ``dataset.item_modality(name)`` and never trains or loads anything itself."""
        return []

    def prompt_lengths(self, partial: np.ndarray, partial_len: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
        """Per-question input lengths, so evaluation can batch questions of similar length; None = no order."""
        return None

    def full_sort_scores(self, interaction: Interaction) -> torch.Tensor:
        """Scores ``[B, n_items]`` of the whole catalogue for each partial bundle (retrieval), for models
        with ``ranks_catalogue = True``; models that only compare the candidates they are shown do not."""
        raise NotImplementedError(f"{type(self).__name__} cannot rank the whole catalogue")

    def score_candidates(self, interaction: Interaction) -> torch.Tensor:
        """Scores ``[B, K]``, higher = more likely to belong; a row of NaN = no valid answer."""
        raise NotImplementedError

    def predict(self, interaction: Interaction) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} scores questions via score_candidates()")


def score_candidates(model: torch.nn.Module, interaction: Interaction) -> torch.Tensor:
    """Scores ``[B, K]`` from any model: its own ``score_candidates``, else RecBole's ``predict``.

    RecBole models score (bundle id, candidate) pairs: an eval bundle's input items are its training
    history, exactly as a test user's history is in RecBole.
    """
    if hasattr(model, "score_candidates"):
        return model.score_candidates(interaction).float()
    cands = interaction[CANDIDATES]
    b, k = cands.shape
    pairs = Interaction({
        model.USER_ID: interaction[model.USER_ID].repeat_interleave(k),
        model.ITEM_ID: cands.reshape(-1),
    }).to(model.device)
    return model.predict(pairs).reshape(b, k).float()


def with_candidates(interaction: Interaction, candidates: torch.Tensor) -> Interaction:
    """The same questions with another candidate set (labels are meaningless afterwards)."""
    return Interaction({**{key: interaction[key] for key in interaction.columns}, CANDIDATES: candidates})


def tournament_scores(interaction: Interaction, chunk: int, score_chunk) -> torch.Tensor:
    """Score K candidates with a scorer that takes at most ``chunk`` per prompt: a knock-out tournament.

    Round 0 scores the candidates in consecutive groups of ``chunk``; each group's top candidate goes on
    to the next round, until one group is left. A candidate's score is ``round reached * 1e4 +`` its
    log-probability in that round's group, so the argmax is the tournament winner and the other
    candidates are ranked by how far they got, then by their in-group score. (We chose a tournament
    over calibrating scores across prompts: log-probabilities from different prompts are not on one
    scale, while a tournament only ever compares candidates shown side by side.)
    ``score_chunk(sub_interaction) -> [B, c]`` scores an interaction whose ``candidates`` are a subset.
    """
    cands = interaction[CANDIDATES]
    b, k = cands.shape
    rows = torch.arange(b, device=cands.device)[:, None]
    alive = torch.arange(k, device=cands.device).expand(b, k)
    scores = torch.full((b, k), -torch.inf, device=cands.device)
    level = 0
    while True:
        winners = []
        for start in range(0, alive.shape[1], chunk):
            idx = alive[:, start : start + chunk]
            sub = with_candidates(interaction, cands.gather(1, idx))
            s = score_chunk(sub).float().to(scores.device) if idx.shape[1] > 1 else torch.zeros_like(idx, dtype=torch.float)
            scores[rows, idx] = level * 1e4 + torch.nan_to_num(s, nan=-1e3)
            winners.append(idx.gather(1, s.nan_to_num(-torch.inf).argmax(1, keepdim=True)))
        if alive.shape[1] <= chunk:
            return scores
        alive = torch.cat(winners, dim=1)
        level += 1
