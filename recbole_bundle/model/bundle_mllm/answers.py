"""Answer words of Bundle-MLLM's prompts: the letters A, B, ... (letter scoring) or the yes/no words
after each candidate (candidate scoring), read from the tokenizer in context (never hard-coded), and
the parser of generated answers (generate scoring)."""

from __future__ import annotations

import logging
import re
import string
from typing import TYPE_CHECKING, Sequence

from recbole_bundle.errors import BundleConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

LETTERS = string.ascii_uppercase
MAX_LETTERS = len(LETTERS)


def letter_token_ids(tokenizer: PreTrainedTokenizerBase, k: int, prefix_ids: Sequence[int]) -> list[int]:
    """Token ids of the answer letters A, B, ... (``k`` of them) as they tokenize right after ``prefix_ids``.

    ``prefix_ids`` are the prompt's ids up to the answer slot; see :func:`answer_token_ids` for how each
    letter is checked. At most 26 letters (A-Z) per prompt; else BundleConfigError.
    """
    if not isinstance(k, int) or k < 1:
        raise BundleConfigError(f"the number of candidates must be a positive integer, got {k!r}")
    if k > MAX_LETTERS:
        raise BundleConfigError(
            f"{k} candidates cannot be labelled with single letters: at most {MAX_LETTERS} (A-Z) per "
            f"prompt; set candidates_per_prompt <= {MAX_LETTERS}: bigger candidate sets are then scored "
            f"as a tournament of prompts with at most that many options"
        )
    return answer_token_ids(tokenizer, list(LETTERS[:k]), prefix_ids, what="answer letter")


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, words: Sequence[str], prefix_ids: Sequence[int],
                     what: str = "answer word") -> list[int]:
    """Token ids of the answer ``words`` (letters "A", "B", ... or "Yes"/"No") right after ``prefix_ids``.

    If the prompt text ends with whitespace (or a special token, or is empty) the word is written
    bare ("B"); otherwise, as after ``"Answer:"``, with a leading space (" B": one token in
    GPT-2/Llama-3-style BPE, "▁B" in SentencePiece tokenizers like Llama-2). Each word is checked at
    the boundary: encoding the prompt's tail text + word should give the tail's ids plus exactly one
    new id; if the word merges with the prompt's end instead (a prompt ending in a space: "Answer: " +
    "B"), the word's own single token is used. Only if the preferred form is no single token is the
    other form tried. Every word must be one non-special, non-unknown token and the ids distinct;
    else BundleConfigError.
    """
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    special = set(tokenizer.all_special_ids)
    unk = tokenizer.unk_token_id
    prefix = [int(i) for i in prefix_ids]
    tail_text, ends_bare = _prefix_tail(tokenizer, prefix, special)
    base = tokenizer.encode(tail_text, add_special_tokens=False) if tail_text else []

    def ok(token: int) -> bool:
        return token not in special and token != unk

    ids: list[int] = []
    for word in words:
        forms = [word, " " + word] if ends_bare else [" " + word, word]
        found = None
        for form in forms:  # the preferred form first, the other one only if it is not one token
            full = tokenizer.encode(tail_text + form, add_special_tokens=False)
            if len(full) == len(base) + 1 and full[: len(base)] == base and ok(full[-1]):
                found = full[-1]  # tokenizes as exactly one new id right after the prompt
                break
            own = tokenizer.encode(form, add_special_tokens=False)
            if len(own) == 1 and ok(own[0]):
                # merges with the prompt's end (e.g. "Answer: " + "B" -> ":", " B"): the word's own
                # token still continues the prompt text correctly
                logger.debug("%s %r merges with the end of the prompt %r; using its own token", what, form, tail_text)
                found = own[0]
                break
        if found is None:
            pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode(forms[0], add_special_tokens=False))
            raise BundleConfigError(
                f"{what} {word!r} is not a single token for tokenizer {name!r} (encodes as "
                f"{pieces}, also with/without a leading space); this backbone cannot answer with it "
                f"- choose another llm_name_or_path"
            )
        ids.append(int(found))
    if len(set(ids)) != len(ids):
        dup = [w for w, t in zip(words, ids) if ids.count(t) > 1]
        raise BundleConfigError(
            f"{what}s {dup} share token ids {ids} in tokenizer {name!r}; they must be "
            f"distinct tokens - choose another llm_name_or_path"
        )
    return ids


def _prefix_tail(tokenizer: PreTrainedTokenizerBase, prefix: list[int], special: set[int]) -> tuple[str, bool]:
    """The decoded last few prompt tokens and whether a letter after them is written without a space."""
    if not prefix:
        return "", True
    tail = prefix[-8:]
    text = tokenizer.decode(tail, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    bare = prefix[-1] in special or not text or text[-1].isspace()
    return text, bare


_LETTER_END = r"(?![A-Za-z0-9])"
# special tokens left in a decoded answer ("B<|im_end|>", "B</s>") are treated as whitespace
_SPECIAL_MARKUP = re.compile(r"<\|[^|<>]{1,40}\|>|</?s>|<(?:eos|bos|pad|unk|end_of_turn|start_of_turn)>")
# the whole answer is one letter, optionally quoted / bracketed / bold and followed by punctuation
_BARE = re.compile(r"^[\s\"'`*(\[{<]*([A-Z])[\s\"'`*)\]}>.,:;!?]*$")
# the answer starts with a letter followed by a delimiter: "B. Blue shirt", "(C) Mug", "A: ...", "B\n..."
_LEADING = re.compile(r"^[\s\"'`*]*(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])(?:[.):,;]|\s*\n|\s+-\s))")
# an explicit phrase: "Answer: B", "The answer is D", "answer is option (C)", "Option B"
_PHRASE = re.compile(
    r"\b(?:answer|option|choice|candidate)s?\b"
    r"(?:\s*(?:is|would\s+be|will\s+be|should\s+be|=|:|-)\s*)*"
    r"(?:(?:option|choice|candidate|letter)\s*)?"
    r"[\"'`*(\[{<]*([A-Z])" + _LETTER_END,
    re.IGNORECASE,
)


def parse_letter(text: str, k: int) -> int | None:
    """Parse a generated answer into a candidate index 0..k-1, or None if it names no valid letter.

    Accepted (capital letters only): a bare letter ("B", " B.", "(C)", "**D**"), a letter at the start
    followed by a delimiter ("B. Blue shirt", "(C) Mug", "A: x"), or a letter after an explicit
    phrase ("Answer: B", "The answer is D", "option (C)"). Special-token markup such as ``<|im_end|>``
    or ``</s>`` counts as whitespace. Free text such as "A nice item" or "I think
    so" is None: a capital letter that could be a word (the article "A", the pronoun "I") only counts
    in one of these forms. The first accepted letter decides; one outside A..(k-1) gives None.
    """
    if not isinstance(text, str) or k < 1:
        return None
    text = _SPECIAL_MARKUP.sub(" ", text)
    letter = None
    for pattern in (_BARE, _LEADING):
        m = pattern.match(text)
        if m:
            letter = next(g for g in m.groups() if g)
            break
    if letter is None:
        for m in _PHRASE.finditer(text):
            if m.group(1).isupper():
                letter = m.group(1)
                break
    if letter is None:
        return None
    idx = ord(letter) - ord("A")
    return idx if 0 <= idx < min(k, MAX_LETTERS) else None
