"""Bundle models. One model per file; the class name equals its ``properties/model/<Name>.yaml``.

``Random``, ``Pop`` and ``BPR`` are RecBole's own classes used unchanged (their plugin yamls only set
bundle-appropriate defaults); ``LightGCN`` is RecBole's with a scipy-proof adjacency and ``ItemKNN``
RecBole's with a popularity tie-breaker.
"""

from recbole_bundle.model.base import BundleChoiceModel, score_candidates
from recbole_bundle.model.bundle_mllm import BundleMLLM
from recbole_bundle.model.clhe import CLHE
from recbole_bundle.model.itemknn import ItemKNN
from recbole_bundle.model.lightgcn import LightGCN
from recbole_bundle.model.llm_baselines import LLMTextLoRA, LLMZeroShot

__all__ = [
    "BundleChoiceModel", "BundleMLLM", "CLHE", "ItemKNN", "LLMTextLoRA", "LLMZeroShot", "LightGCN", "score_candidates",
]
