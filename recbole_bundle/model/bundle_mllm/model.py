"""Bundle-MLLM (Liu et al., KDD 2025): a causal LLM + LoRA answering multiple-choice bundle questions
with hybrid item tokens (title text + ONE fused multimodal token, joined by a soft separator).

Stages (``stages`` in the yaml): ``s1`` trains LoRA on text-only prompts (bundle patterns),
``s2`` freezes LLM + LoRA and trains fusion, projector and separator on hybrid prompts, ``joint``
trains both at once. Scoring: ``letter`` (one forward pass, softmax over the K letters' logits),
``generate`` (greedy decoding, parsed letter; unparseable answers are invalid) or ``candidate``
(one forward pass; each candidate is followed by a yes/no question and scored by the LLM's
"Yes" - "No" logit at its end, so no answer letter has to be bound to its option: small backbones
lack that multiple-choice symbol binding, see the README).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from recbole.data.interaction import Interaction
from torch import nn

from recbole_bundle.data.dataloader import CANDIDATES, LABEL, PARTIAL, PARTIAL_LEN
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.model.base import BundleChoiceModel, tournament_scores, with_candidates
from recbole_bundle.model.layers import ModalityFusion, Projector
from recbole_bundle.model.bundle_mllm.answers import answer_token_ids, letter_token_ids, parse_letter
from recbole_bundle.model.bundle_mllm.llm import load_backbone
from recbole_bundle.model.bundle_mllm.lora import apply_lora
from recbole_bundle.model.bundle_mllm.options import SCORINGS, STAGES, BundleMLLMOptions
from recbole_bundle.model.bundle_mllm.prompt import ITEM_SLOT, SCORE_REF, SEP_SLOT, PromptBuilder

logger = logging.getLogger(__name__)

TRAINED_PREFIXES = ("fusion.", "projector.", "separator", "item_embedding.")
LEARNED_ID = "item_id"  # a modality learned in S2 (like CLHE's item embedding), not read from a feature


def _pipeline():
    """:mod:`recbole_bundle.inference`, imported by name: exporting and rebuilding a run (config, data, item
    features, then this model) is the pipeline's job; the Hugging Face-style methods only hand it over."""
    return importlib.import_module("recbole_bundle.inference")


@functools.cache
def _cache_kwarg() -> str:
    """The forward argument for a KV cache: transformers >= 5.2x renamed ``past_key_values`` to ``cache``."""
    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


