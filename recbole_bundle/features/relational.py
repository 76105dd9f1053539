"""Relational item features: RecBole's LightGCN trained on the TRAIN bundle–item graph only.

Held-out items of valid/test bundles never enter the graph (the train split holds train bundles and
the input items of eval bundles), so the features carry no test leakage. When the train dataset
carries its validation questions (``data_preparation`` attaches them), training stops early on valid
HitRate@1 exactly like the LightGCN baseline and the best epoch's embeddings are returned; otherwise it
runs ``epochs`` epochs. Results are cached per (dataset, split, seed, hyper-parameters) under
``<data_path>/<dataset>/cache/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from recbole_bundle.io import atomic_save_npz

logger = logging.getLogger(__name__)


def train_graph_fingerprint(train_dataset) -> str:
    u = train_dataset.inter_feat[train_dataset.uid_field].numpy()
    i = train_dataset.inter_feat[train_dataset.iid_field].numpy()
    order = np.lexsort((i, u))
    return hashlib.sha1(np.stack([u[order], i[order]]).tobytes()).hexdigest()[:12]


def lightgcn_item_features(config, train_dataset, epochs: int = 100, dim: int = 64) -> np.ndarray:
    """Train LightGCN (at most ``epochs``) on ``train_dataset``; return item embeddings ``[n_items, dim]``."""
    from recbole.sampler import Sampler
    from recbole.data.dataloader import TrainDataLoader
    from recbole.utils import init_seed

    from recbole_bundle.compat import torch_load
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.data.dataloader import ChoiceDataLoader
    from recbole_bundle.model.lightgcn import LightGCN
    from recbole_bundle.trainer import ChoiceTrainer

    valid_q = getattr(train_dataset, "valid_questions", None)
    valid_key = hashlib.sha1(valid_q.candidates.tobytes()).hexdigest()[:8] if valid_q is not None else "none"
    key = hashlib.sha1(
        f"{train_graph_fingerprint(train_dataset)}|{epochs}|{dim}|{config['seed']}|{valid_key}".encode()
    ).hexdigest()[:12]
    cache = Path(config["data_path"]) / "cache" / f"relational_lightgcn_{key}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return z["features"]
    lcfg = BundleConfig(LightGCN, config["dataset"], config_dict={
        "data_path": str(Path(config["data_path"]).parent), "epochs": int(epochs), "embedding_size": int(dim),
        "seed": config["seed"], "checkpoint_dir": config["checkpoint_dir"], "show_progress": config["show_progress"],
        "train_batch_size": 2048, "state": config["state"], "use_gpu": config["use_gpu"],
    })
    init_seed(lcfg["seed"], True)
    sampler = Sampler(["train"], [train_dataset], "uniform").set_phase("train")
    loader = TrainDataLoader(lcfg, train_dataset, sampler, shuffle=True)
    model = LightGCN(lcfg, train_dataset).to(lcfg["device"])
    trainer = ChoiceTrainer(lcfg, model)
    valid = ChoiceDataLoader(lcfg, train_dataset, valid_q, int(lcfg["eval_batch_size"])) if valid_q is not None else None
    logger.info("training LightGCN relational features on the train graph (at most %d epochs%s)", epochs,
                ", early stopping on valid HitRate@1" if valid is not None else "")
    trainer.fit(loader, valid, saved=valid is not None, show_progress=lcfg["show_progress"])
    if valid is not None:
        best = torch_load(trainer.saved_model_file)
        model.load_state_dict(best["state_dict"])
        os.remove(trainer.saved_model_file)
    feats = model.item_embeddings().cpu().numpy().astype(np.float32)
    atomic_save_npz(cache, features=feats)
    return feats
