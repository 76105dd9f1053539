"""Bundle-MLLM: backbone loading (llm), fusion, prompts with hybrid item tokens, and the model."""

from recbole_bundle.model.bundle_mllm.model import BundleMLLM

__all__ = ["BundleMLLM"]
