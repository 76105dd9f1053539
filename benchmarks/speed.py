"""Inference and training speed of Bundle-MLLM, each figure a ratio measured in this one run.

    python benchmarks/speed.py --questions=48 [--llm=smollm2-135m-instruct] [--skip-torchrun]

(a) fused item tokens cached once per evaluation vs recomputed per question;
(b) shared-prefix KV cache vs plain prompts; (c) letter scoring vs generate+parse (the paper's way),
with agreement; (d) evaluation with 2 gloo processes (torchrun) vs 1, and whether HitRate@1 is
identical; (e) time to build training questions and batches as a share of a training step (target
< 5%); (f) peak memory (RSS on CPU, allocated on CUDA) of an S1 and an S2 training step, and the
optimizer state each stage keeps. All on the same fixed test questions of --dataset.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataloader import ChoiceDataLoader
from recbole_bundle.trainer import BundleMLLMTrainer
from recbole_bundle.data.prepare import create_dataset, data_preparation
from recbole_bundle.graph_features import prepare_item_features

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def score_all(net, loader):
    net.eval()
    with torch.no_grad():
        return torch.cat([net.score_candidates(b) for b in loader])


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak, or on CPU the process RSS sampled every 2 ms
    by a thread (peak above the RSS at entry)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak_mb, self.growth_mb = device, 0.0, 0.0

    @staticmethod
    def _rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            self.base = self._rss_mb()
            self.peak_mb, self._stop = self.base, threading.Event()

            def sample():
                while not self._stop.is_set():
                    self.peak_mb = max(self.peak_mb, self._rss_mb())
                    time.sleep(0.002)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb())
        self.growth_mb = self.peak_mb - self.base


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="sample")
    p.add_argument("--questions", type=int, default=48)
    p.add_argument("--llm", default="smollm2-135m-instruct")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip-torchrun", action="store_true")
    args, rest = p.parse_known_args()
    common = {"llm_name_or_path": args.llm, "state": "WARNING", "show_progress": False, "eval_batch_size": args.batch_size,
              "test_max_questions": args.questions, "seed": 2020}
    cfg = BundleConfig("BundleMLLM", args.dataset, config_dict={**common, "stages": ["s1", "s2"]}, cmd_args=rest)
    dataset = create_dataset(cfg)
    train_data, valid, test = data_preparation(cfg, dataset)
    prepare_item_features(cfg, train_data, valid)
    torch.manual_seed(0)
    net = cfg.model_class(cfg, train_data.dataset).to(cfg["device"])
    device = torch.device(cfg["device"])
    rows = []

    # (a) fused-token cache, hybrid prompts (stage s2)
    net.set_stage("s2")
    net.use_prefix_cache = False
    net.use_fused_cache = False
    t_plain, s_plain = timed(lambda: score_all(net, test))
    net.use_fused_cache = True
    t_cache, s_cache = timed(lambda: score_all(net, test))
    rows.append(("(a) fused tokens cached vs per question", t_plain, t_cache, f"max |dp| {torch.softmax(s_plain, -1).sub(torch.softmax(s_cache, -1)).abs().max():.1e}"))

    # (b) shared-prefix KV cache (text prompts, stage s1)
    net.set_stage("s1")
    net.use_prefix_cache = False
    t_plain, s_plain = timed(lambda: score_all(net, test))
    net.use_prefix_cache = True
    t_prefix, s_prefix = timed(lambda: score_all(net, test))
    n_prefix = len(net.prompt.shared_prefix_ids)
    qs = test.questions
    mean_len = net.prompt_lengths(qs.partial, qs.partial_len, qs.candidates).mean()
    rows.append((f"(b) shared prefix ({n_prefix} of {mean_len:.0f} tokens) vs plain", t_plain, t_prefix,
                 f"max |dp| {torch.softmax(s_plain, -1).sub(torch.softmax(s_prefix, -1)).abs().max():.1e}"))

    # (c) letter scoring vs generate + parse
    net.set_scoring("generate")
    t_gen, s_gen = timed(lambda: score_all(net, test))
    net.set_scoring("letter")
    agree = (torch.nan_to_num(s_gen, nan=-1).argmax(-1) == s_prefix.argmax(-1)).float().mean()
    valid = (~torch.isnan(s_gen).all(-1)).float().mean()
    rows.append(("(c) letter scoring vs generate+parse", t_gen, t_prefix, f"agreement {agree:.0%}, generate ValidRatio {valid:.2f}"))

    # (d) 2 gloo processes vs 1 on evaluation (LLMZeroShot through the CLI)
    if not args.skip_torchrun:
        cli = [str(ROOT / "run_recbole_bundle.py"), "--model=LLMZeroShot", f"--dataset={args.dataset}",
               f"--llm_name_or_path={args.llm}", f"--test_max_questions={args.questions}", "--valid_max_questions=8",
               f"--eval_batch_size={args.batch_size}", "--show_progress=False", "--state=WARNING", *rest]

        def run(nproc: int) -> str:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            launcher = [sys.executable] + (["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_port", str(port)] if nproc > 1 else [])
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // nproc))}
            out = subprocess.run(launcher + cli, capture_output=True, text=True, env=env, check=True).stdout
            return re.findall(r"^hitrate@1: ([0-9.]+)$", out, flags=re.M)

        t1, h1 = timed(lambda: run(1))
        t2, h2 = timed(lambda: run(2))
        rows.append(("(d) eval, 2 gloo processes vs 1 (whole CLI run)", t1, t2, f"HitRate@1 1 proc {h1}, 2 procs {h2}: {'identical' if set(h2) == set(h1) else 'DIFFERENT'}"))

    # (e) question + batch building vs a training step
    net.set_stage("s1")
    trainer = BundleMLLMTrainer(cfg, net)
    trainer.optimizer = trainer._build_optimizer()
    t_build, batches = timed(lambda: list(train_data), repeat=3)
    steps = batches[:4]
    net.train()

    def train_steps():
        for b in steps:
            loss = net.calculate_loss(b.to(device))
            loss.backward()
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)

    t_steps, _ = timed(train_steps)
    per_batch_build, per_step = t_build / len(batches), t_steps / len(steps)
    rows.append((f"(e) one S1 step vs building its questions+batch ({len(batches)} batches)", per_step, per_batch_build,
                 f"building = {per_batch_build / per_step:.2%} of a step (target < 5%)"))

    # (f) peak memory of S1 and S2 steps, optimizer state per stage
    mem = {}
    for stage in ("s1", "s2"):
        net.set_stage(stage)
        trainer.optimizer = trainer._build_optimizer()
        net.train()
        with PeakMemory(device) as peak:
            for b in steps[:2]:
                net.calculate_loss(b.to(device)).backward()
                trainer.optimizer.step()
                trainer.optimizer.zero_grad(set_to_none=True)
        state = sum(t.numel() * t.element_size() for st in trainer.optimizer.state.values() for t in st.values() if torch.is_tensor(t))
        trained = sum(p.numel() for p in net.parameters() if p.requires_grad)
        mem[stage] = (peak.peak_mb, peak.growth_mb, trained, state / 2**20)
    for stage, (peak, growth, trained, state) in mem.items():
        rows.append((f"(f) {stage} step: peak {peak:.0f} MB, +{growth:.0f} MB above the model", None, None,
                     f"{trained} trainable params, optimizer state {state:.2f} MB"))
    rows.append(("(f) S2 / S1 extra memory during a step", mem["s1"][1], max(mem["s2"][1], 1e-9),
                 "ratio = S1 growth / S2 growth"))

    print(f"\n{args.dataset}, {args.questions} questions, batch {args.batch_size}, {args.llm}, device {device}, "
          f"torch threads {torch.get_num_threads()}\n")
    print("| measurement | baseline s | ours s | ratio (speed-up) | note |\n|---|---|---|---|---|")
    for name, base, ours, note in rows:
        if base is None:
            print(f"| {name} | | | | {note} |")
        else:
            print(f"| {name} | {base:.2f} | {ours:.3f} | {base / ours:.2f}x | {note} |")


if __name__ == "__main__":
    main()
