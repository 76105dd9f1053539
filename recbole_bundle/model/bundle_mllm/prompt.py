"""Multiple-choice prompts with hybrid item tokens, as token-id sequences.

An item is written as its title tokens, then (hybrid mode) a separator and ONE slot for its fused
multimodal token: ``title [SEP] [ITEM]``. Slots are negative placeholder ids, replaced by embeddings
in the model (``ITEM_SLOT`` -> the item's fused token, ``SEP_SLOT`` -> the learnable soft separator);
``separator: hard`` writes a fixed text separator instead, ``none`` nothing. Titles are tokenised
once per item. The template comes from the yaml (``prompt_template``) with the dataset's domain words;
where the tokenizer has a chat template the question is the user turn and the answer letter starts
the assistant turn.

Per-candidate scoring (``marks=True``) writes a short yes/no question after every candidate
(``candidate_question``) and ends the prompt after the last one; the model reads each candidate's
score at the last token of its question (marked ``SCORE_REF`` in ``item_ref``), so no letter has to
be bound to an option.
"""

from __future__ import annotations

from typing import Sequence

from transformers import PreTrainedTokenizerBase

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.model.bundle_mllm.answers import LETTERS

ITEM_SLOT = -1
SEP_SLOT = -2
SCORE_REF = -1  # item_ref value at a candidate's score position (per-candidate scoring)
_MARK = "\u241f"  # a character no template uses: marks where the question goes inside the chat template


class PromptBuilder:
    """Builds ``(ids, item_ref)`` for a question; ``item_ref[t]`` is the item id behind an ``ITEM_SLOT``."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        template: str,
        words: dict[str, str],
        titles: Sequence[str],
        separator: str = "soft",
        hard_separator_text: str = " | ",
        max_title_tokens: int = 24,
        use_chat_template: bool = True,
        answer_prefix: str = "Answer:",
        candidate_question: str = " Fits? Answer:",
    ) -> None:
        if separator not in ("soft", "hard", "none"):
            raise BundleConfigError(f"config key 'separator' must be soft, hard or none, got {separator!r}")
        for field in ("{partial}", "{candidates}"):
            if field not in template:
                raise BundleConfigError(f"config key 'prompt_template' must contain {field}")
        self.tok = tokenizer
        self.separator = separator
        try:
            head, rest = template.split("{partial}", 1)
            middle, tail = rest.split("{candidates}", 1)
            self._head, self._middle, self._tail = (s.format(**words) for s in (head, middle, tail))
        except KeyError as e:
            raise BundleConfigError(
                f"prompt_template uses {{{e.args[0]}}}, which is not a dataset word ({sorted(words)}); "
                f"set it in the dataset yaml"
            ) from None
        self._titles = [self._encode(t)[:max_title_tokens] for t in titles]
        self._sep_ids = self._encode(hard_separator_text) if separator == "hard" else ([SEP_SLOT] if separator == "soft" else [])
        self._newline = self._encode("\n")
        chat = use_chat_template and getattr(tokenizer, "chat_template", None)
        if chat:
            text = tokenizer.apply_chat_template([{"role": "user", "content": _MARK}], tokenize=False,
                                                 add_generation_prompt=True)
            pre, post = text.split(_MARK)
            self._prefix = tokenizer.encode(pre, add_special_tokens=False)
            self._suffix = tokenizer.encode(post, add_special_tokens=False)
        else:
            bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
            self._prefix = bos
            self._suffix = self._encode("\n" + answer_prefix)
        self._head_ids, self._middle_ids, self._tail_ids = map(self._encode, (self._head, self._middle, self._tail))
        try:
            self._question_ids = self._encode(candidate_question.format(**words))
        except KeyError as e:
            raise BundleConfigError(f"candidate_question uses {{{e.args[0]}}}, which is not a dataset word "
                                    f"({sorted(words)}); set it in the dataset yaml") from None
        if not self._question_ids:
            raise BundleConfigError("config key 'candidate_question' must not be empty (its last token is "
                                    "where each candidate is scored)")
        self._labels = {}

    def _encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False) if text else []

    def _label(self, text: str) -> list[int]:
        if text not in self._labels:
            self._labels[text] = self._encode(text)
        return self._labels[text]

    @property
    def answer_prefix_ids(self) -> list[int]:
        """Ids right before the answer slot (for reading the letters' token ids in context)."""
        return self._tail_ids + self._suffix

    @property
    def candidate_question_ids(self) -> list[int]:
        """Ids of the yes/no question after each candidate (for reading the answer words in context)."""
        return list(self._question_ids)

    @property
    def shared_prefix_ids(self) -> list[int]:
        """The ids every question starts with (chat prefix + instruction head): encoded once and reused."""
        return self._prefix + self._head_ids

    def length(self, partial: Sequence[int], candidates: Sequence[int], hybrid: bool, marks: bool = False) -> int:
        """Token count of :meth:`build`'s output (for batching by length)."""
        return len(self.build(partial, candidates, hybrid, marks)[0])

    def item_ids(self, item: int, hybrid: bool) -> tuple[list[int], list[int]]:
        ids = list(self._titles[item])
        if hybrid:
            ids += self._sep_ids + [ITEM_SLOT]
        return ids, [item if t == ITEM_SLOT else 0 for t in ids]

    def _append_item(self, ids: list[int], ref: list[int], label: str, item: int, hybrid: bool,
                     scored: bool = False) -> None:
        """``label`` + the item's tokens (+ its yes/no question when ``scored``) + a newline."""
        lab = self._label(label)
        body, body_ref = self.item_ids(item, hybrid)
        question = self._question_ids if scored else []
        ids += lab + body + question + self._newline
        ref += [0] * len(lab) + body_ref + [0] * (len(question) - 1) + [SCORE_REF] * scored + [0] * len(self._newline)

    def build(self, partial: Sequence[int], candidates: Sequence[int], hybrid: bool,
              marks: bool = False) -> tuple[list[int], list[int]]:
        """Token ids (with slots) and item references of one question. ``marks``: per-candidate scoring
        (each candidate followed by its yes/no question, ``SCORE_REF`` at its last token; no answer slot)."""
        ids = self.shared_prefix_ids
        ref = [0] * len(ids)
        for n, item in enumerate(partial):
            self._append_item(ids, ref, f"{n + 1}. ", int(item), hybrid)
        ids += self._middle_ids
        ref += [0] * len(self._middle_ids)
        for n, item in enumerate(candidates):
            self._append_item(ids, ref, f"{LETTERS[n]}. ", int(item), hybrid, scored=marks)
        if marks:  # the last newline is not needed: the last score position ends the prompt
            del ids[len(ids) - len(self._newline):], ref[len(ref) - len(self._newline):]
            return ids, ref
        ids += self._tail_ids + self._suffix
        ref += [0] * (len(self._tail_ids) + len(self._suffix))
        return ids, ref
