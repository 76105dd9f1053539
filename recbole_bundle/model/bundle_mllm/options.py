"""Bundle-MLLM's options as one typed structure, read from the config and checked ONCE at construction.

Every choice (scoring, stages, separator, answer loss) and range (K per prompt, LoRA rank, fusion sizes)
is validated here with a message naming the key, the allowed values and where the default lives
(``properties/model/BundleMLLM.yaml``); the model, prompt builder and trainer then use the checked values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from recbole_bundle.model.options import ModelOptions

Stage = Literal["s1", "s2", "joint"]
Scoring = Literal["letter", "generate", "candidate"]
Separator = Literal["soft", "hard", "none"]
ProjectorInit = Literal["zero", "random"]
AnswerLoss = Literal["lm", "letters"]

STAGES: tuple[str, ...] = get_args(Stage)
SCORINGS: tuple[str, ...] = get_args(Scoring)


@dataclass(frozen=True)
class BundleMLLMOptions(ModelOptions):
    """The model-side keys of ``BundleMLLM.yaml`` (see that file for what each means and the paper's values)."""

    stages: tuple[Stage, ...]          # progressive optimisation: s1 (LoRA), s2 (fused token), joint
    scoring: Scoring                   # how an answer is read: letter, generate, candidate
    answer_loss: AnswerLoss            # letter training: lm (vocabulary) or letters (the K letters)
    candidates_per_prompt: int         # options shown in one prompt (>= 1; letters: <= 26)
    max_new_tokens: int                # generate: tokens decoded per answer (>= 1)
    max_partial_items: int             # partial-bundle items shown in the prompt (>= 1)
    max_title_tokens: int              # title tokens kept per item (>= 1)
    use_fused_token: bool              # one fused multimodal token per item
    modalities: tuple[str, ...]        # the fused token's item features
    fusion_dim: int                    # each modality projected to this size (>= 1)
    fusion_heads: int                  # self-attention heads (divides fusion_dim)
    separator: Separator               # between title and fused token
    projector_init: ProjectorInit      # the projector's output layer: zero (the token starts at 0) or random
    lora_r: int                        # LoRA rank (0 = no adapter)
    lora_alpha: int                    # LoRA alpha (>= 1)
    lora_dropout: float                # LoRA dropout, in [0, 1)
    lora_target_modules: tuple[str, ...]
    candidate_answers: tuple[str, ...]  # candidate scoring: (positive, negative) answer words
    gradient_checkpointing: bool
    fused_cache: bool
    prefix_cache: bool

    defaults = "properties/model/BundleMLLM.yaml"

    def _check_ranges(self) -> None:
        fail = self._fail
        for key in ("candidates_per_prompt", "max_new_tokens", "max_partial_items", "max_title_tokens",
                    "fusion_dim", "fusion_heads", "lora_alpha"):
            if getattr(self, key) < 1:
                fail(key, "must be >= 1")
        if self.lora_r < 0:
            fail("lora_r", "must be >= 0 (0 = no adapter)")
        if not 0.0 <= self.lora_dropout < 1.0:
            fail("lora_dropout", "must lie in [0, 1)")
        if self.fusion_dim % self.fusion_heads:
            fail("fusion_heads", f"must divide fusion_dim ({self.fusion_dim})")
        if len(self.candidate_answers) != 2:
            fail("candidate_answers", "must be two words: [positive, negative]")
        if self.use_fused_token and not self.modalities:
            fail("modalities", "must name at least one item feature when use_fused_token is True")
        if any(s in ("s2", "joint") for s in self.stages) and not self.use_fused_token:
            fail("stages", "has s2/joint, which train the fused token, but use_fused_token is False")
        if any(s in ("s1", "joint") for s in self.stages) and self.lora_r == 0:
            fail("stages", "has s1/joint, which train LoRA, but lora_r is 0")
