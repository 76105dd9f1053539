"""Bundle-MLLM on a tiny random Llama saved and reloaded through from_pretrained."""

from __future__ import annotations

import glob

import pytest
import torch

from recbole_bundle.config import BundleConfig
from recbole_bundle.model.bundle_mllm.prompt import ITEM_SLOT, SEP_SLOT
from recbole_bundle.quick_start import run_recbole_bundle
from recbole_bundle.trainer import BundleMLLMTrainer
from tests.conftest import build


def test_prompt_shapes_and_fused_tokens_land_in_slots(mllm_config):
    cfg, net, train, valid, test = build(mllm_config)
    batch = next(iter(test))
    net.set_stage("s2")
    net.eval()
    enc = net.encode(batch)
    emb, mask = enc["inputs_embeds"], enc["attention_mask"]
    b, k = batch["candidates"].shape
    assert emb.shape[:2] == mask.shape and emb.shape[2] == net.embed.embedding_dim
    seqs = [net.prompt.build(batch["partial"][i, : batch["partial_len"][i]].tolist(), batch["candidates"][i].tolist(), True)
            for i in range(b)]
    for i, (ids, ref) in enumerate(seqs):
        n_slots = sum(t == ITEM_SLOT for t in ids)
        assert n_slots == int(batch["partial_len"][i]) + k  # ONE fused token per item
        assert sum(t == SEP_SLOT for t in ids) == n_slots  # a separator before each of them
        row = emb[i, emb.shape[1] - len(ids):]
        for pos in [p for p, t in enumerate(ids) if t == ITEM_SLOT]:
            assert ids[pos - 1] == SEP_SLOT
            torch.testing.assert_close(row[pos], net.fused_tokens(torch.tensor([ref[pos]]))[0])
            torch.testing.assert_close(row[pos - 1], net.separator.detach())
    text_ids, _ = net.prompt.build([1, 2], [3, 4, 5, 6], hybrid=False)
    assert ITEM_SLOT not in text_ids and SEP_SLOT not in text_ids


@pytest.mark.parametrize("variant", ["hard", "none"])
def test_separator_variants(mllm_config, variant):
    cfg, net, *_ = build(mllm_config, separator=variant)
    ids, _ = net.prompt.build([5], [7, 8, 9, 10], hybrid=True)
    assert SEP_SLOT not in ids and not hasattr(net, "separator")
    slots = [p for p, t in enumerate(ids) if t == ITEM_SLOT]
    title = net.prompt._titles[5]
    first = slots[0]
    if variant == "none":
        assert ids[first - len(title): first] == title
    else:
        sep = net.tokenizer.encode(cfg["hard_separator_text"], add_special_tokens=False)
        assert ids[first - len(sep): first] == sep


def snapshot(module, pred):
    return {k: v.detach().clone() for k, v in module.named_parameters() if pred(k)}


def test_s2_freezes_llm_and_lora_bit_identical_while_fusion_learns(mllm_config):
    cfg, net, train, valid, test = build(mllm_config)
    trainer = BundleMLLMTrainer(cfg, net)
    net.set_stage("s1")
    trainer.optimizer = trainer._build_optimizer()
    before = snapshot(net, lambda k: True)
    trainer._train_epoch(train, 0)
    after_s1 = snapshot(net, lambda k: True)
    assert any(not torch.equal(before[k], after_s1[k]) for k in before if "lora_" in k), "S1 must train LoRA"
    assert all(torch.equal(before[k], after_s1[k]) for k in before if "lora_" not in k), "S1 trains LoRA only"
    net.set_stage("s2")
    trainer.optimizer = trainer._build_optimizer()
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for n, p in net.named_parameters() if n.startswith(("fusion.", "projector.", "separator"))}
    trainer._train_epoch(train, 0)
    after_s2 = snapshot(net, lambda k: True)
    for k in after_s1:
        if k.startswith(("fusion.", "projector.", "separator")):
            continue
        assert torch.equal(after_s1[k], after_s2[k]), f"{k} changed in S2"
    assert not torch.equal(after_s1["separator"], after_s2["separator"])
    assert any(not torch.equal(after_s1[k], after_s2[k]) for k in after_s1 if k.startswith("fusion."))


