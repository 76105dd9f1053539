"""Resolve a pretrained-model name to a local ``save_pretrained`` folder, offline first.

Used for every pretrained part (the LLM backbone, BLIP2, CLAP, the text encoder). A name is a local
folder holding ``config.json``, or a Hugging Face Hub name looked up in the local HF cache only; it
is downloaded only when ``HF_HUB_OFFLINE`` is unset. Every failure is a :class:`BundleConfigError`
naming the config key / flag and how to get the model, never a silently blank model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from recbole_bundle.errors import BundleConfigError

logger = logging.getLogger(__name__)


def hub_offline() -> bool:
    """True when Hugging Face downloads are disabled (checked at call time, not import time)."""
    val = os.environ.get("HF_HUB_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE", ""))
    if val.strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - huggingface_hub always ships with transformers
        return False


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def check_model_dir(path: Path, name: str, key: str) -> Path:
    if not (path / "config.json").is_file():
        raise BundleConfigError(
            f"{key} {name!r}: the folder {str(path)!r} has no config.json, so it is not a "
            f"model checkpoint (point it at a folder written by save_pretrained / huggingface-cli "
            f"download, which holds config.json, the weights and the tokenizer/processor files)"
        )
    return path


def resolve_model_dir(name_or_path: object, key: str, alternative: str = "") -> Path:
    """A local model folder for ``name_or_path`` (folder or Hub name); ``key`` names the setting in errors,
    ``alternative`` is appended to the how-to-get-it advice (e.g. an offline preset)."""
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise BundleConfigError(
            f"{key} must be a non-empty string (a local folder or a Hugging Face model name{alternative and ', ' + alternative}), "
            f"got {name_or_path!r}"
        )
    name = str(name_or_path).strip()
    path = Path(name).expanduser()
    if path.is_dir():
        return check_model_dir(path, name, key)
    if path.exists():
        raise BundleConfigError(f"{key} {name!r} is a file, not a model folder (give a folder written by save_pretrained)")
    if looks_like_path(name):
        raise BundleConfigError(
            f"{key} {name!r}: the folder {str(path)!r} does not exist (give a folder written by "
            f"save_pretrained or a Hugging Face model name{alternative and '; ' + alternative})"
        )
    return _resolve_hub(name, key, alternative)


def _resolve_hub(name: str, key: str, alternative: str) -> Path:
    from huggingface_hub import snapshot_download

    how = (
        f"download it on a machine with network (`huggingface-cli download {name} --local-dir "
        f"<folder>`), copy the folder here and set {key} to that folder; or unset HF_HUB_OFFLINE on a "
        f"machine with network so it is downloaded{alternative and '; or ' + alternative}"
    )
    try:
        folder = Path(snapshot_download(name, local_files_only=True))
    except Exception as local_err:  # LocalEntryNotFoundError, HFValidationError, OSError ...
        if hub_offline():
            raise BundleConfigError(
                f"{key} {name!r} is not a local folder and the model is not available offline (not in "
                f"the local Hugging Face cache: {type(local_err).__name__}). To get it: {how}"
            ) from local_err
        logger.info("Model %s is not in the local Hugging Face cache; downloading it", name)
        try:
            folder = Path(snapshot_download(name))
        except Exception as err:
            raise BundleConfigError(
                f"{key} {name!r} is not a local folder, not in the local Hugging Face cache and could not "
                f"be downloaded ({type(err).__name__}: {err}). To get it: {how}"
            ) from err
    return check_model_dir(folder, name, key)
