"""Tiny random models for tests and offline demos, written with ``save_pretrained`` and loaded back through
``from_pretrained`` exactly like real checkpoints: a causal LM with a code-built byte-level BPE
tokenizer (the Bundle-MLLM backbone), BLIP2 and CLAP (the feature encoders). Their outputs carry no
meaning; they exercise the real loading, prompting, training and extraction code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import PathLike, atomic_dir
from recbole_bundle.model.bundle_mllm.answers import LETTERS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


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
    with atomic_dir(path, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return path


# ------------------------------------------------------------------------------ tiny media encoders
def tiny_blip2(path: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """A 1-layer BLIP2 (vision 32-d, Q-Former 32-d with 4 queries, OPT 16-d) + its image processor."""
    from transformers import Blip2Config, Blip2Model, BlipImageProcessor

    torch.manual_seed(seed)
    config = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                            encoder_hidden_size=32, vocab_size=100),
        text_config=dict(model_type="opt", hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=20,
                         vocab_size=100, word_embed_proj_dim=16),
        num_query_tokens=4,
    )
    Blip2Model(config).save_pretrained(path)
    BlipImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(path)
    return Path(path)


def tiny_clap(path: str | Path, sampling_rate: int = 16000, seed: int = 0) -> Path:
    """A 2-stage HTSAT-like CLAP (32-d, 16 mel bins, 1 s clips at ``sampling_rate``) + its feature extractor."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    config = ClapConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=100),
        audio_config=dict(hidden_size=32, num_mel_bins=16, spec_size=64, window_size=4, depths=[1, 1],
                          num_attention_heads=[2, 2], patch_embeds_hidden_size=16, enable_fusion=False,
                          patch_stride=[4, 4], patch_size=4),
        projection_dim=16,
    )
    ClapModel(config).save_pretrained(path)
    # 1 s at hop 64 = 251 frames <= spec_size * (spec_size // mel bins) = 256: fits the Swin input
    ClapFeatureExtractor(feature_size=16, sampling_rate=sampling_rate, max_length_s=1, fft_window_size=256,
                         hop_length=sampling_rate // 250, truncation="rand_trunc").save_pretrained(path)
    return Path(path)
