"""Letter scoring (one forward pass, softmax over the K letter logits) vs generate + parse (the
paper's way) on the same questions: questions/s of each, their ratio, and how often they agree.

    python benchmarks/letter_vs_generate.py --dataset=sample --questions=64
    python benchmarks/letter_vs_generate.py --dataset=sample --checkpoint=saved/BundleMLLM-....pth

Uses the zero-shot backbone unless --checkpoint (a BundleMLLM checkpoint of the same config) is given.
``--candidate`` also times per-candidate scoring (``scoring: candidate``: longer prompts, one pass)
on the same questions with a second copy of the model.
"""

from __future__ import annotations

import argparse
import time

import torch

from recbole_bundle.compat import torch_load
from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataloader import ChoiceDataLoader
from recbole_bundle.data.prepare import create_dataset, data_preparation
from recbole_bundle.quick_start import build_model


def run(model, loader, mode: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    model.set_scoring(mode)
    answers, valid = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            s = model.score_candidates(batch)
            valid.append(~torch.isnan(s).all(-1))
            answers.append(torch.nan_to_num(s, nan=-torch.inf).argmax(-1))
    return torch.cat(answers), torch.cat(valid), time.perf_counter() - start


def load_model(args, rest: list[str], train, valid, **overrides):
    """The model of ``--model`` built by the pipeline on the run's split, in eval mode, from ``--checkpoint``
    if given, in its last stage."""
    cfg = BundleConfig(args.model, args.dataset, config_dict={"state": "WARNING", "show_progress": False, **overrides},
                       cmd_args=rest)
    model = build_model(cfg, train, valid).eval()
    if args.checkpoint:
        model.load_trained_state_dict(torch_load(args.checkpoint)["state_dict"])
    if model.stages:
        model.set_stage(model.stages[-1])
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="sample")
    p.add_argument("--model", default="BundleMLLM")
    p.add_argument("--questions", type=int, default=64)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--candidate", action="store_true", help="also time scoring=candidate")
    args, rest = p.parse_known_args()
    cfg = BundleConfig(args.model, args.dataset, config_dict={"state": "WARNING", "show_progress": False}, cmd_args=rest)
    dataset = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, dataset)
    questions = test.questions.subset(args.questions, seed=0)
    loader = ChoiceDataLoader(cfg, test.dataset, questions, args.batch_size)
    model = load_model(args, rest, train, valid)
    label = torch.from_numpy(questions.label)
    run(model, ChoiceDataLoader(cfg, test.dataset, questions.subset(args.batch_size, 1), args.batch_size), "letter")  # warm-up
    la, lv, lt = run(model, loader, "letter")
    ga, gv, gt = run(model, loader, "generate")
    n = len(questions)
    print(f"questions: {n}, K={cfg['n_candidates']}, backbone={cfg['llm_name_or_path']}, device={cfg['device']}")
    print(f"letter   : {n / lt:7.2f} q/s  HitRate@1={float((la == label).float().mean()):.4f}  ValidRatio=1.0000")
    print(f"generate : {n / gt:7.2f} q/s  HitRate@1={float(((ga == label) & gv).float().mean()):.4f}  "
          f"ValidRatio={float(gv.float().mean()):.4f}")
    print(f"speed-up of letter scoring over generate+parse: {gt / lt:.2f}x")
    print(f"agreement (same answer, over all questions): {float((la == ga)[gv].sum()) / n:.4f}; "
          f"over valid generated answers: {float((la == ga)[gv].float().mean()) if gv.any() else float('nan'):.4f}")
    if args.candidate:
        ca, _, ct = run(load_model(args, rest, train, valid, scoring="candidate"), loader, "candidate")
        print(f"candidate: {n / ct:7.2f} q/s  HitRate@1={float((ca == label).float().mean()):.4f}  ValidRatio=1.0000")
        print(f"letter scoring vs candidate scoring: {ct / lt:.2f}x (candidate prompts are longer)")


if __name__ == "__main__":
    main()
