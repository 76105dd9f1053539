"""Graph item features, made by the pipeline BEFORE a model is built: ``relational`` (RecBole's LightGCN
on the TRAIN bundle–item graph only), ``degree`` (each item's popularity in that graph, encoded so a linear
layer can read any function of it) and ``cf`` (LightGCN on the dataset's user–item interactions,
``<ds>.useritem``); also their export as feature files (``python -m recbole_bundle.features``).

Held-out items of valid/test bundles never enter the graph (the train split holds train bundles and
the input items of eval bundles), so the features carry no test leakage. Given the validation
questions, training stops early on valid HitRate@1 exactly like the LightGCN baseline and the best
epoch's embeddings are returned. Results are cached per (train graph, validation questions, seed,
hyper-parameters) under ``<data_path>/<dataset>/cache/``. An exported ``relational`` file records its
train graph; a run on another split refuses it (its held-out items could be edges there).

This module sits at the pipeline layer: it trains a model with a trainer, which no model or feature
module may do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from recbole.data import create_dataset as recbole_create_dataset
from recbole.data.dataloader import TrainDataLoader
from recbole.sampler import Sampler
from recbole.utils import init_seed

from recbole_bundle import distributed
from recbole_bundle.compat import torch_load
from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataloader import ChoiceDataLoader
from recbole_bundle.data.prepare import data_preparation
from recbole_bundle.data.questions import QuestionSet
from recbole_bundle.errors import BundleConfigError, BundleDataError
from recbole_bundle.features.extract import item_tokens
from recbole_bundle.features.store import FeatureStore
from recbole_bundle.io import atomic_save_npz
from recbole_bundle.model.lightgcn import LightGCN
from recbole_bundle.trainer import ChoiceTrainer

logger = logging.getLogger(__name__)


# the LightGCN settings (properties/model/LightGCN.yaml + the trainer's) that shape the relational feature
LIGHTGCN_KEYS = ("n_layers", "reg_weight", "learning_rate", "embedding_size", "train_batch_size", "stopping_step",
                 "eval_step")


def train_graph_fingerprint(train_dataset) -> str:
    u = train_dataset.inter_feat[train_dataset.uid_field].numpy()
    i = train_dataset.inter_feat[train_dataset.iid_field].numpy()
    order = np.lexsort((i, u))
    return hashlib.sha1(np.stack([u[order], i[order]]).tobytes()).hexdigest()[:12]


def lightgcn_item_features(config, train_dataset, valid_q: QuestionSet | None = None, epochs: int = 100,
                           dim: int = 64) -> np.ndarray:
    """Train LightGCN (at most ``epochs``) on ``train_dataset``, early-stopping on the validation
    questions ``valid_q`` when given (never test); item embeddings ``[n_items, dim]``, cached."""
    valid_key = hashlib.sha1(valid_q.candidates.tobytes()).hexdigest()[:8] if valid_q is not None else "none"
    lcfg = _lightgcn_config(config, config["dataset"], Path(config["data_path"]).parent, epochs, dim)
    trained_by = "|".join(f"{k}={lcfg[k]}" for k in LIGHTGCN_KEYS)  # LightGCN.yaml edits invalidate the cache
    key = hashlib.sha1(
        f"{train_graph_fingerprint(train_dataset)}|{epochs}|{dim}|{config['seed']}|{valid_key}|{trained_by}".encode()
    ).hexdigest()[:12]
    cache = Path(config["data_path"]) / "cache" / f"relational_lightgcn_{key}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return z["features"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # torn copy, disk error
            logger.warning("relational feature cache %s is unreadable (%s: %s); rebuilding it", cache, type(e).__name__, e)
    feats = _train_lightgcn(lcfg, train_dataset, valid_q)
    atomic_save_npz(cache, features=feats)
    return feats


def _lightgcn_config(config, dataset: str, data_path: Path, epochs: int, dim: int, **extra):
    return BundleConfig(LightGCN, dataset, config_dict={
        "data_path": str(data_path), "epochs": int(epochs), "embedding_size": int(dim),
        "seed": config["seed"], "checkpoint_dir": config["checkpoint_dir"], "show_progress": config["show_progress"],
        "train_batch_size": 2048, "state": config["state"], "use_gpu": config["use_gpu"], "gpu_id": config["gpu_id"],
        "reproducibility": config["reproducibility"], **extra,
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
    with preserved_rng():  # a cache hit must leave the caller's RNG exactly where training would
        init_seed(lcfg["seed"], True)
        return _fit_lightgcn(lcfg, train_dataset, valid_q)


def _fit_lightgcn(lcfg, train_dataset, valid_q) -> np.ndarray:
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


DEGREE_BINS = 16  # log2 buckets of the train degree: 0, 1, 2-3, 4-7, ..., >= 2**14


def degree_item_features(train_dataset, n_bins: int = DEGREE_BINS) -> np.ndarray:
    """Each item's popularity in the TRAIN bundle–item graph (held-out items are not edges there, exactly
    as for ItemKNN, Pop and LightGCN): ``[n_items, 1 + n_bins]`` float32, column 0 = log(1 + degree) /
    log(1 + max degree), then a one-hot log2 bucket of the degree (bucket 0 = never in a train bundle), so
    the fused token's linear projection can express a non-monotone preference over popularity. Row 0 is
    the padding item. Why: on ids-only data (ifashion) popularity is most of what ItemKNN and Pop use
    (Pop 0.37, ItemKNN 0.39 at K=10), and one LightGCN vector does not expose it to the LLM directly."""
    iid = train_dataset.iid_field
    pairs = np.unique(np.stack([train_dataset.inter_feat[train_dataset.uid_field].numpy(),
                                train_dataset.inter_feat[iid].numpy()]), axis=1)
    n_items = train_dataset.num(iid)
    degree = np.bincount(pairs[1], minlength=n_items).astype(np.float64)
    degree[0] = 0.0
    out = np.zeros((n_items, 1 + n_bins), np.float32)
    out[:, 0] = np.log1p(degree) / max(np.log1p(degree.max()), 1e-12)
    bucket = np.where(degree > 0, np.floor(np.log2(np.maximum(degree, 1.0))) + 1, 0)
    bucket = np.minimum(bucket.astype(np.int64), n_bins - 1)
    out[np.arange(n_items), 1 + bucket] = 1.0
    return out


def cf_item_features(config, dataset, epochs: int = 30, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Collaborative-filtering item features from the dataset's user–item interactions
    (``<ds>.useritem``, e.g. the official releases' ui_full.txt): RecBole's LightGCN trained on the
    user–item graph. Returns features aligned to ``dataset``'s internal item ids and a missing mask
    (items no user interacted with)."""
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


