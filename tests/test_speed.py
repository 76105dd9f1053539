"""Inference speed features change speed, never answers: fused-token cache, shared-prefix KV cache,
length-sorted evaluation batches, chunked (tournament) scoring of large candidate sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recbole_bundle.data.dataloader import CANDIDATES
from recbole_bundle.model.base import with_candidates
from recbole_bundle.trainer import BundleMLLMTrainer

from tests.conftest import build


def _letter_probs(net, batch):
    return torch.softmax(net.score_candidates(batch), -1)


@pytest.mark.parametrize("stage", ["s1", "s2"])
def test_caches_give_the_same_letter_probabilities(mllm_config, stage):
    _, net, _, _, test = build(mllm_config)
    net.set_stage(stage)
    with torch.no_grad():  # move fusion/separator away from their init so the hybrid tokens matter
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    net.eval()
    batch = next(iter(test))
    results = {}
    for fused in (False, True):
        for prefix in (False, True):
            net.use_fused_cache, net.use_prefix_cache = fused, prefix
            net._clear_caches()
            results[fused, prefix] = _letter_probs(net, batch)
    assert net._prefix_cache is not None and (stage == "s1" or net._fused_cache is not None)
    for key, probs in results.items():
        torch.testing.assert_close(probs, results[False, False], atol=1e-5, rtol=1e-4, msg=f"fused/prefix cache {key}")
    # prefix reuse gives the same next-token logits over the whole vocabulary
    net.use_prefix_cache = False
    plain = net.answer_logits(batch)
    net.use_prefix_cache = True
    torch.testing.assert_close(net.answer_logits(batch), plain, atol=1e-4, rtol=1e-4)


def test_caches_are_dropped_when_weights_change(mllm_config):
    _, net, _, _, test = build(mllm_config)
    net.eval()
    batch = next(iter(test))
    before = _letter_probs(net, batch)
    assert net._prefix_cache is not None
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)
    net.train()  # the trainer switches modes around every step: the caches go
    assert net._prefix_cache is None and net._fused_cache is None
    net.eval()
    net.use_prefix_cache = False
    expected = _letter_probs(net, batch)
    net.use_prefix_cache = True
    torch.testing.assert_close(_letter_probs(net, batch), expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(expected, before)


def test_length_sorted_evaluation_same_answers(mllm_config):
    cfg, net, _, _, test = build(mllm_config, eval_batch_size=3)
    trainer = BundleMLLMTrainer(cfg, net)
    order = trainer._eval_order(test)
    qs = test.questions
    lengths = net.prompt_lengths(qs.partial, qs.partial_len, qs.candidates)
    assert order is not None and np.all(np.diff(lengths[order]) >= 0) and not np.array_equal(order, np.arange(len(qs)))
    sorted_result = trainer.evaluate(test, load_best_model=False)
    sorted_answers = trainer.last_predictions["answer"].copy()
    trainer.config["eval_sort_by_length"] = False
    np.testing.assert_array_equal(trainer._eval_order(test), np.arange(len(qs)))
    plain_result = trainer.evaluate(test, load_best_model=False)
    np.testing.assert_array_equal(trainer.last_predictions["answer"], sorted_answers)
    assert plain_result == sorted_result


def test_chunked_scoring_k100_same_argmax_as_all_at_once(mllm_config):
    """K=100 through the real model path, 10 candidates per prompt; the LLM is replaced by a scorer whose
    preference is a fixed utility per item, so scoring all 100 at once has a well-defined argmax."""
    _, net, _, _, test = build(mllm_config, n_candidates=100, candidates_per_prompt=10, eval_batch_size=8)
    utility = torch.randn(net.n_items, generator=torch.Generator().manual_seed(0))
    seen_k = []

    def fake_logits(interaction):
        cands = interaction[CANDIDATES]
        seen_k.append(cands.shape[1])
        logits = torch.full((len(cands), int(net.letter_ids.max()) + 1), -50.0)
        logits[:, net.letter_ids[: cands.shape[1]]] = utility[cands]
        return logits

    net.answer_logits = fake_logits
    net.eval()
    batch = next(iter(test))
    assert batch[CANDIDATES].shape[1] == 100
    scores = net.score_candidates(batch)
    assert max(seen_k) <= 10 and len(seen_k) == 10 + 1  # 10 groups, then the final of the 10 winners
    all_at_once = utility[batch[CANDIDATES]]
    torch.testing.assert_close(scores.argmax(-1), all_at_once.argmax(-1))
    # ranks: the final's runners-up rank above everything knocked out in round 0
    top = scores.argsort(-1, descending=True)[:, :10]
    assert (scores.gather(1, top) >= 1e4 - 100).all()


def test_tournament_with_uneven_groups_and_real_model(mllm_config):
    _, net, _, _, test = build(mllm_config, n_candidates=11, candidates_per_prompt=4)
    net.eval()
    batch = next(iter(test))
    scores = net.score_candidates(batch)
    assert scores.shape == batch[CANDIDATES].shape and torch.isfinite(scores).all()
    # the winner is the candidate the model prefers when shown the final group side by side
    finalists = scores.argsort(-1, descending=True)[:, :3].sort(-1).values  # 11 -> groups 4,4,3 -> 3 finalists, in group order
    assert (scores.gather(1, finalists) >= 1e4 - 100).all()
    final = net._letter_scores(with_candidates(batch, batch[CANDIDATES].gather(1, finalists)))
    torch.testing.assert_close(finalists.gather(1, final.argmax(-1, keepdim=True)).squeeze(1), scores.argmax(-1))


def test_evaluation_beyond_one_prompt_through_the_trainer(mllm_config):
    """K=30 > 26 letters: length sorting and the tournament work inside the trainer's evaluation."""
    cfg, net, _, _, test = build(mllm_config, n_candidates=30, test_max_questions=6)
    trainer = BundleMLLMTrainer(cfg, net)
    result = trainer.evaluate(test, load_best_model=False)
    assert 0 <= result["hitrate@1"] <= 1 and len(trainer.last_predictions["answer"]) == 6
    assert trainer.last_predictions["answer"].max() < 30


