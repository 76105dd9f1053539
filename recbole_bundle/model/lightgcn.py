"""RecBole's LightGCN with its normalised adjacency built by COO arithmetic.

RecBole 1.2.1 fills a ``dok_matrix`` through ``_update``, which scipy >= 1.13 removed; this subclass
builds the same matrix ``D^-1/2 A D^-1/2`` (A = bundle–item bipartite graph) without it. Everything
else (propagation, BPR loss, prediction) is RecBole's.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from recbole.model.general_recommender.lightgcn import LightGCN as RecBoleLightGCN


class LightGCN(RecBoleLightGCN):
    """LightGCN on the bundle–item graph (bundles are RecBole users)."""

    def get_norm_adj_mat(self) -> torch.Tensor:
        inter = self.interaction_matrix.tocoo()
        n = self.n_users + self.n_items
        rows = np.concatenate([inter.row, inter.col + self.n_users])
        cols = np.concatenate([inter.col + self.n_users, inter.row])
        adj = sp.coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n)).tocsr()
        adj.data[:] = 1.0  # duplicated pairs count once, as in RecBole's dok construction
        deg = np.asarray(adj.sum(axis=1)).ravel() + 1e-7
        d_inv_sqrt = sp.diags(np.power(deg, -0.5))
        norm = (d_inv_sqrt @ adj @ d_inv_sqrt).tocoo()
        index = torch.from_numpy(np.vstack([norm.row, norm.col]).astype(np.int64))
        return torch.sparse_coo_tensor(index, torch.from_numpy(norm.data.astype(np.float32)), norm.shape).coalesce()

    @torch.no_grad()
    def item_embeddings(self) -> torch.Tensor:
        """Propagated item embeddings ``[n_items, d]`` (the relational feature Bundle-MLLM reads)."""
        _, item_e = self.forward()
        return item_e
