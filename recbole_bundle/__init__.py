"""recbole_bundle: LLM-based product bundling (Bundle-MLLM) and bundle baselines as a RecBole plugin."""

from recbole_bundle import compat as _compat  # noqa: F401  (applies the stack shims first)
from recbole_bundle._version import __version__
from recbole_bundle.metrics import register_metrics
from recbole_bundle.model.base import BundleChoiceModel, score_candidates

register_metrics()

__all__ = ["BundleChoiceModel", "LoadedRun", "load", "score_candidates", "__version__"]


def __getattr__(name: str):
    """``recbole_bundle.load`` / ``LoadedRun`` on first use: the loader sits at the top of the pipeline
    (config, data, features, model, trainer), which importing the package must not pull in."""
    if name in ("load", "LoadedRun"):
        from recbole_bundle import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'recbole_bundle' has no attribute {name!r}")
