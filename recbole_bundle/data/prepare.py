"""Data preparation shared by every run: the dataset, the bundle-level split, and the train / valid / test
loaders (valid and test serve fixed, cached multiple-choice questions)."""

from __future__ import annotations

import hashlib
import importlib
import logging
from pathlib import Path

import numpy as np
from recbole.data.utils import create_samplers, get_dataloader

from recbole_bundle.data.dataloader import ChoiceDataLoader, TrainQuestionLoader
from recbole_bundle.data.dataset import BundleDataset
from recbole_bundle.data.questions import (NegativeSampler, build_eval_questions, cache_key, load_or_build,
                                          negatives_source_key)

logger = logging.getLogger(__name__)


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
    logger.info("questions: %d valid, %d test, K=%d, negatives=%s", len(valid_data.questions),
                len(test_data.questions), config["n_candidates"], config["neg_strategy"])
    return train_data, valid_data, test_data
