"""Graph item features from RecBole's LightGCN: ``relational`` (the TRAIN bundle–item graph only) and
``cf`` (the dataset's user–item interactions, ``<ds>.useritem``).

Held-out items of valid/test bundles never enter the graph (the train split holds train bundles and
the input items of eval bundles), so the features carry no test leakage. When the train dataset
carries its validation questions (``data_preparation`` attaches them), training stops early on valid
HitRate@1 exactly like the LightGCN baseline and the best epoch's embeddings are returned; otherwise it
runs ``epochs`` epochs. Results are cached per (dataset, split, seed, hyper-parameters) under
``<data_path>/<dataset>/cache/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from recbole_bundle.io import atomic_save_npz

logger = logging.getLogger(__name__)


def train_graph_fingerprint(train_dataset) -> str:
    u = train_dataset.inter_feat[train_dataset.uid_field].numpy()
    i = train_dataset.inter_feat[train_dataset.iid_field].numpy()
    order = np.lexsort((i, u))
    return hashlib.sha1(np.stack([u[order], i[order]]).tobytes()).hexdigest()[:12]


def lightgcn_item_features(config, train_dataset, epochs: int = 100, dim: int = 64) -> np.ndarray:
    """Train LightGCN (at most ``epochs``) on ``train_dataset``; return item embeddings ``[n_items, dim]``."""
    valid_q = getattr(train_dataset, "valid_questions", None)
    valid_key = hashlib.sha1(valid_q.candidates.tobytes()).hexdigest()[:8] if valid_q is not None else "none"
    key = hashlib.sha1(
        f"{train_graph_fingerprint(train_dataset)}|{epochs}|{dim}|{config['seed']}|{valid_key}".encode()
    ).hexdigest()[:12]
    cache = Path(config["data_path"]) / "cache" / f"relational_lightgcn_{key}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return z["features"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # torn copy, disk error
            logger.warning("relational feature cache %s is unreadable (%s: %s); rebuilding it", cache, type(e).__name__, e)
    lcfg = _lightgcn_config(config, config["dataset"], Path(config["data_path"]).parent, epochs, dim)
    feats = _train_lightgcn(lcfg, train_dataset, valid_q)
    atomic_save_npz(cache, features=feats)
    return feats


def _lightgcn_config(config, dataset: str, data_path: Path, epochs: int, dim: int, **extra):
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.model.lightgcn import LightGCN

    return BundleConfig(LightGCN, dataset, config_dict={
        "data_path": str(data_path), "epochs": int(epochs), "embedding_size": int(dim),
        "seed": config["seed"], "checkpoint_dir": config["checkpoint_dir"], "show_progress": config["show_progress"],
        "train_batch_size": 2048, "state": config["state"], "use_gpu": config["use_gpu"], **extra,
    })


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without moving the global torch / numpy / python RNG states (restored afterwards)."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _train_lightgcn(lcfg, train_dataset, valid_q=None) -> np.ndarray:
    """RecBole's LightGCN (our COO-adjacency subclass) trained by RecBole's loop on ``train_dataset``;
    early stopping on ``valid_q`` (multiple-choice questions) when given. Item embeddings ``[n_items, d]``."""
    from recbole.utils import init_seed

    with preserved_rng():  # a cache hit must leave the caller's RNG exactly where training would
        init_seed(lcfg["seed"], True)
        return _fit_lightgcn(lcfg, train_dataset, valid_q)


def _fit_lightgcn(lcfg, train_dataset, valid_q) -> np.ndarray:
    from recbole.data.dataloader import TrainDataLoader
    from recbole.sampler import Sampler

    from recbole_bundle import distributed
    from recbole_bundle.compat import torch_load
    from recbole_bundle.data.dataloader import ChoiceDataLoader
    from recbole_bundle.model.lightgcn import LightGCN
    from recbole_bundle.trainer import ChoiceTrainer

    sampler = Sampler(["train"], [train_dataset], "uniform").set_phase("train")
    loader = TrainDataLoader(lcfg, train_dataset, sampler, shuffle=True)
    model = LightGCN(lcfg, train_dataset).to(lcfg["device"])
    trainer = ChoiceTrainer(lcfg, model)
    valid = ChoiceDataLoader(lcfg, train_dataset, valid_q, int(lcfg["eval_batch_size"])) if valid_q is not None else None
    logger.info("training LightGCN on %s (at most %d epochs%s)", lcfg["dataset"], lcfg["epochs"],
                ", early stopping on valid HitRate@1" if valid is not None else "")
    trainer.fit(loader, valid, saved=valid is not None, show_progress=lcfg["show_progress"])
    if valid is not None:
        best = torch_load(trainer.saved_model_file)
        model.load_state_dict(best["state_dict"])
        distributed.barrier()  # under torchrun every rank trains the same LightGCN; all have read the file
        if distributed.is_main():
            os.remove(trainer.saved_model_file)
    return model.item_embeddings().detach().cpu().numpy().astype(np.float32)


def cf_item_features(config, dataset, epochs: int = 30, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Collaborative-filtering item features from the dataset's user–item interactions
    (``<ds>.useritem``, e.g. the official releases' ui_full.txt): RecBole's LightGCN trained on the
    user–item graph. Returns features aligned to ``dataset``'s internal item ids and a missing mask
    (items no user interacted with)."""
    import shutil

    from recbole.data import create_dataset as recbole_create_dataset

    from recbole_bundle.errors import BundleDataError

    src = Path(dataset.dataset_path) / f"{dataset.dataset_name}.useritem"
    if not src.is_file():
        raise BundleDataError(
            f"the cf feature needs user–item interactions in {src} (header user_id:token<TAB>item_id:token); "
            f"the official Bundle-MLLM/CLHE releases ship them as ui_full.txt, which the converter turns into that file"
        )
    name = f"{dataset.dataset_name}__useritem"
    root = Path(dataset.dataset_path) / "cache"
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, folder / f"{name}.inter")
    lcfg = _lightgcn_config(config, name, root, epochs, dim, USER_ID_FIELD="user_id", ITEM_ID_FIELD="item_id",
                            load_col={"inter": ["user_id", "item_id"]},
                            eval_args={"split": {"RS": [1.0, 0.0, 0.0]}, "order": "RO", "group_by": None, "mode": "full"})
    ui = recbole_create_dataset(lcfg).build()[0]  # every interaction is training data
    emb = _train_lightgcn(lcfg, ui)
    out = np.zeros((dataset.item_num, emb.shape[1]), np.float32)
    missing = np.ones(dataset.item_num, bool)
    ui_ids = ui.field2token_id["item_id"]
    for iid, token in enumerate(dataset.field2id_token[dataset.iid_field]):
        j = ui_ids.get(token) if iid else None
        if j is not None:
            out[iid], missing[iid] = emb[j], False
    return out, missing


def item_modality(config, dataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Feature ``name`` for the models' fusion layers: ``<ds>.feat_<name>.npz`` when it exists; for
    ``relational`` without a file, LightGCN trained on this run's train graph (cached per split).
    Returns ``(features [n_items, d], missing [n_items])``; row 0 (padding) is missing."""
    if name == "relational" and not dataset.feature_path(name).is_file():
        feats = lightgcn_item_features(config, dataset, epochs=int(config["relational_epochs"] or 100))
        missing = np.zeros(len(feats), bool)
        missing[0] = True
        return feats, missing
    return dataset.item_features(name)
