"""LLM baselines on the same questions, sharing Bundle-MLLM's prompt and scoring code.

Both set their behaviour in their yaml (class name == yaml name); the classes only give them names.
"""

from recbole_bundle.model.bundle_mllm.model import BundleMLLM


class LLMZeroShot(BundleMLLM):
    """The backbone as is: text-only prompts (titles), no LoRA, no training (``stages: []``)."""


class LLMTextLoRA(BundleMLLM):
    """Text-only LoRA fine-tuning: titles only, no fused token (``stages: [s1]``)."""
