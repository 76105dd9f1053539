"""Plugin-first lookups (models, trainers, datasets) and the data preparation shared by every run."""

from __future__ import annotations

import hashlib
import importlib
import logging
from pathlib import Path

import numpy as np
from recbole.data.utils import create_samplers, get_dataloader
from recbole.utils import ModelType
from recbole.utils import get_model as recbole_get_model

from recbole_bundle.data.dataloader import ChoiceDataLoader, TrainQuestionLoader
from recbole_bundle.data.dataset import BundleDataset
from recbole_bundle.data.questions import (NegativeSampler, build_eval_questions, cache_key, load_or_build,
                                          negatives_source_key)
from recbole_bundle.errors import BundleConfigError

logger = logging.getLogger(__name__)


def _plugin_model_names() -> list[str]:
    from recbole_bundle import model as plugin_models

    return sorted(n for n in dir(plugin_models) if isinstance(getattr(plugin_models, n), type) and n[0].isupper())


def get_model(model_name: str) -> type:
    """The model class named ``model_name``: recbole_bundle's first, then RecBole's."""
    from recbole_bundle import model as plugin_models

    cls = getattr(plugin_models, model_name, None)
    if isinstance(cls, type):
        return cls
    try:
        return recbole_get_model(model_name)
    except (ValueError, ImportError):  # RecBole's lookup imports exlib modules (lightgbm, xgboost) on the way
        raise BundleConfigError(
            f"unknown model '{model_name}'. recbole_bundle models: {', '.join(_plugin_model_names())}; "
            f"RecBole's general models (e.g. Random, Pop, ItemKNN, BPR, NeuMF) also work. Names are case-sensitive."
        ) from None


def get_trainer(model_type: ModelType, model_name: str, model_class: type | None = None) -> type:
    """``recbole_bundle.trainer.<Model>Trainer`` for the model or its nearest base class that has one,
    else the choice trainer for the model type."""
    trainers = importlib.import_module("recbole_bundle.trainer")
    names = [c.__name__ for c in model_class.__mro__] if model_class is not None else [model_name]
    for name in names:
        cls = getattr(trainers, f"{name}Trainer", None)
        if cls is not None:
            return cls
    return trainers.TraditionalChoiceTrainer if model_type == ModelType.TRADITIONAL else trainers.ChoiceTrainer


def create_dataset(config) -> BundleDataset:
    """``recbole_bundle.data.<Model>Dataset`` if it exists, else :class:`BundleDataset`."""
    data_module = importlib.import_module("recbole_bundle.data")
    cls = getattr(data_module, f"{config['model']}Dataset", BundleDataset)
    dataset = cls(config)
    logger.info(dataset)
    return dataset


def _item_token_hash(dataset) -> str:
    tokens = dataset.field2id_token[dataset.iid_field]
    return hashlib.sha1("\n".join(map(str, tokens)).encode()).hexdigest()[:12]


def relational_embedding(config, dataset, train_dataset, dim: int = 64) -> np.ndarray:
    """Item embedding for hard negatives: the feature ``hard_neg_feature``, else an SVD of the train graph."""
    if config["hard_neg_feature"]:
        return dataset.item_features(config["hard_neg_feature"])[0]
    from scipy.sparse.linalg import svds

    mat = train_dataset.inter_matrix(form="csr").astype(np.float32)
    k = max(1, min(dim, min(mat.shape) - 2))
    _, s, vt = svds(mat, k=k, random_state=0)
    return (vt.T * np.sqrt(s)).astype(np.float32)


def make_negative_sampler(config, dataset, train_dataset) -> NegativeSampler:
    """The negative sampler ``neg_strategy`` asks for, fitted on training data only."""
    strategy = config["neg_strategy"]
    return NegativeSampler(
        dataset.item_num,
        strategy,
        popularity=train_dataset.item_popularity() if strategy == "popularity" else None,
        pop_alpha=float(config["neg_pop_alpha"]),
        embedding=relational_embedding(config, dataset, train_dataset) if strategy == "hard" else None,
        hard_pool=int(config["hard_neg_pool"]),
    )


def eval_questions(config, dataset, train_dataset, eval_dataset, phase: str):
    """The fixed, cached questions of ``phase`` (valid/test) for this (data, split, seed, K, strategy)."""
    k = int(config["n_candidates"])
    qseed = config["question_seed"] if config["question_seed"] is not None else config["seed"]
    strategy = config["neg_strategy"]
    key = cache_key([
        config["dataset"], phase, k, strategy, qseed, config["neg_pop_alpha"], config["hard_neg_pool"],
        config["hard_neg_feature"], dataset.item_num, _item_token_hash(dataset), eval_dataset.eval_bundles.fingerprint(),
        *negatives_source_key(config, dataset, train_dataset),  # popularity / hard: the graph or file they come from
    ])
    cache_dir = Path(config["data_path"]) / "questions" if config["question_cache"] else None
    name = f"{phase}_K{k}_{strategy}_seed{qseed}"

    def build():
        sampler = make_negative_sampler(config, dataset, train_dataset)
        return build_eval_questions(eval_dataset.eval_bundles, sampler, k, seed=[int(qseed), 1 if phase == "valid" else 2])

    return load_or_build(cache_dir, name, key, build)


def data_preparation(config, dataset: BundleDataset):
    """Split bundles and build (train, valid, test) loaders; valid/test serve fixed questions."""
    built = dataset.build()
    train_ds, valid_ds, test_ds = built
    model_class = config.model_class
    if getattr(model_class, "train_on", "interactions") == "questions":
        sampler = make_negative_sampler(config, dataset, train_ds)
        train_data = TrainQuestionLoader(config, train_ds, sampler)
    else:
        train_sampler, _, _ = create_samplers(config, dataset, built)
        train_data = get_dataloader(config, "train")(config, train_ds, train_sampler, shuffle=config["shuffle"])
    batch = int(config["eval_batch_size"])
    qseed = config["question_seed"] if config["question_seed"] is not None else config["seed"]
    loaders = []
    for phase, ds in (("valid", valid_ds), ("test", test_ds)):
        questions = eval_questions(config, dataset, train_ds, ds, phase)
        if config[f"{phase}_max_questions"]:
            questions = questions.subset(int(config[f"{phase}_max_questions"]), seed=int(qseed))
        loaders.append(ChoiceDataLoader(config, ds, questions, batch))
    valid_data, test_data = loaders
    train_data.dataset.valid_questions = valid_data.questions  # for features that early-stop on valid (never test)
    logger.info("questions: %d valid, %d test, K=%d, negatives=%s", len(valid_data.questions),
                len(test_data.questions), config["n_candidates"], config["neg_strategy"])
    return train_data, valid_data, test_data
