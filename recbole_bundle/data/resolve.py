"""Find a dataset's atomic files, else convert raw files, else download, else say exactly what to do."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from recbole_bundle.errors import BundleDataError
from recbole_bundle.io import atomic_write_text

logger = logging.getLogger(__name__)

OFFICIAL_DATASETS = ("pog", "pog_dense", "spotify", "spotify_sparse")


def resolve_path(path: str | os.PathLike) -> Path:
    """A user path: as given (relative to the working directory), else relative to the project root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    from recbole_bundle.resources import properties_dir

    rooted = properties_dir().parent / p
    return rooted if rooted.exists() else p


def ensure_atomic_files(config) -> Path:
    """Make sure ``<data_path>/<dataset>.inter`` exists and return the folder.

    Order: atomic files already there; raw files named by ``raw_format``/``raw_data_path`` (pairs or the
    official release); official files in ``<data_path>/raw/``; a download of an official dataset where
    there is network. Otherwise a :class:`BundleDataError` names the files and where they go.

    Atomic files this function converted carry a sidecar ``<dataset>.source.json`` with a fingerprint of
    the raw files they came from (names, sizes, modification times) and of the conversion settings; when
    the raw files or settings change, the atomic files are rebuilt (with a warning) instead of silently
    reused. Atomic files without a sidecar (written by hand) are used as they are.
    """
    dataset = config["dataset"]
    data_dir = Path(config["data_path"])
    inter = data_dir / f"{dataset}.inter"
    sidecar = data_dir / f"{dataset}{SIDECAR_SUFFIX}"
    if inter.is_file():
        if not sidecar.is_file():
            return data_dir  # atomic files given by the user (or converted before fingerprints existed)
        record = _read_sidecar(sidecar)
        current = _source_fingerprint(config, data_dir)
        if current is None:
            logger.info("%s: the raw files it was converted from are gone; using the atomic files as they are", sidecar)
            return data_dir
        if record is not None and record.get("fingerprint") == current[0]:
            return data_dir
        before = (record or {}).get("stats", {})
        changed = [str(f) for f in current[1] if before.get(str(f)) != _stat(f)] or ["the conversion settings"]
        logger.warning("%s: %s changed since %s was converted from it; rebuilding the atomic files",
                       dataset, ", ".join(changed), inter)
    start = time.time_ns()
    out = _convert(config, dataset, data_dir)
    fingerprint = _source_fingerprint(config, data_dir)
    if fingerprint is not None:
        written = sorted(p.name for p in data_dir.glob(f"{dataset}.*")
                         if p.is_file() and p.name != sidecar.name and p.stat().st_mtime_ns >= start - 2_000_000_000)
        old = _read_sidecar(sidecar) if sidecar.is_file() else None
        for name in (old or {}).get("files", []):  # files of the previous conversion it did not write again
            if name not in written and "/" not in name:
                (data_dir / name).unlink(missing_ok=True)
        atomic_write_text(sidecar, json.dumps({"fingerprint": fingerprint[0], "stats": {str(p): _stat(p) for p in fingerprint[1]},
                                               "files": written}, indent=2) + "\n")
    return out


SIDECAR_SUFFIX = ".source.json"


def _read_sidecar(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError) as e:
        logger.warning("%s is unreadable (%s); treating the atomic files as stale", path, e)
        return None


def _raw_dir(config, data_dir: Path) -> Path:
    return resolve_path(config["raw_data_path"]) if config["raw_data_path"] else data_dir / "raw"


def _source_fingerprint(config, data_dir: Path) -> tuple[str, list[Path]] | None:
    """(hash, files) of the raw files conversion reads under the current settings, or None without raw files."""
    raw_dir = _raw_dir(config, data_dir)
    if config["raw_format"] == "pairs":
        files = [raw_dir / (config["raw_pairs_file"] or "pairs.tsv")]
        if config["raw_titles_file"]:
            files.append(raw_dir / config["raw_titles_file"])
    elif raw_dir.is_dir():
        files = sorted(p for p in raw_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = []
    files = [f for f in files if f.is_file()]
    if not files:
        return None
    h = hashlib.sha1(json.dumps([config["raw_format"], config["raw_pairs_file"], config["raw_titles_file"]]).encode())
    for f in files:
        h.update(f"{f.resolve()}|{_stat(f)}\n".encode())
    return h.hexdigest()[:16], files


def _stat(path: Path) -> str:
    """Size and modification time: what changes when a raw file is edited, replaced or re-downloaded."""
    st = path.stat()
    return f"{st.st_size}|{st.st_mtime_ns}"


def _convert(config, dataset: str, data_dir: Path) -> Path:
    """Build the atomic files from raw files, a download, or stop with what to put where."""
    from recbole_bundle.data import converters

    inter = data_dir / f"{dataset}.inter"
    raw_format = config["raw_format"]
    raw_dir = _raw_dir(config, data_dir)

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
