"""Bundle data: atomic-file dataset with a bundle-level split, questions, loaders, converters."""

from recbole_bundle.data.dataset import BundleDataset, EvalBundles

__all__ = ["BundleDataset", "EvalBundles"]
