"""Why does fine-tuning not lift a small LLM? Separate "cannot bind answer letters to options" from
"cannot learn bundle patterns".

    python benchmarks/symbol_binding.py --dataset=sample --eval-questions=96 --copy-steps=100 --real-steps=150

A *copy* question is a real question whose positive candidate is ALSO listed in the partial bundle,
so it is solvable by matching titles alone. Phases, all on the same fixed questions:

1. zero-shot accuracy on real and copy questions;
2. LoRA trained on copy questions only (``--copy-steps`` optimizer steps): accuracy on copy and real;
3. that adapter trained on real questions (``--real-steps``): accuracy on real (curriculum);
4. control: a fresh adapter trained on real questions only for ``--real-steps``.

If (1) copy is near chance the backbone lacks multiple-choice symbol binding (Robinson et al., 2023,
"Leveraging LLMs for multiple choice question answering": it emerges with scale); if (2) copy rises
the binding is learnable; whether (3) beats (4) says whether learning it first helps the real task.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataloader import ChoiceDataLoader
from recbole_bundle.data.questions import QuestionSet, pad, sample_train_questions
from recbole_bundle.trainer import BundleMLLMTrainer
from recbole_bundle.data.prepare import create_dataset, data_preparation


def with_positive_in_partial(qs: QuestionSet, seed: int) -> QuestionSet:
    """Copy questions: the positive is inserted at a random position of the partial bundle."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(len(qs)):
        items = list(qs.partial[q, : qs.partial_len[q]])
        items.insert(int(rng.integers(len(items) + 1)), qs.positive[q])
        rows.append(np.asarray(items, dtype=np.int64))
    partial, plen = pad(rows)
    return QuestionSet(bundle=qs.bundle, partial=partial, partial_len=plen, candidates=qs.candidates, label=qs.label)


def accuracy(model, loader) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model.score_candidates(b).argmax(-1) == b["label"]).sum()) for b in loader)
    return hits / len(loader.questions)


def train(trainer, model, batches) -> float:
    """One pass over ``batches``; returns the mean training loss."""
    model.train()
    return trainer._train_epoch(batches, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="sample")
    p.add_argument("--eval-questions", type=int, default=96)
    p.add_argument("--copy-steps", type=int, default=100)
    p.add_argument("--real-steps", type=int, default=150)
    p.add_argument("--lr", type=float, default=1e-3)
    args, rest = p.parse_known_args()
    cfg = BundleConfig("LLMTextLoRA", args.dataset, config_dict={
        "state": "WARNING", "show_progress": False, "answer_loss": "letters", "s1_learning_rate": args.lr,
        "warmup_steps": 10}, cmd_args=rest)
    dataset = create_dataset(cfg)
    train_data, _, test = data_preparation(cfg, dataset)
    bs = int(cfg["train_batch_size"])
    real_eval = test.questions.subset(args.eval_questions, seed=0)
    loaders = {"real": ChoiceDataLoader(cfg, test.dataset, real_eval, 8),
               "copy": ChoiceDataLoader(cfg, test.dataset, with_positive_in_partial(real_eval, 1), 8)}

    def train_set(n_steps: int, copy: bool, seed: int) -> ChoiceDataLoader:
        """``n_steps`` batches of fresh training questions (passes over the train bundles, paper recipe)."""
        rng, pools, need = np.random.default_rng(seed), [], n_steps * bs
        while sum(len(q) for q in pools) < need:
            pools.append(sample_train_questions(train_data.bundle_items, train_data.bundle_ids, train_data.sampler,
                                                train_data.k, rng, train_data.max_items))
        rows = [q.partial[i, : q.partial_len[i]] for q in pools for i in range(len(q))][:need]
        partial, plen = pad(rows)
        qs = QuestionSet(bundle=np.concatenate([q.bundle for q in pools])[:need], partial=partial, partial_len=plen,
                         candidates=np.concatenate([q.candidates for q in pools])[:need],
                         label=np.concatenate([q.label for q in pools])[:need])
        return ChoiceDataLoader(cfg, test.dataset, with_positive_in_partial(qs, seed) if copy else qs, bs)

    def fresh():
        torch.manual_seed(0)
        model = cfg.model_class(cfg, test.dataset)
        trainer = BundleMLLMTrainer(cfg, model)
        model.set_stage("s1")
        trainer.optimizer = trainer._build_optimizer()
        return model, trainer

    def report(phase: str, **acc) -> None:
        print(f"{phase:<40} " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()) + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)

    t0 = time.perf_counter()
    model, trainer = fresh()
    report("1. zero-shot", real=accuracy(model, loaders["real"]), copy=accuracy(model, loaders["copy"]))
    loss = train(trainer, model, train_set(args.copy_steps, copy=True, seed=11))
    report(f"2. LoRA on copy ({args.copy_steps} steps, loss {loss:.2f})",
           real=accuracy(model, loaders["real"]), copy=accuracy(model, loaders["copy"]))
    loss = train(trainer, model, train_set(args.real_steps, copy=False, seed=12))
    report(f"3. then real ({args.real_steps} steps, loss {loss:.2f})",
           real=accuracy(model, loaders["real"]), copy=accuracy(model, loaders["copy"]))
    model, trainer = fresh()
    loss = train(trainer, model, train_set(args.real_steps, copy=False, seed=12))
    report(f"4. control: real only ({args.real_steps} steps, loss {loss:.2f})",
           real=accuracy(model, loaders["real"]), copy=accuracy(model, loaders["copy"]))


if __name__ == "__main__":
    main()
