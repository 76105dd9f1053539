"""Data-parallel Bundle-MLLM through torch.distributed (launched by ``torchrun``).

``torchrun --nproc_per_node=N run_recbole_bundle.py --model=BundleMLLM ...`` starts N processes; each
calls :func:`setup` (NCCL on GPUs, gloo on CPU; ``env://`` rendezvous from torchrun's variables).
Training: every rank draws the SAME epoch of questions (same seed) and takes its strided shard (padded
to equal length, as ``DistributedSampler`` does, so all ranks take the same number of steps); the loss
is computed through torch's ``DistributedDataParallel`` (:func:`loss_function`), which starts every rank
from rank 0's weights and averages the trainable gradients in ``backward``: one mechanism for every
question-trained model (Bundle-MLLM, the LLM baselines, CLHE, a user's model). Evaluation: each rank answers
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


class _LossModule(torch.nn.Module):
    """``model.calculate_loss`` as ``forward``: DDP synchronises the gradients of what ``forward`` runs."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, interaction):
        return self.model.calculate_loss(interaction)


def loss_function(model: torch.nn.Module):
    """The training loss callable: ``model.calculate_loss`` in one process; under torchrun a
    ``DistributedDataParallel`` wrapper of it (rank 0's weights broadcast now, gradients of the
    parameters that require grad averaged in every ``backward``). Build it again whenever the set of
    trainable parameters changes (a new Bundle-MLLM stage)."""
    if not active():
        return model.calculate_loss
    from torch.nn.parallel import DistributedDataParallel

    dev = next((p.device for p in model.parameters() if p.requires_grad), torch.device("cpu"))
    return DistributedDataParallel(
        _LossModule(model), device_ids=[dev] if dev.type == "cuda" else None,
        broadcast_buffers=False,  # buffers are fixed features, identical on every rank
        find_unused_parameters=True,  # a step may leave some trainable parameters out (e.g. no hybrid token)
    )


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
