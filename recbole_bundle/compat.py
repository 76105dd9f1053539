"""The one place where recbole_bundle adapts RecBole 1.2.1 to today's stack.

Pinned in setup.py (numpy<2, pandas<3, scipy<1.13, setuptools<81) so RecBole itself runs unchanged;
what a pin cannot fix lives here:

* torch >= 2.6 defaults ``torch.load(weights_only=True)``, which refuses RecBole checkpoints (they
  pickle the Config): :func:`torch_load` loads our own checkpoints with ``weights_only=False``.
* RecBole's ``Config`` reads every ``--key=value`` from ``sys.argv`` (pytest's flags leak in):
  :class:`recbole_bundle.config.BundleConfig` parses only the arguments it is given.
* ``recbole.quick_start`` imports ray: recbole_bundle never imports it.
* LightGCN's ``get_norm_adj_mat`` uses ``dok_matrix._update`` (gone in scipy >= 1.13):
  :class:`recbole_bundle.model.lightgcn.LightGCN` builds the matrix with COO arithmetic instead.
* numpy 2 removed ``np.float_`` & co. that ``Config.compatibility_settings`` reads:
  :func:`patch_numpy_aliases` restores them if someone installs numpy 2 despite the pin.
* RecBole creates its log and checkpoint folders with a racy exists-then-mkdir (two torchrun ranks
  crash with FileExistsError): :func:`make_output_dirs` creates them first.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def patch_numpy_aliases() -> None:
    """Give numpy 2 the aliases RecBole 1.2.1 reads at Config time (no-op on numpy 1.x)."""
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, alias):
            setattr(np, alias, target)


def torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint this project wrote (trusted: it holds a pickled RecBole Config)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=False)


patch_numpy_aliases()


def make_output_dirs(config) -> None:
    """Create RecBole's output folders (``./log/<model>``, ``checkpoint_dir``) before RecBole does:
    its exists-then-mkdir check races when several torchrun processes start together
    (FileExistsError on one rank)."""
    os.makedirs(os.path.join("log", str(config["model"])), exist_ok=True)
    os.makedirs(config["checkpoint_dir"], exist_ok=True)