def test_generate_mode_refuses_chunking(mllm_config):
    from recbole_bundle.errors import BundleConfigError

    _, net, _, _, test = build(mllm_config, n_candidates=8, candidates_per_prompt=4, scoring="generate")
    net.eval()
    with pytest.raises(BundleConfigError, match="scoring=generate needs every candidate in one prompt"):
        net.score_candidates(next(iter(test)))


def test_quantized_loading_explains_what_is_missing(tiny_path):  # noqa: F811
    from recbole_bundle.errors import BundleConfigError
    from recbole_bundle.model.bundle_mllm.llm import load_backbone

    with pytest.raises(BundleConfigError, match="llm_quantization=8bit needs a CUDA GPU.*llm_quantization: ~"):
        load_backbone(tiny_path, quantization="8bit")
    with pytest.raises(BundleConfigError, match="must be ~ \\(none\\), 8bit or 4bit"):
        load_backbone(tiny_path, quantization="3bit")
    model, _ = load_backbone(tiny_path, quantization=None)
    assert next(model.parameters()).dtype == torch.float32


def test_mixed_precision_switch(mllm_config):
    from recbole_bundle.errors import BundleConfigError

    cfg, net, *_ = build(mllm_config, mixed_precision="bf16")
    trainer = BundleMLLMTrainer(cfg, net)
    ctx = trainer._autocast()
    if torch.device(trainer.device).type == "cuda":  # the promise on a GPU: bf16 autocast when asked for
        assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
        trainer.config["mixed_precision"] = "no"
        assert not isinstance(trainer._autocast(), torch.autocast)
    else:  # on CPU: no autocast whatever the switch
        assert not isinstance(ctx, torch.autocast)
    trainer.config["mixed_precision"] = "fp8"
    with pytest.raises(BundleConfigError, match="mixed_precision"):
        trainer._autocast()


def test_letter_training_beyond_one_prompt_uses_the_positives_window(mllm_config):
    """K > candidates_per_prompt with letter scoring trains on the tournament group holding the positive."""
    _, net, train, *_ = build(mllm_config, n_candidates=7, candidates_per_prompt=3, stages=["s1"], lora_r=4)
    batch = next(iter(train))
    cands, label = batch[CANDIDATES], batch["label"]
    window = net._positive_window(batch)
    assert window[CANDIDATES].shape == (len(cands), 3)
    positive = cands[torch.arange(len(cands)), label]
    torch.testing.assert_close(window[CANDIDATES][torch.arange(len(cands)), window["label"]], positive)
    starts = (window[CANDIDATES][:, :1] == cands).float().argmax(1)  # each window is consecutive options
    for b in range(len(cands)):
        assert window[CANDIDATES][b].tolist() == cands[b, starts[b]: starts[b] + 3].tolist()
    loss = net.calculate_loss(batch)
    assert torch.isfinite(loss) and loss.requires_grad
