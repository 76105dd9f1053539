"""Find a dataset's atomic files, else convert raw files, else download, else say exactly what to do."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from recbole_bundle.errors import BundleDataError

logger = logging.getLogger(__name__)

OFFICIAL_DATASETS = ("pog", "pog_dense", "spotify", "spotify_sparse")


def resolve_path(path: str | os.PathLike) -> Path:
    """A user path: as given (relative to the working directory), else relative to the project root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    from recbole_bundle.config import properties_dir

    rooted = properties_dir().parent / p
    return rooted if rooted.exists() else p


def ensure_atomic_files(config) -> Path:
    """Make sure ``<data_path>/<dataset>.inter`` exists and return the folder.

    Order: atomic files already there; raw files named by ``raw_format``/``raw_data_path`` (pairs or the
    official release); official files in ``<data_path>/raw/``; a download of an official dataset where
    there is network. Otherwise a :class:`BundleDataError` names the files and where they go.
    """
    from recbole_bundle.data import converters

    dataset = config["dataset"]
    data_dir = Path(config["data_path"])
    inter = data_dir / f"{dataset}.inter"
    if inter.is_file():
        return data_dir
    raw_format = config["raw_format"]
    raw_dir = resolve_path(config["raw_data_path"]) if config["raw_data_path"] else data_dir / "raw"

    if raw_format == "pairs":
        pairs = raw_dir / (config["raw_pairs_file"] or "pairs.tsv")
        if not pairs.is_file():
            raise BundleDataError(
                f"dataset '{dataset}': pair file {pairs} not found. Set raw_data_path/raw_pairs_file in "
                f"properties/dataset/{dataset}.yaml (or --raw_data_path=...) to the folder holding the "
                f"'bundle<TAB>item' file."
            )
        titles = raw_dir / config["raw_titles_file"] if config["raw_titles_file"] else None
        logger.info("converting pair file %s into atomic files in %s", pairs, data_dir)
        return converters.convert_pairs(pairs, dataset, data_dir, titles_file=titles)

    if raw_format not in (None, "official"):
        raise BundleDataError(f"config key 'raw_format' must be 'official', 'pairs' or ~, got {raw_format!r}")
    if (raw_dir / "bi_train.txt").is_file():
        logger.info("converting the official release in %s into atomic files in %s", raw_dir, data_dir)
        return converters.convert_official(raw_dir, dataset, data_dir)
    if raw_format == "official" or dataset.lower() in OFFICIAL_DATASETS:
        download_dir = converters.download_official(dataset.lower(), raw_dir)
        return converters.convert_official(download_dir, dataset, data_dir)
    raise BundleDataError(
        f"no dataset named '{dataset}': {inter} does not exist and no raw files were found in {raw_dir}. "
        f"Put RecBole atomic files ({dataset}.inter, optionally {dataset}.item and feature files; see "
        f"dataset/README.md) in {data_dir}/, or the official release files ({', '.join(converters.OFFICIAL_REQUIRED_FILES)}) "
        f"in {raw_dir}/, or set raw_format: pairs with raw_data_path in properties/dataset/{dataset}.yaml. "
        f"Shipped dataset: 'sample'; official ones: {', '.join(OFFICIAL_DATASETS)}."
    )