def test_letter_scoring_and_generate_parsing(mllm_config, monkeypatch):
    cfg, net, train, valid, test = build(mllm_config)
    letters = [net.tokenizer.convert_ids_to_tokens(i).lstrip("Ġ▁ ") for i in net.letter_ids.tolist()]
    assert letters == ["A", "B", "C", "D"]
    batch = next(iter(test))
    net.eval()
    scores = net.score_candidates(batch)
    assert scores.shape == batch["candidates"].shape
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(len(scores)))  # softmax over the K letters

    b_id = net.tokenizer.encode("B", add_special_tokens=False)
    junk = net.tokenizer.encode("the", add_special_tokens=False)

    def fake_generate(**kw):
        n = kw["inputs_embeds"].shape[0]
        rows = [b_id if i % 2 == 0 else junk for i in range(n)]
        width = max(map(len, rows))
        return torch.tensor([r + [net.tokenizer.pad_token_id] * (width - len(r)) for r in rows])

    monkeypatch.setattr(net.llm, "generate", fake_generate)
    net.set_scoring("generate")
    g = net.score_candidates(batch)
    assert (g[0::2].argmax(-1) == 1).all() and torch.isnan(g[1::2]).all()


def test_trained_state_round_trip_and_save_pretrained(mllm_config, tmp_path):
    cfg, net, train, valid, test = build(mllm_config)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if "lora_B" in n or n.startswith("projector."):
                p.add_(0.05)
    state = net.trained_state_dict()
    assert state and all("lora_" in k or k.startswith(("fusion.", "projector.", "separator")) for k in state)
    assert not any("embed_tokens" in k and "lora" not in k for k in state)
    _, fresh, *_ = build(mllm_config)
    fresh.load_trained_state_dict(state)
    batch = next(iter(test))
    net.eval(), fresh.eval()
    net.set_stage("s2"), fresh.set_stage("s2")
    torch.testing.assert_close(net.score_candidates(batch), fresh.score_candidates(batch))
    out = net.save_pretrained(tmp_path / "export", config=cfg)
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "fusion.safetensors").is_file()
    total = sum(f.stat().st_size for f in out.rglob("*.safetensors"))  # the weights (cards/configs aside)
    base = sum(p.numel() * 4 for n, p in net.llm.named_parameters() if "lora_" not in n)
    assert total < base  # only what was trained, never the base LLM


