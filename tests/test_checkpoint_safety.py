"""Nothing this project loads can run code: checkpoints and third-party .pt files load with
weights_only=True; checkpoints of another experiment, and damaged files, get one clear message."""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_bundle.compat import torch_load
from recbole_bundle.data.converters import convert_official
from recbole_bundle.errors import BundleConfigError, BundleDataError
from recbole_bundle.quick_start import run_recbole_bundle
from recbole_bundle.trainer.checkpoint import check_compatible, config_json, restore_rng, rng_state

try:
    from tests.fixtures_official import write_official_fixture
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from fixtures_official import write_official_fixture

PACKAGE = Path(__file__).resolve().parents[1] / "recbole_bundle"


class _Payload:
    """Unpickling this creates ``marker``: proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(path: Path, marker: Path, as_torch: bool = True) -> Path:
    obj = {"state_dict": {}, "epoch": 0, "payload": _Payload(marker)}
    if as_torch:
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2)  # protocol 2: the unpickler reaches the payload's GLOBAL
    return path


@pytest.fixture
def bpr_config(run_config):
    return dict(run_config, epochs=1, train_batch_size=2048)


@pytest.mark.parametrize("as_torch", [True, False], ids=["torch-zip", "raw-pickle"])
def test_crafted_checkpoint_is_refused_and_runs_nothing(bpr_config, tmp_path, as_torch):
    marker = tmp_path / "pwned"
    evil = _crafted(tmp_path / "evil.pth", marker, as_torch)
    with pytest.raises(BundleDataError, match=r"evil\.pth: refused to load this checkpoint") as err:
        run_recbole_bundle("BPR", "sample", config_dict=dict(bpr_config, resume_checkpoint=str(evil)))
    assert "weights_only" in str(err.value)
    assert not marker.exists()


def test_crafted_feature_file_in_an_official_release_is_refused(tmp_path):
    release = write_official_fixture(tmp_path / "raw", n_items=30)
    marker = tmp_path / "pwned"
    name = next(iter(release.feature_files.values()))
    _crafted(release.dir / name, marker)
    with pytest.raises(BundleDataError, match=rf"{re.escape(name)}: refused to load this feature file") as err:
        convert_official(release.dir, "spot", tmp_path / "out")
    assert "re-download" in str(err.value).lower()
    assert not marker.exists()


def test_checkpoint_of_another_experiment_is_refused_naming_the_key(bpr_config):
    first = run_recbole_bundle("BPR", "sample", config_dict=bpr_config)
    ckpt = first["checkpoint"]
    assert isinstance(torch.load(ckpt, weights_only=True)["config_json"], str)  # plain data only
    with pytest.raises(BundleConfigError, match=r"differing config keys: n_candidates: checkpoint 10 vs this run 5"):
        run_recbole_bundle("BPR", "sample", config_dict=dict(bpr_config, n_candidates=5, resume_checkpoint=ckpt))
    with pytest.raises(BundleConfigError, match=r"model: checkpoint 'BPR' vs this run 'LightGCN'"):
        run_recbole_bundle("LightGCN", "sample", config_dict=dict(bpr_config, resume_checkpoint=ckpt))


def test_every_differing_identity_key_is_named():
    saved = {"model": "BundleMLLM", "dataset": "pog", "n_candidates": 10, "llm_name_or_path": "a",
             "modalities": ["text", "relational"], "scoring": "letter"}
    ckpt = {"config_json": config_json(saved)}
    check_compatible(ckpt, dict(saved), "x.pth")  # the same experiment passes
    other = dict(saved, dataset="spotify", llm_name_or_path="b", modalities=["text"], scoring="candidate")
    with pytest.raises(BundleConfigError) as err:
        check_compatible(ckpt, other, "x.pth")
    msg = str(err.value)
    for key in ("dataset", "llm_name_or_path", "modalities", "scoring"):
        assert f"{key}: checkpoint" in msg
    assert "n_candidates" not in msg and "model:" not in msg and msg.startswith("x.pth")


def test_truncated_corrupt_and_missing_checkpoints_get_one_message(bpr_config, tmp_path):
    good = run_recbole_bundle("BPR", "sample", config_dict=bpr_config)["checkpoint"]
    data = Path(good).read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    for bad in (truncated, empty, junk):
        with pytest.raises(BundleDataError, match=rf"{bad.name}: this checkpoint is truncated, corrupt or not a torch file"):
            run_recbole_bundle("BPR", "sample", config_dict=dict(bpr_config, resume_checkpoint=str(bad)))
    with pytest.raises(BundleDataError, match=r"nowhere\.pth: no such checkpoint file"):
        torch_load(tmp_path / "nowhere.pth")


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    loader = np.random.default_rng(7)
    loader.random(3)
    state = rng_state(loader)
    torch.save(state, tmp_path / "rng.pt")
    expect = (torch.rand(3), np.random.rand(3), random.random(), loader.random(3))
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)
    fresh = np.random.default_rng(0)
    fresh.bit_generator.state = restore_rng(loaded)
    got = (torch.rand(3), np.random.rand(3), random.random(), fresh.random(3))
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1])
    assert expect[2] == got[2] and np.array_equal(expect[3], got[3])


def test_no_unsafe_load_anywhere_in_the_package():
    """Static guard: every torch file goes through compat.torch_load (weights_only=True)."""
    unsafe = re.compile(r"weights_only\s*=\s*False|pickle\.loads?\(|allow_pickle\s*=\s*True|torch\.load\(")
    hits = []
    for path in PACKAGE.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if unsafe.search(line) and "weights_only=True" not in line:
                hits.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert hits == []
