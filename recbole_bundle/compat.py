"""The one place where recbole_bundle adapts RecBole 1.2.1 to today's stack.

Pinned in setup.py (numpy<2, pandas<3, scipy<1.13, setuptools<81) so RecBole itself runs unchanged;
what a pin cannot fix lives here:

* torch >= 2.6 defaults ``torch.load(weights_only=True)``, which refuses RecBole's checkpoints (they
  pickle the Config object). recbole_bundle keeps ``weights_only=True`` for EVERY file it loads
  (:func:`torch_load`): its checkpoints hold the config as a JSON string and RNG states as plain
  lists, so nothing a file holds can run code; a file that needs more is refused with a message.
* RecBole's ``Config`` reads every ``--key=value`` from ``sys.argv`` (pytest's flags leak in):
  :class:`recbole_bundle.config.BundleConfig` parses only the arguments it is given.
* ``recbole.quick_start`` imports ray: recbole_bundle never imports it.
* LightGCN's ``get_norm_adj_mat`` uses ``dok_matrix._update`` (gone in scipy >= 1.13):
  :class:`recbole_bundle.model.lightgcn.LightGCN` builds the matrix with COO arithmetic instead.
* numpy 2 removed ``np.float_`` & co. that ``Config.compatibility_settings`` reads:
  :func:`patch_numpy_aliases` restores them if someone installs numpy 2 despite the pin.
* RecBole creates its log and checkpoint folders with a racy exists-then-mkdir (two torchrun ranks
  crash with FileExistsError): :func:`make_output_dirs` creates them first.
* RecBole's code triggers pandas FutureWarnings and a timestamp notice that do not concern a user:
  :func:`quiet_recbole_warnings` filters exactly those.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Any

import numpy as np


def patch_numpy_aliases() -> None:
    """Give numpy 2 the aliases RecBole 1.2.1 reads at Config time (no-op on numpy 1.x)."""
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, alias):
            setattr(np, alias, target)


def torch_load(path: str | os.PathLike, map_location: Any = "cpu", *, what: str = "checkpoint",
               fix: str | None = None) -> Any:
    """Load a torch file with ``weights_only=True``: tensors and plain data only, never code.

    Any failure becomes one :class:`~recbole_bundle.errors.BundleDataError` naming the file and the fix
    (``what`` names the kind of file in the message, ``fix`` overrides the suggested fix): a missing
    file, a file that holds Python objects other than tensors and plain data (a pickle with a
    ``__reduce__`` payload is refused before anything in it runs), or a truncated / corrupt file.
    """
    import pickle

    import torch

    from recbole_bundle.errors import BundleDataError

    path = os.fspath(path)
    fix = fix or ("use a checkpoint written by this version of recbole_bundle (saved/<run>.pth or "
                  "<run>.last.pth), or retrain")
    if not os.path.isfile(path):
        raise BundleDataError(f"{path}: no such {what} file; {fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        code = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if code:  # the file names a Python callable to run on load (a class, a function, a __reduce__ payload)
            raise BundleDataError(
                f"{path}: refused to load this {what}: it holds Python objects other than tensors and plain data "
                f"(it would call {code.group(1)} when loaded), and recbole_bundle loads files with "
                f"torch.load(weights_only=True) only, so that no file can run code. {fix[0].upper() + fix[1:]}"
            ) from None
        detail = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip() and "WeightsUnpickler" not in ln
                       and "Check the documentation" not in ln), "")
        if detail.startswith("Unsupported operand"):
            detail += ": a plain pickle, or a checkpoint of an older recbole_bundle, is not loaded"
        raise BundleDataError(
            f"{path}: this {what} is truncated, corrupt or not a torch file ({detail[:200] or 'unreadable pickle'}); {fix}"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError/EOFError/KeyError/... on damaged files
        reason = (str(e).splitlines() or [""])[0][:200]
        raise BundleDataError(
            f"{path}: this {what} is truncated, corrupt or not a torch file ({type(e).__name__}{': ' + reason if reason else ''}); {fix}"
        ) from None


patch_numpy_aliases()


def make_output_dirs(config) -> None:
    """Create RecBole's output folders (``./log/<model>``, ``checkpoint_dir``) before RecBole does:
    its exists-then-mkdir check races when several torchrun processes start together
    (FileExistsError on one rank)."""
    os.makedirs(os.path.join("log", str(config["model"])), exist_ok=True)
    os.makedirs(config["checkpoint_dir"], exist_ok=True)


# --------------------------------------------------------------------------- output for people

#: RecBole log lines that do not concern a recbole_bundle user (bundles have no timestamps; RecBole warns
#: that ``rm_dup_inter: first`` then keeps the first row in file order, which is what is wanted).
IRRELEVANT_LOG_MESSAGES = (re.compile(r"^Timestamp field has not been loaded or specified"),)


class _DropIrrelevant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(p.search(msg) for p in IRRELEVANT_LOG_MESSAGES)


def quiet_recbole_warnings() -> None:
    """Hide warnings users cannot act on: pandas FutureWarnings raised inside RecBole's own code (chained
    ``fillna(inplace=True)``, ``Series.agg(len)``; pandas < 3 is required, so the code still works),
    RecBole's timestamp notice for ``rm_dup_inter`` and torch's sparse-invariant note. Our own warnings
    and RecBole's other ones stay."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole(\.|$)")
    # torch's note on building a sparse tensor without invariant checks (our LightGCN adjacency is built
    # from a coalesced scipy matrix): nothing a user can or needs to act on
    warnings.filterwarnings("ignore", message=r"Sparse invariant checks are implicitly disabled", category=UserWarning)
    root = logging.getLogger()
    if not any(isinstance(f, _DropIrrelevant) for f in root.filters):
        root.addFilter(_DropIrrelevant())


quiet_recbole_warnings()
