"""Can the LLM learn at all? Train LoRA on a handful of FIXED questions and watch accuracy on them.

    python benchmarks/overfit_check.py --dataset=sample --questions=16 --epochs=12

A healthy pipeline memorises them (accuracy -> 1.0, loss -> 0); if it does not, the bug is in the
model/trainer, not in the data budget. Prints loss and accuracy per epoch.
"""

from __future__ import annotations

import argparse

import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataloader import ChoiceDataLoader
from recbole_bundle.trainer import BundleMLLMTrainer
from recbole_bundle.data.prepare import create_dataset, data_preparation
from recbole_bundle.quick_start import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="sample")
    p.add_argument("--model", default="LLMTextLoRA")
    p.add_argument("--questions", type=int, default=16)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    args, rest = p.parse_known_args()
    cfg = BundleConfig(args.model, args.dataset, config_dict={
        "state": "WARNING", "show_progress": False, "answer_loss": "letters", "s1_learning_rate": args.lr,
        "warmup_steps": 1}, cmd_args=rest)
    dataset = create_dataset(cfg)
    train, valid, test = data_preparation(cfg, dataset)
    loader = ChoiceDataLoader(cfg, test.dataset, test.questions.subset(args.questions, seed=0), 8)
    model = build_model(cfg, train, valid)
    trainer = BundleMLLMTrainer(cfg, model)
    model.set_stage(model.stages[0] if model.stages else "s1")
    trainer.optimizer = trainer._build_optimizer()
    for epoch in range(args.epochs):
        loss = trainer._train_epoch(loader, epoch)
        model.eval()
        with torch.no_grad():
            hits = sum(int((model.score_candidates(b).argmax(-1) == b["label"]).sum()) for b in loader)
        print(f"epoch {epoch:2d}  loss {loss:.3f}  accuracy {hits / args.questions:.3f}", flush=True)


if __name__ == "__main__":
    main()
