"""Bundle models. One model per file; the class name equals its ``properties/model/<Name>.yaml``.

``Random``, ``Pop``, ``ItemKNN`` and ``BPR`` are RecBole's own classes used unchanged (their plugin
yamls only set bundle-appropriate defaults); ``LightGCN`` is RecBole's with a scipy-proof adjacency.
"""

from recbole_bundle.model.base import BundleChoiceModel, score_candidates
from recbole_bundle.model.lightgcn import LightGCN

__all__ = ["BundleChoiceModel", "LightGCN", "score_candidates"]
