"""The compat shims that let RecBole 1.2.1 run on numpy 2 and scipy >= 1.13 (setup.py no longer pins
them below those versions): RecBole's Config reads ``np.float_``; RecBole's LightGCN builds its
adjacency through ``dok_matrix._update``, which scipy 1.13 removed."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.prepare import create_dataset, data_preparation
from tests.conftest import tiny_bundles, write_atomic


def test_numpy_aliases_exist_and_recbole_config_builds(run_config):
    import recbole_bundle.compat  # noqa: F401  (applies the aliases on import)

    assert np.float_ is np.float64 and np.complex_ is np.complex128 and np.unicode_ is np.str_
    cfg = BundleConfig("Pop", "sample", config_dict=run_config)  # Config.compatibility_settings reads np.float_
    assert cfg["model"] == "Pop" and cfg["n_candidates"] == 10


def test_lightgcn_adjacency_is_the_symmetric_normalised_graph(run_config, tmp_path):
    bundles = tiny_bundles(n_bundles=30, n_items=40, size=4, seed=3)
    write_atomic(tmp_path / "data", "tiny", bundles)
    run_config["data_path"] = str(tmp_path / "data")
    cfg = BundleConfig("LightGCN", "tiny", config_dict=run_config)
    train, *_ = data_preparation(cfg, create_dataset(cfg))
    net = cfg.model_class(cfg, train.dataset)
    adj = net.get_norm_adj_mat().to_dense().numpy()

    inter = train.dataset.inter_matrix(form="coo").astype(np.float32)
    nu, ni = inter.shape
    a = np.zeros((nu + ni, nu + ni), dtype=np.float64)
    dense = (inter.toarray() > 0).astype(np.float64)
    a[:nu, nu:] = dense
    a[nu:, :nu] = dense.T
    d = 1.0 / np.sqrt(a.sum(1) + 1e-7)
    np.testing.assert_allclose(adj, d[:, None] * a * d[None, :], rtol=1e-5, atol=1e-7)
    assert isinstance(net.norm_adj_matrix, torch.Tensor) and net.norm_adj_matrix.is_sparse
    assert sp.issparse(net.interaction_matrix)
