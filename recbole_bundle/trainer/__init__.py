"""Trainers: RecBole's loop with multiple-choice evaluation."""

from recbole_bundle.trainer.choice_trainer import ChoiceTrainer, TraditionalChoiceTrainer

__all__ = ["ChoiceTrainer", "TraditionalChoiceTrainer"]
