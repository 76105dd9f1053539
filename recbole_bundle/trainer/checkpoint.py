"""Checkpoints that load without running code, and refuse to load into another experiment.

Every checkpoint goes through :func:`recbole_bundle.compat.torch_load` (``torch.load(weights_only=True)``),
so a checkpoint may only hold tensors and plain Python data. What RecBole pickles as objects is
stored as plain data instead:

* the run's config: a JSON string (``config_json``; values JSON cannot hold, such as ``torch.device``
  or the model type enum, as their ``str``), which also tells which experiment wrote the file;
* RNG states: torch's as a tensor, numpy's legacy ``get_state()`` tuple and python's ``random``
  state as lists, the train loader's ``Generator`` state as the plain dict numpy gives.

Weights stay in ``torch.save``'s zip format rather than safetensors + a JSON sidecar: one file per
checkpoint keeps the atomic write (and the kill-and-resume guarantee) a single rename, and the optimizer
and scheduler states are nested dicts that safetensors cannot hold.

Before a checkpoint's weights are used (resume, evaluate), :func:`check_compatible` compares the keys
that define the experiment (:data:`IDENTITY_KEYS`: dataset, K, model, backbone, modalities, scoring,
...) with the current config and refuses a mismatch with one message naming every differing key.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import numpy as np
import torch

from recbole_bundle.compat import torch_load
from recbole_bundle.errors import BundleConfigError, BundleDataError

FORMAT = "recbole_bundle.checkpoint/2"

#: Config keys that define what a checkpoint's weights mean: a checkpoint written under other values
#: is refused on resume and evaluate. Keys a model does not use are absent (None) on both sides.
IDENTITY_KEYS = (
    "model", "dataset", "n_candidates", "llm_name_or_path", "modalities", "scoring",
    "use_fused_token", "separator", "lora_r", "lora_target_modules", "fusion_dim",
)


def config_json(config) -> str:
    """The run's final config as a JSON string (plain data a ``weights_only`` load accepts)."""
    values = getattr(config, "final_config_dict", config)
    return json.dumps(dict(values), default=str, sort_keys=True)


def _plain(value: Any) -> Any:
    """``value`` as the JSON round trip of :func:`config_json` leaves it (so both sides compare alike)."""
    return json.loads(json.dumps(value, default=str))


def check_compatible(ckpt: dict, config, path: str | os.PathLike) -> None:
    """Refuse a checkpoint written for another experiment (one message naming every differing key)."""
    if config is None:
        return
    raw = ckpt.get("config_json")
    if not isinstance(raw, str):
        raise BundleDataError(
            f"{os.fspath(path)}: not a recbole_bundle checkpoint of this version (it has no 'config_json' "
            "record of the run that wrote it); use a checkpoint written by this version, or retrain"
        )
    try:
        saved = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BundleDataError(f"{os.fspath(path)}: its config record is corrupt ({e}); use another checkpoint") from None
    diffs = []
    for key in IDENTITY_KEYS:
        mine = _plain(config[key]) if key in config else None
        theirs = saved.get(key)
        if mine != theirs:
            diffs.append(f"{key}: checkpoint {theirs!r} vs this run {mine!r}")
    if diffs:
        raise BundleConfigError(
            f"{os.fspath(path)} was written for another experiment; differing config keys: " + "; ".join(diffs)
            + ". Run with the checkpoint's values of these keys, or pass a checkpoint of this experiment."
        )


def load_checkpoint(path: str | os.PathLike, config=None, map_location: Any = "cpu") -> dict:
    """Load ``path`` safely (no code runs) and, given ``config``, refuse it if it belongs to another
    experiment; missing, unsafe, truncated or corrupt files raise one BundleError naming the file."""
    ckpt = torch_load(path, map_location=map_location)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise BundleDataError(
            f"{os.fspath(path)}: not a recbole_bundle checkpoint (no 'state_dict'); pass a .pth written by a "
            "recbole_bundle run (saved/<run>.pth or <run>.last.pth)"
        )
    check_compatible(ckpt, config, path)
    return ckpt


def load_weights(model: torch.nn.Module, state: dict, path: str | os.PathLike, strict: bool = True) -> None:
    """``model.load_state_dict(state)``; a shape or name mismatch becomes a message naming the file."""
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        first = str(e).splitlines()[0][:300]
        raise BundleConfigError(
            f"{os.fspath(path)}: its weights do not fit this model ({first}); it was written with other model "
            "settings (sizes, layers): run with that checkpoint's config, or pass a checkpoint of this experiment"
        ) from None


def plain_result(result: dict | None) -> dict | None:
    """A metric dict as plain floats (RecBole may hand numpy scalars, which weights_only refuses)."""
    return None if result is None else {str(k): float(v) for k, v in dict(result).items()}


def rng_state(loader_rng: np.random.Generator | None = None) -> dict:
    """Every RNG a training run draws from, as tensors and plain lists (weights_only-safe)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
        "loader": loader_rng.bit_generator.state if loader_rng is not None else None,
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
    }
    return state


def restore_rng(state: dict) -> dict | None:
    """Put the global RNGs back to ``state`` (from :func:`rng_state`); returns the loader's state."""
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    return state.get("loader")
