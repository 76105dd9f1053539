"""CLHE (Ma et al., WSDM 2024, arXiv 2310.18770): Contrastive Learning-enhanced Hierarchical Encoder.

Item level: each item's modality features (``modalities``: media / text / relational / cf files) plus
a learnable item-id embedding are encoded per modality (3-layer MLP -> 64-d), L2-normalised, mixed by
self-attention across modalities and mean-pooled (missing modalities masked). Bundle level: a
Transformer encoder over the partial bundle's item vectors, mean-pooled. Training on the train bundles'
partial bundles (the same questions as the LLMs, negatives unused): multinomial reconstruction of the
WHOLE bundle over the catalogue, plus an item-level InfoNCE between two modality-dropout views of the
batch's items and a bundle-level InfoNCE between the partial bundle and an item-dropout view of it.
Scoring: dot product of the bundle vector with the candidates' vectors from a separate item encoder
(the "decoder", as in the paper's code); ``full_sort_scores`` ranks the whole catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from recbole.data.interaction import Interaction
from torch import nn

from recbole_bundle.data.dataloader import CANDIDATES, PARTIAL, PARTIAL_LEN
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.model.base import BundleChoiceModel
from recbole_bundle.model.layers import ModalityFusion
from recbole_bundle.model.options import ModelOptions


@dataclass(frozen=True)
class CLHEOptions(ModelOptions):
    """CLHE's model keys (``properties/model/CLHE.yaml`` says what each means and the official values)."""

    embedding_size: int          # item and bundle vector size (>= 1)
    n_heads: int                 # attention heads of the bundle Transformer (divides embedding_size)
    trans_layers: int            # Transformer layers (>= 1)
    hidden_dropout_prob: float   # in [0, 1)
    cl_alpha: float              # item-level contrastive weight (>= 0)
    cl_temp: float               # its temperature (> 0)
    modality_dropout: float      # item augmentation, in [0, 1)
    bundle_cl_alpha: float       # bundle-level contrastive weight (>= 0)
    bundle_cl_temp: float        # its temperature (> 0)
    bundle_item_dropout: float   # bundle augmentation, in [0, 1)

    defaults = "properties/model/CLHE.yaml"

    def _check_ranges(self) -> None:
        for key in ("embedding_size", "n_heads", "trans_layers"):
            if getattr(self, key) < 1:
                self._fail(key, "must be >= 1")
        if self.embedding_size % self.n_heads:
            self._fail("n_heads", f"must divide embedding_size ({self.embedding_size})")
        for key in ("hidden_dropout_prob", "modality_dropout", "bundle_item_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                self._fail(key, "must lie in [0, 1)")
        for key in ("cl_alpha", "bundle_cl_alpha"):
            if getattr(self, key) < 0:
                self._fail(key, "must be >= 0")
        for key in ("cl_temp", "bundle_cl_temp"):
            if getattr(self, key) <= 0:
                self._fail(key, "must be > 0")


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between matching rows of ``a`` and ``b`` (other rows are the negatives)."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


class CLHE(BundleChoiceModel):
    """Hierarchical (item: modalities, bundle: items) encoder with reconstruction + two contrastive losses."""

    train_on = "questions"
    ranks_catalogue = True

    @classmethod
    def item_feature_names(cls, config) -> list[str]:
        """The item features CLHE encodes beside its always-present learned item-id embedding."""
        names = list(config["modalities"] or [])
        if "item_id" in names:
            raise BundleConfigError("CLHE always learns an item-id embedding beside its modalities: remove 'item_id' "
                                    f"from modalities ({names}); it is a Bundle-MLLM fused-token option")
        return names

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.options = opts = CLHEOptions.from_config(config)  # every model key, checked once
        d = opts.embedding_size
        loaded = [dataset.item_modality(n) for n in self.item_feature_names(config)]
        for n, (f, _) in enumerate(loaded):
            self.register_buffer(f"feat_{n}", F.normalize(torch.tensor(f), dim=-1), persistent=False)
        id_missing = np.zeros(self.n_items, bool)
        id_missing[0] = True
        missing = np.stack([m for _, m in loaded] + [id_missing], 1)
        self.register_buffer("feat_missing", torch.from_numpy(missing), persistent=False)
        self.n_modal = len(loaded)
        self.item_embedding = nn.Embedding(self.n_items, d)
        dims = [f.shape[1] for f, _ in loaded] + [d]
        self.encoder = ModalityFusion(dims, d, encoder="mlp")
        self.decoder = ModalityFusion(dims, d, encoder="mlp")
        layer = nn.TransformerEncoderLayer(d, opts.n_heads, dim_feedforward=2 * d, dropout=opts.hidden_dropout_prob,
                                           batch_first=True)
        self.bundle_encoder = nn.TransformerEncoder(layer, opts.trans_layers, enable_nested_tensor=False)
        self.cl_projector = nn.Linear(d, d)
        self.cl_alpha, self.cl_temp = opts.cl_alpha, opts.cl_temp
        self.bundle_cl_alpha, self.bundle_cl_temp = opts.bundle_cl_alpha, opts.bundle_cl_temp
        self.modality_dropout, self.item_dropout = opts.modality_dropout, opts.bundle_item_dropout
        nn.init.xavier_normal_(self.item_embedding.weight)
        # whole train bundles (reconstruction targets), by internal bundle id
        ids, items = dataset.train_bundles
        self._bundle_items = {int(b): torch.as_tensor(np.asarray(i), dtype=torch.long) for b, i in zip(ids, items)}

    # ------------------------------------------------------------------ encoders
    def _features(self, items: torch.Tensor) -> list[torch.Tensor]:
        return [getattr(self, f"feat_{n}")[items] for n in range(self.n_modal)] + [self.item_embedding(items)]

    def items(self, items: torch.Tensor, which: str = "encoder", drop: float = 0.0) -> torch.Tensor:
        """Item vectors ``[*, d]``; ``drop`` > 0 hides each (present) modality with that probability."""
        fusion = self.encoder if which == "encoder" else self.decoder
        flat = items.reshape(-1)
        missing = self.feat_missing[flat]
        if drop > 0:
            hidden = torch.rand(missing.shape, device=missing.device) < drop
            # one of the item's PRESENT modalities always stays (a random pick could be a missing one,
            # leaving the item with nothing: a zero vector)
            pick = torch.rand(missing.shape, device=missing.device).masked_fill(missing, -1.0).argmax(1)
            keep_one = F.one_hot(pick, missing.shape[1]).bool() & ~missing
            missing = missing | (hidden & ~keep_one)
        return fusion(self._features(flat), missing).reshape(*items.shape, -1)

    def bundle(self, partial: torch.Tensor, partial_len: torch.Tensor, drop: float = 0.0) -> torch.Tensor:
        """Bundle vector ``[B, d]`` of the partial bundles; ``drop`` > 0 removes items (keeping >= 1)."""
        width = partial.shape[1]
        pad = torch.arange(width, device=partial.device)[None, :] >= partial_len[:, None]
        if drop > 0:
            removed = (torch.rand(partial.shape, device=partial.device) < drop) & ~pad
            first = torch.zeros_like(removed)
            first[:, 0] = True
            pad = pad | (removed & ~first)
        h = self.bundle_encoder(self.items(partial), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    # ------------------------------------------------------------------ training / scoring
    def calculate_loss(self, interaction: Interaction) -> torch.Tensor:
        partial, plen = interaction[PARTIAL], interaction[PARTIAL_LEN]
        bundles = interaction[self.USER_ID].tolist()
        target = torch.zeros((len(bundles), self.n_items), device=partial.device)
        for row, b in enumerate(bundles):
            target[row, self._bundle_items[b].to(partial.device)] = 1.0
        z = self.bundle(partial, plen)
        logits = self._catalogue_scores(z, pad_value=-1e9)
        loss = -(F.log_softmax(logits, -1) * target).sum(-1).div(target.sum(-1)).mean()
        if self.cl_alpha > 0:
            batch_items = torch.nonzero(target.sum(0)).squeeze(1)
            v1 = self.cl_projector(self.items(batch_items, drop=self.modality_dropout))
            v2 = self.cl_projector(self.items(batch_items, drop=self.modality_dropout))
            loss = loss + self.cl_alpha * info_nce(v1, v2, self.cl_temp)
        if self.bundle_cl_alpha > 0 and len(bundles) > 1:
            loss = loss + self.bundle_cl_alpha * info_nce(z, self.bundle(partial, plen, drop=self.item_dropout), self.bundle_cl_temp)
        return loss

    def _catalogue_scores(self, z: torch.Tensor, pad_value: float) -> torch.Tensor:
        """``z`` against every item's decoder vector ``[B, n_items]``; the padding item gets ``pad_value``."""
        scores = z @ self.items(torch.arange(self.n_items, device=z.device), "decoder").T
        scores[:, 0] = pad_value
        return scores

    def score_candidates(self, interaction: Interaction) -> torch.Tensor:
        z = self.bundle(interaction[PARTIAL], interaction[PARTIAL_LEN])
        return (self.items(interaction[CANDIDATES], "decoder") * z[:, None, :]).sum(-1)

    def full_sort_scores(self, interaction: Interaction) -> torch.Tensor:
        """Scores ``[B, n_items]`` of the whole catalogue for each partial bundle (ranking protocol)."""
        return self._catalogue_scores(self.bundle(interaction[PARTIAL], interaction[PARTIAL_LEN]), pad_value=-torch.inf)
