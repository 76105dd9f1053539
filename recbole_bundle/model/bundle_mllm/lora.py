"""LoRA adapters on the backbone through peft (the paper: r 8, alpha 16, dropout 0.05 on q_proj, v_proj)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from recbole_bundle.errors import BundleConfigError

if TYPE_CHECKING:
    import peft
    from transformers import PreTrainedModel


def apply_lora(
    model: PreTrainedModel,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
) -> peft.PeftModel:
    """Wrap ``model`` with LoRA adapters (``peft.get_peft_model``); only the adapters are trainable."""
    import peft

    if not isinstance(r, int) or r < 1:
        raise BundleConfigError(f"lora_r must be a positive integer, got {r!r}")
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise BundleConfigError(
            f"lora target modules {missing} are not in the model {type(model).__name__} (its linear "
            f"layers include {sorted(n for n in names if n.endswith('proj'))[:12]})"
        )
    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        bias="none",
    )
    return peft.get_peft_model(model, config)
