"""Data-parallel Bundle-MLLM with 2 gloo processes on CPU: the same HitRate@1 as 1 process, gradients
averaged across ranks, equal step counts per rank, one checkpoint."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recbole_bundle import distributed
from recbole_bundle.quick_start import run_recbole_bundle


ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    distributed.setup()
    # shard: equal counts per rank, together covering every index
    idx = distributed.shard(np.arange(7))
    # gather: each rank answers its shard, everyone gets all answers in question order
    (full,) = distributed.gather_by_index(idx, 7, torch.from_numpy(idx * 10))
    torch.save({"idx": idx, "full": full, "name": distributed.broadcast_object(f"rank{rank}")}, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def test_primitives_with_two_gloo_processes(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=False) for r in (0, 1))
    assert len(r0["idx"]) == len(r1["idx"]) == 4
    assert set(r0["idx"]) | set(r1["idx"]) == set(range(7))
    torch.testing.assert_close(r0["full"], torch.arange(7) * 10)
    torch.testing.assert_close(r1["full"], r0["full"])
    assert r0["name"] == r1["name"] == "rank0"


def _torchrun(args: list[str], cwd: Path) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()),
           str(ROOT / "run_recbole_bundle.py"), *args]
    # CPU processes with gloo, also on a GPU machine (2 processes cannot share one GPU through NCCL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    first = done.stderr.find("Traceback")  # the failing rank's own traceback comes before torchrun's
    assert done.returncode == 0, done.stderr[max(first, 0):][:4000]
    return done.stdout


def _results(stdout: str) -> list[float]:
    return [float(v) for v in re.findall(r"^hitrate@1: ([0-9.]+)$", stdout, flags=re.M)]


def _args(cfg: dict, model: str) -> list[str]:
    keep = {k: v for k, v in cfg.items() if k not in ("state",)}
    return [f"--model={model}", "--dataset=sample"] + [f"--{k}={v}" for k, v in keep.items()]


def test_two_processes_report_the_same_hitrate_as_one(mllm_config, tmp_path):
    cfg = {**mllm_config, "valid_max_questions": 0, "eval_batch_size": 5, "use_gpu": False}  # same device as the gloo ranks
    cfg.pop("valid_max_questions")
    one = run_recbole_bundle("LLMZeroShot", "sample", config_dict=cfg)["test_result"]["hitrate@1"]
    two = _results(_torchrun(_args(cfg, "LLMZeroShot"), tmp_path))
    assert two == [one, one]  # both ranks print the metric on ALL questions


def test_two_process_training_runs_and_writes_one_checkpoint(mllm_config, tmp_path):
    cfg = {**mllm_config, "stages": "['s1']"}
    out = _torchrun(_args(cfg, "BundleMLLM"), tmp_path)
    results = _results(out)
    assert len(results) == 2 and results[0] == results[1]
    saved = list(Path(mllm_config["checkpoint_dir"]).glob("*.pth"))
    assert len([p for p in saved if not p.name.endswith(".last.pth")]) == 1, saved


def test_more_processes_than_gpus_is_refused_with_the_fix():
    from recbole_bundle.distributed import check_gpus
    from recbole_bundle.errors import BundleConfigError

    check_gpus(1, 1)
    with pytest.raises(BundleConfigError, match=r"2 processes .* only 1 GPU.*--nproc_per_node=1.*CUDA_VISIBLE_DEVICES="):
        check_gpus(2, 1)


def _clhe_worker(rank: int, world: int, port: int, data_path: str, out: str) -> None:
    """One rank of a 2-process CLHE fit (started from DIFFERENT random weights on purpose)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), CUDA_VISIBLE_DEVICES="")
    from recbole.utils import init_seed

    from recbole_bundle.config import BundleConfig
    from recbole_bundle.data.prepare import create_dataset, data_preparation
    from recbole_bundle.graph_features import prepare_item_features
    from recbole_bundle.registry import get_trainer

    distributed.setup()
    cfg = BundleConfig("CLHE", "tiny", config_dict={
        "data_path": data_path, "checkpoint_dir": f"{out}/saved{rank}", "use_gpu": False, "show_progress": False,
        "state": "WARNING", "epochs": 2, "relational_epochs": 1, "train_batch_size": 8})
    train, valid, _ = data_preparation(cfg, create_dataset(cfg))
    prepare_item_features(cfg, train, valid)
    init_seed(100 + rank, True)  # ranks start apart: DDP must broadcast rank 0's weights
    net = cfg.model_class(cfg, train.dataset)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    trainer = get_trainer(cfg["MODEL_TYPE"], cfg["model"], cfg.model_class)(cfg, net)
    trainer.fit(train, None, saved=False)
    torch.save({"start": start, "end": net.state_dict()}, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def test_clhe_data_parallel_keeps_every_rank_on_the_same_weights(tmp_path):
    """Question-trained models other than Bundle-MLLM (here CLHE) train ONE model across ranks:
    after two epochs on different shards every rank holds identical weights, and they moved."""
    from conftest import tiny_bundles, write_atomic

    write_atomic(tmp_path / "data", "tiny", tiny_bundles(n_bundles=48, n_items=40, size=4, seed=1))
    mp.spawn(_clhe_worker, args=(2, _free_port(), str(tmp_path / "data"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    assert any(not torch.equal(r0["start"][k], r1["start"][k]) for k in r0["start"])  # they did start apart
    for k in r0["end"]:
        torch.testing.assert_close(r0["end"][k], r1["end"][k], msg=f"{k} differs between ranks")
    assert any(not torch.equal(r0["end"][k], r0["start"][k]) for k in r0["end"])  # training changed the weights
