"""Loading Bundle-MLLM's LLM backbone (resolved offline first by :func:`recbole_bundle.hub.resolve_backbone`):
dtype, device, optional bitsandbytes quantisation, and a tokenizer checked for blankness and set up
for left padding."""

from __future__ import annotations

import importlib.util
import logging
import time
from typing import TYPE_CHECKING

import torch

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.hub import check_tokenizer, resolve_backbone
from recbole_bundle.io import PathLike

if TYPE_CHECKING:  # heavy imports only for annotations
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise BundleConfigError(f"llm dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32  # CPU, or an old GPU without bf16 (float16 training would need a scaler)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Set the pad token to EOS if there is none and pad on the left (for batched generation)."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise BundleConfigError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has neither a pad nor an EOS "
                f"token; add one with tokenizer.add_special_tokens and save it"
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_backbone(
    name_or_path: str,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device = "cpu",
    cache_dir: PathLike | None = None,
    quantization: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Resolve ``name_or_path`` and load ``(model, tokenizer)`` from local files only.

    ``dtype`` "auto" is bfloat16 on a CUDA device with bf16 support, else float32. The tokenizer gets
    a pad token (EOS if missing) and left padding; the model is returned in eval mode on ``device``.
    ``quantization`` "8bit" / "4bit" (NF4) loads the weights through bitsandbytes (CUDA only).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_backbone(name_or_path, cache_dir)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise BundleConfigError(f"llm device {device!r} is not a torch device (e.g. 'cpu', 'cuda:0')") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BundleConfigError(f"llm device {device!r} requested but CUDA is not available; use device 'cpu'")
    torch_dtype = _resolve_dtype(dtype, dev)
    quant_kwargs = _quantization_kwargs(quantization, dev, torch_dtype)
    start = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as err:
        raise BundleConfigError(f"cannot load a tokenizer from {str(folder)!r}: {err}") from err
    check_tokenizer(tokenizer, str(folder))
    prepare_tokenizer(tokenizer)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch_dtype, **quant_kwargs)
    except Exception as err:
        raise BundleConfigError(
            f"cannot load a causal language model from {str(folder)!r}: {type(err).__name__}: {err}"
        ) from err
    if quant_kwargs:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model.to(dev)
    model.eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
    logger.info(
        "Loaded backbone %s from %s (%s, %s) in %.2f s",
        name_or_path, folder, torch_dtype, dev, time.perf_counter() - start,
    )
    return model, tokenizer


def _quantization_kwargs(quantization: str | None, dev: torch.device, compute_dtype: torch.dtype) -> dict:
    """``from_pretrained`` arguments for 8-bit / 4-bit loading, or a message saying what is missing."""
    if quantization in (None, "", "none"):
        return {}
    if quantization not in ("8bit", "4bit"):
        raise BundleConfigError(f"llm_quantization must be ~ (none), 8bit or 4bit, got {quantization!r}")
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise BundleConfigError(
            f"llm_quantization={quantization} needs a CUDA GPU (bitsandbytes kernels); this run's device is "
            f"{dev}. Set llm_quantization: ~ on CPU"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise BundleConfigError(f"llm_quantization={quantization} needs bitsandbytes: `pip install bitsandbytes`")
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=compute_dtype)
    return {"quantization_config": config, "device_map": {"": dev.index or 0}}
