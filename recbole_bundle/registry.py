"""Model and trainer lookup by name, plugin first, then RecBole's.

The plugin's packages are imported by name (``importlib``) when a lookup needs them, so this module sits
at the bottom beside the config: the config resolves ``--model=X`` through it without importing any
model module, and models never import it.
"""

from __future__ import annotations

import importlib

from recbole.utils import ModelType
from recbole.utils import get_model as recbole_get_model

from recbole_bundle.errors import BundleConfigError


def _plugin_models():
    return importlib.import_module("recbole_bundle.model")


def plugin_model_names() -> list[str]:
    """The model classes ``recbole_bundle.model`` exports."""
    models = _plugin_models()
    return sorted(n for n in dir(models) if isinstance(getattr(models, n), type) and n[0].isupper())


def is_plugin_model(cls: type) -> bool:
    """Whether ``cls`` answers multiple-choice questions itself (a ``BundleChoiceModel``)."""
    base = importlib.import_module("recbole_bundle.model.base").BundleChoiceModel
    return isinstance(cls, type) and issubclass(cls, base)


def get_model(model_name: str) -> type:
    """The model class named ``model_name``: recbole_bundle's first, then RecBole's."""
    cls = getattr(_plugin_models(), model_name, None)
    if isinstance(cls, type):
        return cls
    try:
        return recbole_get_model(model_name)
    except (ValueError, ImportError):  # RecBole's lookup imports exlib modules (lightgbm, xgboost) on the way
        raise BundleConfigError(
            f"unknown model '{model_name}'. recbole_bundle models: {', '.join(plugin_model_names())}; "
            f"RecBole's general models (e.g. Random, Pop, ItemKNN, BPR, NeuMF) also work. Names are case-sensitive."
        ) from None


def get_trainer(model_type: ModelType, model_name: str, model_class: type | None = None) -> type:
    """``recbole_bundle.trainer.<Model>Trainer`` for the model or its nearest base class that has one,
    else the choice trainer for the model type."""
    trainers = importlib.import_module("recbole_bundle.trainer")
    names = [c.__name__ for c in model_class.__mro__] if model_class is not None else [model_name]
    for name in names:
        cls = getattr(trainers, f"{name}Trainer", None)
        if cls is not None:
            return cls
    return trainers.TraditionalChoiceTrainer if model_type == ModelType.TRADITIONAL else trainers.ChoiceTrainer
