"""Trainers: RecBole's loop with multiple-choice evaluation; progressive stages for Bundle-MLLM."""

from recbole_bundle.trainer.bundle_mllm_trainer import BundleMLLMTrainer
from recbole_bundle.trainer.choice_trainer import ChoiceTrainer, TraditionalChoiceTrainer

__all__ = ["BundleMLLMTrainer", "ChoiceTrainer", "TraditionalChoiceTrainer"]
