"""Data-parallel Bundle-MLLM through torch.distributed (launched by ``torchrun``).

``torchrun --nproc_per_node=N run_recbole_bundle.py --model=BundleMLLM ...`` starts N processes; each
calls :func:`setup` (NCCL on GPUs, gloo on CPU; ``env://`` rendezvous from torchrun's variables).
Training: every rank draws the SAME epoch of questions (same seed) and takes its strided shard (padded
to equal length, as ``DistributedSampler`` does, so all ranks take the same number of steps); gradients
of the trainable parameters are averaged before each optimizer step. Evaluation: each rank answers
its shard; answers are gathered and put back in question order, so every rank computes the metrics on
all questions and N processes report exactly what one process reports. Only rank 0 writes files.
Classic RecBole models keep RecBole's own ``nproc`` path.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def setup() -> int:
    """Join the process group described by torchrun's environment; returns the world size (1 = none)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return world_size()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        check_gpus(int(os.environ.get("LOCAL_WORLD_SIZE", world)), torch.cuda.device_count())
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return world_size()


def check_gpus(processes: int, gpus: int) -> None:
    """One process per GPU: more processes on a node than visible GPUs is refused with the fix
    (NCCL cannot share a device between ranks; CPU processes use gloo when no GPU is visible)."""
    if processes > gpus:
        from recbole_bundle.errors import BundleConfigError

        raise BundleConfigError(
            f"torchrun started {processes} processes on this node but only {gpus} GPU(s) are visible: use "
            f"--nproc_per_node={gpus} (one process per GPU), or run the processes on CPU with gloo by "
            f"hiding the GPUs (CUDA_VISIBLE_DEVICES= torchrun ...)")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """This rank's GPU under torchrun (``cuda:LOCAL_RANK``), else ``device`` unchanged."""
    if active() and torch.device(device).type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(device)


def shard(indices: np.ndarray) -> np.ndarray:
    """This rank's strided share of ``indices``, padded by wrapping so every rank gets the same count."""
    world = world_size()
    if world == 1:
        return indices
    total = -(-len(indices) // world) * world
    padded = np.concatenate([indices, indices[: total - len(indices)]]) if total > len(indices) else indices
    return padded[rank()::world]


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. a checkpoint file name)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def average_gradients(params) -> None:
    """Average the gradients of ``params`` across ranks (one flat all-reduce)."""
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_by_index(index: np.ndarray, n: int, *values: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's per-question ``values`` (rows of ``index`` among ``n`` questions), in question order."""
    mine = (index, [v.cpu() for v in values])
    parts = [mine]
    if active():
        parts = [None] * world_size()
        dist.all_gather_object(parts, mine)
    out = []
    for j, v in enumerate(values):
        full = torch.empty((n, *v.shape[1:]), dtype=v.dtype)
        for idx, vals in parts:
            full[torch.from_numpy(idx)] = vals[j]
        out.append(full)
    return out
