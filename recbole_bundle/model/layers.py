"""Layers shared by the models: multimodal fusion into ONE vector per item (Bundle-MLLM, Sec. 3.2; CLHE's
item encoder with ``encoder="mlp"``) and Bundle-MLLM's projector into the LLM's embedding space.

Each modality feature is projected to ``d`` (64), L2-normalised, mixed by one self-attention layer
across the item's modalities, and mean-pooled over the modalities the item has; a projector
``Linear(d, 2d)-GELU-Linear(2d, hidden)`` maps the result into the LLM's embedding space.
A missing modality (no image, no audio) is masked out of attention and pooling; an item with no
modality at all gets a zero fused vector.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(dim: int, d: int) -> nn.Sequential:
    """CLHE's per-modality encoder: ``Linear(dim, dim)-ReLU-Linear(dim, 256)-ReLU-Linear(256, d)``."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 256), nn.ReLU(), nn.Linear(256, d))


class ModalityFusion(nn.Module):
    """Fuse ``M`` modality features of each item into one ``d``-vector.

    ``encoder``: ``linear`` (Bundle-MLLM: one Linear per modality) or ``mlp`` (CLHE's 3-layer encoder).
    """

    def __init__(self, dims: Sequence[int], d: int = 64, heads: int = 1, encoder: str = "linear") -> None:
        super().__init__()
        make = {"linear": lambda dm: nn.Linear(dm, d), "mlp": lambda dm: _mlp(dm, d)}[encoder]
        self.proj = nn.ModuleList(make(int(dm)) for dm in dims)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.d = d

    def forward(self, feats: Sequence[torch.Tensor], missing: torch.Tensor) -> torch.Tensor:
        """``feats[m]``: ``[N, d_m]``; ``missing``: ``[N, M]`` bool. Returns ``[N, d]``."""
        h = torch.stack([F.normalize(p(x), dim=-1) for p, x in zip(self.proj, feats)], dim=1)  # [N, M, d]
        none = missing.all(dim=1)
        mask = missing.clone()
        mask[none] = False  # keep attention defined for items with no modality (zeroed below)
        mixed, _ = self.attn(h, h, h, key_padding_mask=mask, need_weights=False)
        mixed = h + mixed
        keep = (~missing).unsqueeze(-1).to(mixed.dtype)
        pooled = (mixed * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return pooled.masked_fill(none.unsqueeze(-1), 0.0)


class Projector(nn.Sequential):
    """``Linear(d, 2d) - GELU - Linear(2d, hidden)``: fused vector -> one LLM input embedding."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, hidden))
