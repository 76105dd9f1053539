"""recbole_bundle: LLM-based product bundling (Bundle-MLLM) and bundle baselines as a RecBole plugin."""

from recbole_bundle import compat as _compat  # noqa: F401  (applies the stack shims first)
from recbole_bundle.metrics import register_metrics
from recbole_bundle.inference import LoadedRun, load
from recbole_bundle.model.base import BundleChoiceModel, score_candidates

__version__ = "0.1.0"

register_metrics()

__all__ = ["BundleChoiceModel", "LoadedRun", "load", "score_candidates", "__version__"]
