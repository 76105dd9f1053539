"""Shared fixtures: offline, tiny data in tmp folders, quiet logging."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "dataset" / "sample"
SHARED_DATA = ROOT.parent / "shared" / "data"


def write_atomic(folder: Path, name: str, bundles: dict[str, list[str]], titles: dict[str, str] | None = None,
                 roles: dict[tuple[str, str], str] | None = None) -> Path:
    """Write ``<name>.inter`` (and ``.item``) for ``bundles`` into ``folder/<name>/``."""
    d = folder / name
    d.mkdir(parents=True, exist_ok=True)
    header = "bundle_id:token\titem_id:token" + ("\trole:token" if roles else "")
    lines = [header]
    for b, items in bundles.items():
        for i in items:
            lines.append(f"{b}\t{i}" + (f"\t{roles[(b, i)]}" if roles else ""))
    (d / f"{name}.inter").write_text("\n".join(lines) + "\n")
    if titles is not None:
        rows = ["item_id:token\ttitle:token_seq"] + [f"{i}\t{t}" for i, t in titles.items()]
        (d / f"{name}.item").write_text("\n".join(rows) + "\n")
    return d


def tiny_bundles(n_bundles: int = 40, n_items: int = 60, size: int = 4, seed: int = 0) -> dict[str, list[str]]:
    """Bundles drawn from 4 item groups, so co-occurrence carries signal."""
    import numpy as np

    rng = np.random.default_rng(seed)
    groups = np.array_split(np.arange(n_items), 4)
    out = {}
    for b in range(n_bundles):
        g = groups[b % 4]
        out[f"b{b}"] = [f"i{x}" for x in rng.choice(g, size=size, replace=False)]
    covered = {i for items in out.values() for i in items}
    for x in range(n_items):  # every item in some bundle
        if f"i{x}" not in covered:
            out[f"b{x % n_bundles}"].append(f"i{x}")
    return out


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A data_path folder holding a copy of the shipped sample (questions get cached here, not in git)."""
    root = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, root / "sample", ignore=shutil.ignore_patterns("cache"))  # local feature caches are not shipped
    return root


@pytest.fixture
def run_config(tmp_path: Path, data_root: Path) -> dict:
    """Config overrides that keep a run small, quiet and inside tmp_path."""
    return {
        "data_path": str(data_root),
        "checkpoint_dir": str(tmp_path / "saved"),
        "show_progress": False,
        "state": "WARNING",
        "epochs": 2,
        "train_batch_size": 512,
    }


@pytest.fixture(autouse=True)
def _chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """RecBole writes log/ and log_tensorboard/ into the working directory: keep them out of the repo."""
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """A tiny random Llama + tokenizer written with save_pretrained (loaded back like a real checkpoint)."""
    from recbole_bundle.testing import tiny_llama

    return str(tiny_llama(tmp_path_factory.mktemp("tiny") / "llama"))


@pytest.fixture
def mllm_config(run_config, tiny_path):
    """``run_config`` for Bundle-MLLM on the tiny backbone with a tiny budget (letter scoring)."""
    run_config.update(llm_name_or_path=tiny_path, train_questions_per_epoch=16, valid_max_questions=16,
                      relational_epochs=1, epochs=1, n_candidates=4, eval_batch_size=16,
                      scoring="letter")  # the letter-interface tests; candidate scoring has its own module
    return run_config


def build(mllm_config: dict, model: str = "BundleMLLM", **extra):
    """Config, a model built as the pipeline builds it (item features prepared first, then the model, seeded
    with 0) and the (train, valid, test) loaders, on the sample; ``extra`` overrides config keys."""
    from recbole_bundle.config import BundleConfig
    from recbole_bundle.data.prepare import create_dataset, data_preparation
    from recbole_bundle.graph_features import prepare_item_features

    import torch

    cfg = BundleConfig(model, "sample", config_dict={**mllm_config, **extra})
    ds = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, ds)
    prepare_item_features(cfg, train, valid)  # the pipeline's feature step: relational LightGCN
    torch.manual_seed(0)
    net = cfg.model_class(cfg, train.dataset)
    return cfg, net, train, valid, test
