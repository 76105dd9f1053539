"""The one scoring interface every bundle model shares: score K candidates for a partial bundle."""

from __future__ import annotations

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