def export_graph_features(config, dataset, modality: str, epochs: int, dim: int = 64, restart: bool = False,
                          name: str | None = None) -> Path:
    """``relational`` (LightGCN on the train split's bundle–item graph; held-out items never enter it)
    or ``cf`` (LightGCN on ``<ds>.useritem``) as ``<ds>.feat_<modality>.npz`` + ``.json``."""
    if modality == "relational":
        train, valid, _ = data_preparation(config, dataset)
        feats = lightgcn_item_features(config, train.dataset, valid.questions, epochs=epochs, dim=dim)
        missing = np.zeros(len(feats), bool)
        describe = {"graph": "train bundle-item graph", "split_seed": config["split_seed"] or config["seed"],
                    "bundle_split": config["bundle_split"], "bundle_split_ratio": list(config["bundle_split_ratio"]),
                    "train_graph": train_graph_fingerprint(train.dataset)}
    else:
        feats, missing = cf_item_features(config, dataset, epochs=epochs, dim=dim)
        describe = {"graph": "user-item interactions (<ds>.useritem)"}
    identity = {"modality": modality, "backend": "recbole", "encoder": "LightGCN", "epochs": int(epochs), **describe}
    tokens = item_tokens(dataset)
    store = FeatureStore(dataset.feature_path(name or modality), tokens, identity, restart)
    store.add(tokens, feats[1:], missing[1:], ["no interactions" if m else "" for m in missing[1:]])
    return store.finish()


def check_relational_split(dataset, train_dataset, name: str = "relational") -> None:
    """Refuse an exported ``relational`` feature file written on another split: its held-out items
    may be edges of that split's train graph (test leakage)."""
    meta_path = dataset.feature_path(name).with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    if meta.get("encoder") != "LightGCN" or meta.get("graph") != "train bundle-item graph":
        return  # not an exported relational graph feature (e.g. a user's own file named so)
    mine, theirs = train_graph_fingerprint(train_dataset), meta.get("train_graph")
    if theirs != mine:
        raise BundleConfigError(
            f"{dataset.feature_path(name)} was exported from another split (train graph {theirs or 'unrecorded'}, "
            f"this run {mine}): its held-out items may be edges of that graph. Export it again with this run's "
            f"split keys (python -m recbole_bundle.features --dataset={dataset.dataset_name} --modality=relational "
            f"<the same --seed/--bundle_split_ratio/...>), or delete it and the run trains LightGCN on its own split"
        )


def prepare_item_features(config, train_data, valid_data=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The pipeline's feature step, run BEFORE the model is built: every item feature the model class
    lists (``item_feature_names``) as ``(features, missing)``, handed to the model read-only through the
    train dataset (``dataset.item_modality``). A feature file is read (an exported ``relational`` file
    only if it was made on this run's split); ``relational`` without a file is LightGCN trained on this
    run's train graph, early-stopped on the validation questions and cached; ``degree`` without a file is
    computed from that graph (:func:`degree_item_features`)."""
    names = getattr(config.model_class, "item_feature_names", lambda _config: [])(config)
    dataset = train_data.dataset
    valid_q = valid_data.questions if valid_data is not None else None
    computed = {  # made from this run's train graph when no feature file is given
        "relational": lambda: lightgcn_item_features(config, dataset, valid_q,
                                                     epochs=int(config["relational_epochs"] or 100)),
        "degree": lambda: degree_item_features(dataset),
    }
    prepared = {}
    for name in names:
        if name in computed and not dataset.feature_path(name).is_file():
            feats = computed[name]()
            prepared[name] = (feats, np.arange(len(feats)) == 0)  # only the padding row is missing
            continue
        if name == "relational":
            check_relational_split(dataset, dataset)
        prepared[name] = dataset.item_features(name)
    if hasattr(dataset, "set_item_modalities"):
        dataset.set_item_modalities(prepared)
    return prepared
