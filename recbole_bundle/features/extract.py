"""Extraction loops: media / titles -> one feature file aligned to the dataset's item tokens.

``extract_encoder_features`` runs any :class:`~recbole_bundle.features.encoders.Encoder` over the
items in batches (progress bar, resumable through :class:`FeatureStore`); items whose media is
absent or unreadable are recorded and get a missing row. The LightGCN ``relational`` and ``cf`` features
are written in the same format by :mod:`recbole_bundle.graph_features` (they need a model and a trainer).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from recbole_bundle.features.encoders import Encoder
from recbole_bundle.features.media import MediaError
from recbole_bundle.features.store import FeatureStore

logger = logging.getLogger(__name__)


def item_tokens(dataset) -> list[str]:
    """The dataset's item tokens in internal-id order, without RecBole's padding token."""
    return [str(t) for t in dataset.field2id_token[dataset.iid_field][1:]]


def extract_encoder_features(
    dataset,
    encoder: Encoder,
    source: Callable[[str], Any],
    name: str,
    batch_size: int = 32,
    restart: bool = False,
    show_progress: bool = True,
    describe: dict | None = None,
) -> Path:
    """Encode every item; ``source(token)`` gives what ``encoder.read`` takes (a path, a title or None).

    Writes ``<ds>.feat_<name>.npz`` + ``.json`` beside the dataset and returns the ``.npz`` path.
    """
    tokens = item_tokens(dataset)
    store = FeatureStore(dataset.feature_path(name), tokens, {**encoder.identity, **(describe or {})}, restart)
    done = store.done()
    todo = [t for t in tokens if t not in done]
    if done:
        logger.info("resuming %s: %d of %d items already extracted", store.path.name, len(done), len(tokens))
    batches = range(0, len(todo), batch_size)
    for start in tqdm(batches, desc=f"{encoder.modality} features", unit="batch", disable=not show_progress):
        chunk = todo[start : start + batch_size]
        loaded, reasons = [], []
        for t in chunk:
            try:
                loaded.append(encoder.read(source(t)))
                reasons.append("")
            except MediaError as err:
                reasons.append(str(err) or "missing")
        missing = np.asarray([bool(r) for r in reasons])
        feats = encoder.encode(loaded) if loaded else np.zeros((0, 0), np.float32)
        batch = np.zeros((len(chunk), feats.shape[1]), np.float32)  # missing items: zero rows
        batch[~missing] = feats
        store.add(chunk, batch, missing, reasons)
    return store.finish()