class BundleMLLM(BundleChoiceModel):
    """LLM-based bundle completion with hybrid item tokens and progressive LoRA/fusion training."""

    train_on = "questions"

    @classmethod
    def item_feature_names(cls, config) -> list[str]:
        """The item features the pipeline prepares for the fused token (none without the fused token); the
        learned ``item_id`` modality is this model's own parameter, not a feature."""
        names = list(config["modalities"] or []) if config["use_fused_token"] else []
        return [n for n in names if n != LEARNED_ID]

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.options = opts = BundleMLLMOptions.from_config(config)  # every model option, checked once
        self.stages = list(opts.stages)
        self.k = int(config["n_candidates"])
        self.per_prompt = min(self.k, opts.candidates_per_prompt)
        self.max_new_tokens = opts.max_new_tokens
        self.max_partial = opts.max_partial_items
        self.answer_loss = opts.answer_loss

        llm, self.tokenizer = load_backbone(config["llm_name_or_path"], config["llm_dtype"], device=config["device"],
                                            quantization=config["llm_quantization"])
        if opts.gradient_checkpointing:
            llm.gradient_checkpointing_enable()
            llm.enable_input_require_grads()
        for p in llm.parameters():
            p.requires_grad_(False)
        self.use_lora = opts.lora_r > 0
        if self.use_lora:
            llm = apply_lora(llm, r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout,
                             target_modules=opts.lora_target_modules)
        self.llm = llm
        self.embed = llm.get_input_embeddings()
        hidden = self.embed.embedding_dim
        dev = self.embed.weight.device  # everything the model adds lives beside the backbone's embeddings

        self.prompt = PromptBuilder(
            self.tokenizer, config["prompt_template"],
            {"bundle_name": config["bundle_name"], "item_name": config["item_name"], "domain": config["domain"]},
            self._titles(config, dataset), separator=opts.separator,
            hard_separator_text=config["hard_separator_text"], max_title_tokens=opts.max_title_tokens,
            use_chat_template=bool(config["use_chat_template"]), candidate_question=config["candidate_question"],
        )
        self.set_scoring(opts.scoring)

        self.fused = opts.use_fused_token
        if self.fused:
            names = self.item_feature_names(config)
            prepared = [dataset.item_modality(n) for n in names]
            feats, missing = [f for f, _ in prepared], [m for _, m in prepared]
            d = opts.fusion_dim
            dims = [f.shape[1] for f in feats]
            self.learned_id = LEARNED_ID in opts.modalities
            if self.learned_id:
                # one trainable d-vector per item, trained with the fusion in S2 (CLHE's id embedding): on
                # ids-only data it lets the token carry per-item evidence no fixed feature holds
                self.item_embedding = nn.Embedding(self.n_items, d, padding_idx=0, device=dev)
                nn.init.normal_(self.item_embedding.weight, std=0.1)
                with torch.no_grad():
                    self.item_embedding.weight[0].zero_()
                dims.append(d)
                missing.append(np.arange(self.n_items) == 0)  # every item has an id; only padding is missing
            self.modalities = names + ([LEARNED_ID] if self.learned_id else [])
            for n, f in enumerate(feats):
                self.register_buffer(f"feat_{n}", torch.tensor(f, device=dev), persistent=False)
            self.register_buffer("feat_missing", torch.tensor(np.stack(missing, 1), device=dev), persistent=False)
            self.fusion = ModalityFusion(dims, d, opts.fusion_heads).to(dev)
            self.projector = Projector(d, hidden).to(dev)
            if opts.projector_init == "zero":
                # every fused token starts as the zero vector (like LoRA's B = 0): S2 begins close to what S1
                # learned on text-only prompts instead of from random embeddings the tuned LLM never saw
                nn.init.zeros_(self.projector[-1].weight)
                nn.init.zeros_(self.projector[-1].bias)
            if opts.separator == "soft":
                # initialised at the hard separator's mean embedding, then learned
                init_ids = self.tokenizer.encode(config["hard_separator_text"], add_special_tokens=False)
                with torch.no_grad():
                    init = self.embed.weight[init_ids].float().mean(0)
                self.separator = nn.Parameter(init.clone())
        self._fused_cache: torch.Tensor | None = None
        self._prefix_cache = None
        self.use_fused_cache = opts.fused_cache
        self.use_prefix_cache = opts.prefix_cache
        self.set_stage(self.stages[0] if self.stages else "s1")

    # ------------------------------------------------------------------ data
    @staticmethod
    def _titles(config, dataset) -> list[str]:
        """Item titles; items without one are named by their token (ids-only datasets)."""
        tokens = dataset.field2id_token[dataset.iid_field]
        titles = dataset.item_titles() if "title" in dataset.field2type else [""] * len(tokens)
        name = config["item_name"]
        return [t if t else f"{name} {tokens[i]}" for i, t in enumerate(titles)]

    # ------------------------------------------------------------------ stages
    def set_stage(self, stage: str) -> None:
        """Make exactly the stage's parameters trainable and pick its prompt mode."""
        if stage not in STAGES:
            raise BundleConfigError(f"unknown stage {stage!r}; use one of {STAGES}")
        if stage in ("s2", "joint") and not self.fused:
            raise BundleConfigError(f"stage {stage} trains the fused token, but use_fused_token is False")
        self.stage = stage
        lora_on = stage in ("s1", "joint")
        for name, p in self.named_parameters():
            if "lora_" in name:
                p.requires_grad_(lora_on)
            elif name.startswith(TRAINED_PREFIXES):
                p.requires_grad_(stage in ("s2", "joint"))
        self._clear_caches()

    @property
    def scoring(self) -> str:
        """How answers are read (``letter``, ``generate`` or ``candidate``); change it with :meth:`set_scoring`."""
        return self._scoring

    def set_scoring(self, mode: str) -> None:
        """Switch the answer interface, setting up the answer-word ids it reads from the tokenizer in
        context (letters A.. after the answer prefix, or the yes/no words after each candidate's question)."""
        if mode not in SCORINGS:
            raise BundleConfigError(f"config key 'scoring' must be one of {', '.join(SCORINGS)}, got {mode!r}")
        if mode == "candidate" and not hasattr(self, "yes_no_ids"):
            self.yes_no_ids = torch.tensor(answer_token_ids(self.tokenizer, list(self.options.candidate_answers),
                                                            self.prompt.candidate_question_ids))
        if mode != "candidate" and not hasattr(self, "letter_ids"):
            self.letter_ids = torch.tensor(letter_token_ids(self.tokenizer, self.per_prompt, self.prompt.answer_prefix_ids))
        self._scoring = mode
        self._clear_caches()

    @property
    def marks(self) -> bool:
        """Per-candidate scoring: prompts carry a score mark after every option instead of an answer slot."""
        return self.scoring == "candidate"

    @property
    def hybrid(self) -> bool:
        return self.fused and self.stage in ("s2", "joint")

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what training can change (LoRA, fusion, projector, separator), never the base LLM."""
        return {k: v.detach().cpu() for k, v in self.state_dict().items()
                if "lora_" in k or k.startswith(TRAINED_PREFIXES)}

    def load_trained_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        expected = set(self.trained_state_dict())
        if unexpected or expected - set(state):
            raise BundleConfigError(
                f"checkpoint does not match this model: missing {sorted(expected - set(state))[:5]}, "
                f"unexpected {sorted(unexpected)[:5]} (was it written with another config?)"
            )
        self._clear_caches()

    def save_pretrained(self, directory: str | Path, config=None, metrics: dict | None = None) -> Path:
        """Export like Hugging Face, atomically: ``adapter/`` (the LoRA adapter in peft's format),
        ``fusion.safetensors`` (fusion, projector, separator), ``config.json`` (the run's ``config``: a
        BundleConfig, ``result["config"]`` or the ``run_recbole_bundle`` result itself), ``recbole_bundle.json``
        and a model card ``README.md`` (with ``metrics``, e.g. ``result["test_result"]``). Never the base LLM.
        Load it with :meth:`from_pretrained` or ``recbole_bundle.load(directory)``."""
        return _pipeline().save_pretrained(self, directory, config, metrics)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides) -> "BundleMLLM":
        """The model exported by :meth:`save_pretrained` to ``directory``, in eval mode: the config, dataset
        (same split and seed) and model are rebuilt from its ``config.json`` (``overrides`` win, e.g.
        ``data_path=...``), the backbone comes from ``llm_name_or_path`` (never from the folder), then the
        peft adapter and the fusion weights are loaded. ``recbole_bundle.load(directory)`` also returns the
        config, dataset and loaders."""
        model = _pipeline().load_pretrained(directory, **overrides).model
        if not isinstance(model, cls):
            raise BundleConfigError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}; "
                                    f"use {type(model).__name__}.from_pretrained or recbole_bundle.load")
        return model

    # ------------------------------------------------------------------ forward
    def fused_tokens(self, items: torch.Tensor) -> torch.Tensor:
        """The fused token ``[n, hidden]`` of each item id (all items cached once in eval mode)."""
        if not self.training and self.use_fused_cache:
            if self._fused_cache is None:
                all_items = torch.arange(self.n_items, device=items.device)
                self._fused_cache = torch.cat([self._fuse(c) for c in all_items.split(4096)])
            return self._fused_cache[items.to(self._fused_cache.device)]
        return self._fuse(items)

    def _fuse(self, items: torch.Tensor) -> torch.Tensor:
        items = items.to(self.feat_missing.device)
        feats = [getattr(self, f"feat_{n}")[items] for n in range(len(self.modalities) - self.learned_id)]
        if self.learned_id:
            feats.append(self.item_embedding(items))
        return self.projector(self.fusion(feats, self.feat_missing[items]))

    def _clear_caches(self) -> None:
        """Fused tokens and the prefix KV cache depend on trained weights: recompute after any change."""
        self._fused_cache = None
        self._prefix_cache = None

    def train(self, mode: bool = True):
        self._clear_caches()
        return super().train(mode)

    def _prompts(self, interaction: Interaction, hybrid: bool) -> list[tuple[list[int], list[int]]]:
        partial = interaction[PARTIAL].cpu().numpy()
        plen = interaction[PARTIAL_LEN].cpu().numpy()
        cands = interaction[CANDIDATES].cpu().numpy()
        return [self.prompt.build(partial[b, : min(plen[b], self.max_partial)], cands[b], hybrid, self.marks)
                for b in range(len(cands))]

    def prompt_lengths(self, partial: np.ndarray, partial_len: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Prompt token counts of questions (the evaluation batches questions of similar length)."""
        # K beyond one prompt: the length of its first tournament prompt stands for the question
        return np.asarray([self.prompt.length(partial[q, : min(partial_len[q], self.max_partial)],
                                              candidates[q, : self.per_prompt], self.hybrid, self.marks)
                           for q in range(len(candidates))])

    def _embed(self, seqs: list[tuple[list[int], list[int]]], hybrid: bool, offset: int = 0,
               refs: bool = False) -> dict[str, torch.Tensor]:
        """Left-padded ``inputs_embeds`` / ``attention_mask`` / ``position_ids`` (positions start at ``offset``);
        ``refs``: also the padded item references under ``"item_ref"``."""
        width = max(len(ids) for ids, _ in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        ref = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, (i, r) in enumerate(seqs):
            ids[b, width - len(i):] = torch.tensor(i)
            ref[b, width - len(r):] = torch.tensor(r)
            mask[b, width - len(i):] = 1
        dev = self.embed.weight.device
        ids, ref, mask = ids.to(dev), ref.to(dev), mask.to(dev)
        emb = self.embed(ids.clamp(min=0))
        if hybrid:
            emb = emb.clone()
            slot = ids == ITEM_SLOT
            emb[slot] = self.fused_tokens(ref[slot]).to(emb.dtype)
            sep = ids == SEP_SLOT
            if sep.any():
                emb[sep] = self.separator.to(emb.dtype)
        position_ids = offset + (mask.cumsum(-1) - 1).clamp(min=0)
        out = {"inputs_embeds": emb, "attention_mask": mask, "position_ids": position_ids}
        return {**out, "item_ref": ref} if refs else out

    def encode(self, interaction: Interaction, hybrid: bool | None = None) -> dict[str, torch.Tensor]:
        """Left-padded ``inputs_embeds``, ``attention_mask`` and ``position_ids`` of the batch's prompts."""
        hybrid = self.hybrid if hybrid is None else hybrid
        return self._embed(self._prompts(interaction, hybrid), hybrid)

    def _prefix_kv(self):
        """KV cache of the shared prefix (batch 1), computed once per evaluation."""
        if self._prefix_cache is None:
            ids = torch.tensor([self.prompt.shared_prefix_ids], device=self.embed.weight.device)
            out = self.llm(input_ids=ids, use_cache=True)
            self._prefix_cache = out.cache if "cache" in out else out.past_key_values
        return self._prefix_cache

    def _llm_inputs(self, interaction: Interaction) -> dict[str, torch.Tensor]:
        """Forward arguments for the batch's prompts (+ ``item_ref``). In evaluation with ``prefix_cache``
        the shared instruction prefix is encoded once and its KV cache reused by every batch."""
        if self.training or not self.use_prefix_cache:
            return {**self._embed(self._prompts(interaction, self.hybrid), self.hybrid, refs=True), "use_cache": False}
        n_prefix = len(self.prompt.shared_prefix_ids)
        seqs = [(ids[n_prefix:], ref[n_prefix:]) for ids, ref in self._prompts(interaction, self.hybrid)]
        enc = self._embed(seqs, self.hybrid, offset=n_prefix, refs=True)
        past = copy.deepcopy(self._prefix_kv())
        past.batch_repeat_interleave(len(seqs))
        ones = torch.ones((len(seqs), n_prefix), dtype=enc["attention_mask"].dtype, device=enc["attention_mask"].device)
        enc["attention_mask"] = torch.cat([ones, enc["attention_mask"]], dim=1)
        return {**enc, _cache_kwarg(): past, "use_cache": True}

    def answer_logits(self, interaction: Interaction) -> torch.Tensor:
        """Next-token logits ``[B, vocab]`` at the answer slot."""
        enc = self._llm_inputs(interaction)
        enc.pop("item_ref")
        return self.llm(**enc, logits_to_keep=1).logits[:, -1, :].float()

    def _decoder(self) -> nn.Module:
        """The backbone without its LM head (LoRA layers included): returns normed last hidden states."""
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        return getattr(base, base.base_model_prefix)

    def _candidate_scores(self, interaction: Interaction) -> torch.Tensor:
        """``[B, K]`` "Yes" - "No" logits at each candidate's score position (one forward pass; the LM
        head is applied to those K positions only)."""
        k = interaction[CANDIDATES].shape[1]
        enc = self._llm_inputs(interaction)
        ref = enc.pop("item_ref")
        hidden = self._decoder()(**enc).last_hidden_state
        at = hidden[ref == SCORE_REF].reshape(len(ref), k, -1)  # row-major: candidate order per question
        head = self.llm.get_output_embeddings()
        yes, no = self.yes_no_ids.tolist()
        direction = (head.weight[yes] - head.weight[no]).float()
        scores = at.float() @ direction
        if getattr(head, "bias", None) is not None:
            scores = scores + (head.bias[yes] - head.bias[no]).float()
        return scores

    def candidate_scores(self, interaction: Interaction) -> torch.Tensor:
        """Per-candidate scores ``[B, K]``; K beyond one prompt is split into prompts of
        ``candidates_per_prompt`` (each score depends only on the partial bundle and earlier options,
        so scores from different prompts are comparable and simply concatenated)."""
        chunks = interaction[CANDIDATES].split(self.per_prompt, 1)
        return torch.cat([self._candidate_scores(with_candidates(interaction, c)) for c in chunks], 1)

    def calculate_loss(self, interaction: Interaction) -> torch.Tensor:
        """Loss on the answer letter only: LM cross-entropy over the vocabulary (``answer_loss: lm``,
        the paper's) or over the K letters' logits (``letters``, the scoring rule; learns faster).
        Per-candidate scoring: softmax cross-entropy over the K candidates' yes-no scores."""
        if self.marks:
            return F.cross_entropy(self.candidate_scores(interaction), interaction[LABEL])
        interaction = self._positive_window(interaction)
        logits = self.answer_logits(interaction)
        letters = self.letter_ids.to(logits.device)
        if self.answer_loss == "letters":
            k = interaction[CANDIDATES].shape[1]
            return F.cross_entropy(logits[:, letters[:k]], interaction[LABEL])
        return F.cross_entropy(logits, letters[interaction[LABEL]])

    def _positive_window(self, interaction: Interaction) -> Interaction:
        """Letter training with K beyond one prompt: each question keeps the ``candidates_per_prompt``
        consecutive options that hold its positive (the tournament group it is scored in at evaluation),
        relabelled within that window; K within one prompt is returned unchanged."""
        cands, label = interaction[CANDIDATES], interaction[LABEL]
        k, p = cands.shape[1], self.per_prompt
        if k <= p:
            return interaction
        start = torch.clamp(torch.div(label, p, rounding_mode="floor") * p, max=k - p)
        window = start[:, None] + torch.arange(p, device=cands.device)
        out = with_candidates(interaction, cands.gather(1, window))
        out[LABEL] = label - start
        return out

    @torch.no_grad()
    def score_candidates(self, interaction: Interaction) -> torch.Tensor:
        k = interaction[CANDIDATES].shape[1]
        if self.marks:
            return self.candidate_scores(interaction)
        if k > self.per_prompt:
            if self.scoring == "generate":
                raise BundleConfigError(f"scoring=generate needs every candidate in one prompt: K={k} > "
                                        f"candidates_per_prompt={self.per_prompt}; use scoring=letter")
            return tournament_scores(interaction, self.per_prompt, self._letter_scores)
        if self.scoring == "generate":
            return self._generate_scores(interaction, k)
        return self._letter_scores(interaction)

    def _letter_scores(self, interaction: Interaction) -> torch.Tensor:
        k = interaction[CANDIDATES].shape[1]
        logits = self.answer_logits(interaction)
        return torch.log_softmax(logits[:, self.letter_ids[:k].to(logits.device)], dim=-1)

    def _generate_scores(self, interaction: Interaction, k: int) -> torch.Tensor:
        enc = self.encode(interaction)
        enc.pop("position_ids")
        out = self.llm.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)  # only new tokens (inputs_embeds)
        scores = torch.full((len(texts), k), float("nan"), device=out.device)
        for b, text in enumerate(texts):
            choice = parse_letter(text, k)
            if choice is not None:
                scores[b] = 0.0
                scores[b, choice] = 1.0
        return scores
