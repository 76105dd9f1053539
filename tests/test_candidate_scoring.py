"""Per-candidate scoring (``scoring: candidate``): each option followed by a yes/no question, scored by
the "Yes" - "No" logit at its last token, trained with softmax over the K options."""

from __future__ import annotations

import pytest
import torch

from recbole_bundle.data.dataloader import CANDIDATES, LABEL
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.model.base import with_candidates
from recbole_bundle.model.bundle_mllm.answers import answer_token_ids
from recbole_bundle.model.bundle_mllm.prompt import ITEM_SLOT, SCORE_REF
from recbole_bundle.trainer import BundleMLLMTrainer

from tests.conftest import build


def test_prompt_marks_one_score_position_per_candidate(mllm_config):
    _, net, *_ = build(mllm_config, scoring="candidate")
    question = net.prompt.candidate_question_ids
    ids, ref = net.prompt.build([5, 6], [7, 8, 9, 10], hybrid=True, marks=True)
    marks = [p for p, r in enumerate(ref) if r == SCORE_REF]
    assert len(marks) == 4 and marks[-1] == len(ids) - 1  # the prompt ends at the last option's question
    slots = [p for p, t in enumerate(ids) if t == ITEM_SLOT]
    for m, slot in zip(marks, slots[2:]):  # each mark closes its own option's question, after its fused token
        assert ids[m - len(question) + 1: m + 1] == question and slot < m
        assert ref[slot] in (7, 8, 9, 10)
    letter_ids, letter_ref = net.prompt.build([5, 6], [7, 8, 9, 10], hybrid=True)
    assert SCORE_REF not in letter_ref and letter_ids[-len(net.prompt.answer_prefix_ids):] == net.prompt.answer_prefix_ids
    assert ids[-len(net.prompt.answer_prefix_ids):] != net.prompt.answer_prefix_ids  # no answer slot


def _manual_scores(net, batch):
    """The same scores through the full LM head of a plain (uncached) forward pass."""
    enc = net._embed(net._prompts(batch, net.hybrid), net.hybrid, refs=True)
    ref = enc.pop("item_ref")
    logits = net.llm(**enc, use_cache=False).logits
    yes, no = net.yes_no_ids.tolist()
    diff = logits[..., yes] - logits[..., no]
    return diff[ref == SCORE_REF].reshape(batch[CANDIDATES].shape)


@pytest.mark.parametrize("stage", ["s1", "s2"])
def test_scores_equal_yes_minus_no_logits_with_and_without_caches(mllm_config, stage):
    _, net, _, _, test = build(mllm_config, scoring="candidate")
    net.set_stage(stage)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    net.eval()
    batch = next(iter(test))
    with torch.no_grad():
        expected = _manual_scores(net, batch)
        for prefix in (False, True):
            net.use_prefix_cache = prefix
            net._clear_caches()
            got = net.score_candidates(batch)
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4, msg=f"prefix cache {prefix}")
    assert got.shape == batch[CANDIDATES].shape and got.std() > 0


def test_candidates_beyond_one_prompt_are_scored_per_chunk(mllm_config):
    _, net, _, _, test = build(mllm_config, scoring="candidate", candidates_per_prompt=2)
    net.eval()
    batch = next(iter(test))
    cands = batch[CANDIDATES]
    with torch.no_grad():
        full = net.score_candidates(batch)
        parts = [net._candidate_scores(with_candidates(batch, c)) for c in cands.split(2, 1)]
    torch.testing.assert_close(full, torch.cat(parts, 1))


def test_training_lowers_the_listwise_loss_and_reaches_lora(mllm_config):
    cfg, net, train, *_ = build(mllm_config, scoring="candidate", lora_r=8)
    net.set_stage("s1")
    net.train()
    batch = next(iter(train))
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=2e-2)
    first = net.calculate_loss(batch)
    assert first.ndim == 0 and torch.isfinite(first)
    for _ in range(40):
        opt.zero_grad()
        loss = net.calculate_loss(batch)
        loss.backward()
        opt.step()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in net.named_parameters() if "lora_" in n)
    assert net.calculate_loss(batch) < 0.7 * first  # memorises one batch: the loss reaches the score positions
    net.eval()
    with torch.no_grad():
        right = (net.score_candidates(batch).argmax(-1) == batch[LABEL]).float().mean()
    assert right > 0.5


def test_trainer_runs_candidate_scoring_end_to_end(mllm_config):
    """S1 -> S2 through the trainer: both stages move their own weights, and the reported HitRate@1 is
    exactly the share of test questions whose top per-candidate score is the positive."""
    cfg, net, train, valid, test = build(mllm_config, scoring="candidate", stages=["s1", "s2"], lora_r=4)
    before = {k: v.clone() for k, v in net.trained_state_dict().items()}
    trainer = BundleMLLMTrainer(cfg, net)
    trainer.fit(train, valid, saved=False, show_progress=False)
    after = net.trained_state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_" in k)  # S1 trained LoRA
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("projector."))  # S2 the token
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    net.eval()
    with torch.no_grad():
        hits = torch.cat([(net.score_candidates(b).argmax(-1).cpu() == b[LABEL].cpu()) for b in test])
    assert result["hitrate@1"] == round(hits.float().mean().item(), 4) and result["validratio"] == 1.0


def test_answer_words_must_be_single_distinct_tokens(mllm_config):
    _, net, *_ = build(mllm_config, scoring="candidate")
    tok = net.tokenizer
    yes, no = answer_token_ids(tok, ["Yes", "No"], net.prompt.candidate_question_ids)
    assert yes != no
    with pytest.raises(BundleConfigError, match="not a single token"):
        answer_token_ids(tok, ["Yes", "Nope-not-at-all-xyz"], [])
    with pytest.raises(BundleConfigError, match="share token ids"):
        answer_token_ids(tok, ["Yes", "Yes"], [])
    with pytest.raises(BundleConfigError, match="candidate_question"):
        build(mllm_config, scoring="candidate", candidate_question="")
    with pytest.raises(BundleConfigError, match="scoring"):
        build(mllm_config, scoring="cloze")


@pytest.mark.parametrize("name", ["bundle_mllm_paper.yaml", "bundle_mllm_small.yaml"])
def test_shipped_config_presets_only_use_known_keys(name):
    """A typo in a preset would silently be ignored by RecBole's Config: every key must be a model key."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    known = set(yaml.safe_load((root / "properties/model/BundleMLLM.yaml").read_text()))
    known |= {"use_gpu"}  # RecBole's own device switch
    preset = yaml.safe_load((root / "configs" / name).read_text())
    assert preset and set(preset) <= known, sorted(set(preset) - known)