def test_resume_after_kill_matches_uninterrupted_run(mllm_config, tmp_path, monkeypatch):
    mllm_config.update(epochs=2, stopping_step=5)
    full = run_recbole_bundle("BundleMLLM", "sample", config_dict=dict(mllm_config))

    killed_cfg = dict(mllm_config, checkpoint_dir=str(tmp_path / "killed"))
    calls = {"n": 0}
    original = BundleMLLMTrainer._after_epoch

    def kill_after_first_epoch(self, epoch_idx, score):
        original(self, epoch_idx, score)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(BundleMLLMTrainer, "_after_epoch", kill_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_recbole_bundle("BundleMLLM", "sample", config_dict=killed_cfg)
    monkeypatch.setattr(BundleMLLMTrainer, "_after_epoch", original)
    (last,) = glob.glob(str(tmp_path / "killed" / "*.last.pth"))
    resumed = run_recbole_bundle("BundleMLLM", "sample", config_dict=dict(killed_cfg, resume_checkpoint=last))
    assert resumed["test_result"] == full["test_result"]
    assert resumed["best_valid_score"] == full["best_valid_score"]


def test_zero_shot_and_text_lora_baselines_run(mllm_config):
    zs = run_recbole_bundle("LLMZeroShot", "sample", config_dict=dict(mllm_config))
    assert zs["test_result"]["validratio"] == 1.0 and zs["checkpoint"] is None  # nothing trained, nothing saved
    cfg = BundleConfig("LLMTextLoRA", "sample", config_dict=dict(mllm_config))
    assert cfg["stages"] == ["s1"] and cfg["use_fused_token"] is False and cfg["lora_r"] == 8
    tl = run_recbole_bundle("LLMTextLoRA", "sample", config_dict=dict(mllm_config))
    assert set(tl["test_result"]) == {"hitrate@1", "validratio", "hitrate@1(valid)"}


def test_model_init_is_the_same_whether_the_relational_cache_exists(mllm_config):
    """Training the relational LightGCN (cold cache) must not move the RNG the model is built from:
    otherwise a resumed run (warm cache) starts S2 from other fusion weights than the original run."""
    cold = build(mllm_config)[1]  # trains LightGCN and writes the cache
    warm = build(mllm_config)[1]  # reads it
    for (name, a), (_, b) in zip(cold.named_parameters(), warm.named_parameters()):
        if name.startswith(("fusion.", "projector.")) or "lora_" in name:
            assert torch.equal(a, b), name


def test_options_are_typed_and_checked_once(mllm_config):
    """Bundle-MLLM's options are one checked structure; scoring changes only through set_scoring."""
    from recbole_bundle.errors import BundleConfigError

    cfg, net, *_ = build(mllm_config)
    assert net.options.scoring == net.scoring == "letter" and net.options.stages == ("s1", "s2")
    with pytest.raises(AttributeError):
        net.scoring = "candidate"  # read-only: switching must set up the answer words
    net.set_scoring("candidate")
    assert net.scoring == "candidate" and len(net.yes_no_ids) == 2
    for key, value, rule in [("scoring", "cloze", "must be one of letter, generate, candidate"),
                             ("stages", ["s3"], "must be one of s1, s2, joint"),
                             ("fusion_heads", 3, "must divide fusion_dim"),
                             ("lora_dropout", 1.5, r"must lie in \[0, 1\)"),
                             ("candidates_per_prompt", 0, "must be >= 1")]:
        with pytest.raises(BundleConfigError, match=rf"'{key}' {rule}"):
            build(mllm_config, **{key: value})


def test_learned_item_id_modality_trains_in_s2_and_reloads(mllm_config):
    """``modalities: [relational, degree, item_id]``: the id embedding is a model parameter trained in S2
    (only rows of items the questions showed move), saved with the fusion weights and reloaded exactly."""
    cfg, net, train, valid, test = build(mllm_config, modalities=["relational", "degree", "item_id"],
                                         stages=["s2"])
    assert net.modalities == ["relational", "degree", "item_id"]
    assert type(net).item_feature_names(cfg) == ["relational", "degree"]  # item_id is not a prepared feature
    trainer = BundleMLLMTrainer(cfg, net)
    net.set_stage("s2")
    trainer.optimizer = trainer._build_optimizer()
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(net.item_embedding.weight) in opt_params
    before = net.item_embedding.weight.detach().clone()
    seen, fuse = set(), net._fuse

    def recording_fuse(items):  # the items whose tokens the training prompts held
        seen.update(items.tolist())
        return fuse(items)

    net._fuse = recording_fuse
    trainer._train_epoch(train, 0)
    del net._fuse
    moved = (net.item_embedding.weight.detach() != before).any(1)
    assert moved.any() and not moved[0]
    unseen = [i for i in range(1, net.n_items) if i not in seen]
    assert unseen and not moved[unseen].any()
    state = net.trained_state_dict()
    assert "item_embedding.weight" in state
    _, fresh, *_ = build(mllm_config, modalities=["relational", "degree", "item_id"], stages=["s2"])
    fresh.load_trained_state_dict(state)
    net.eval(), fresh.eval()
    batch = next(iter(test))
    torch.testing.assert_close(net.score_candidates(batch), fresh.score_candidates(batch), rtol=0, atol=0)


def test_zero_projector_init_starts_every_fused_token_at_zero_and_s2_moves_it(mllm_config):
    cfg, net, train, valid, test = build(mllm_config, projector_init="zero", stages=["s2"])
    items = torch.arange(1, net.n_items)
    assert torch.equal(net.fused_tokens(items), torch.zeros(len(items), net.embed.embedding_dim))
    trainer = BundleMLLMTrainer(cfg, net)
    net.set_stage("s2")
    trainer.optimizer = trainer._build_optimizer()
    trainer._train_epoch(train, 0)
    assert net.fused_tokens(items).abs().sum() > 0  # the zero output layer gets gradients and the token learns
    _, random_init, *_ = build(mllm_config, stages=["s2"])  # the default (paper): PyTorch's init, nonzero tokens
    assert (random_init.fused_tokens(items).abs().sum(1) > 0).all()
