"""Resumable feature files: ``<ds>.feat_<name>.npz`` + ``<ds>.feat_<name>.json`` metadata.

Extraction writes one atomic chunk file per batch into ``<ds>.feat_<name>.partial/``; a killed run
restarted with the same command skips the items already in a chunk and continues. When every item is
done the chunks are merged, in the dataset's item order, into the final ``.npz`` (arrays ``tokens``,
``features``, ``missing``: the format :meth:`BundleDataset.item_features` reads) and the ``.json``
(encoder, dims, date, item count, which items lacked media and why), both written atomically; then the
partial folder is removed.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import atomic_save_npz, atomic_write_text

logger = logging.getLogger(__name__)


CHUNK_ARRAYS = ("tokens", "features", "missing", "reasons")


def _chunk_tokens(chunk: Path) -> list[str] | None:
    """The item tokens of ``chunk``, checked to load with all its arrays; a damaged one (disk full, a copy cut
    short) is kept beside as ``<chunk>.corrupt`` with a warning and None is returned: its items count as not
    extracted, so the run redoes them."""
    try:
        with np.load(chunk, allow_pickle=False) as z:
            rows = {len(z[name]) for name in CHUNK_ARRAYS}
            if len(rows) == 1:
                return z["tokens"].astype(str).tolist()
        why = f"arrays of different lengths {sorted(rows)}"
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        why = f"{type(e).__name__}: {e}"
    kept = chunk.with_name(chunk.name + ".corrupt")
    chunk.replace(kept)
    logger.warning("feature chunk %s is unreadable (%s); kept as %s, its items are extracted again", chunk, why, kept)
    return None


class FeatureStore:
    """Chunked, resumable writer of one feature file for the item ``tokens`` of a dataset."""

    def __init__(self, out_path: Path, tokens: Sequence[str], identity: dict, restart: bool = False) -> None:
        self.path = Path(out_path)
        self.meta_path = self.path.with_suffix(".json")
        self.partial = self.path.with_name(self.path.stem + ".partial")
        self.tokens = [str(t) for t in tokens]
        self.identity = identity
        if restart and self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True, exist_ok=True)
        ident_file = self.partial / "identity.json"
        if ident_file.is_file():
            try:
                previous = json.loads(ident_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise BundleConfigError(f"{ident_file} is unreadable ({e}); rerun with --restart to discard the "
                                        f"unfinished extraction in {self.partial}") from None
            if previous != json.loads(json.dumps(identity)):
                raise BundleConfigError(
                    f"{self.partial} holds an unfinished extraction made with different settings "
                    f"({previous}); rerun with --restart to discard it, or repeat the earlier command to finish it"
                )
        else:
            atomic_write_text(ident_file, json.dumps(identity, indent=2, sort_keys=True))
        self._chunks: list[Path] = []
        self._done: set[str] = set()  # tokens in the chunks, read once here
        for chunk in sorted(self.partial.glob("chunk_*.npz")):
            tokens_in = _chunk_tokens(chunk)
            if tokens_in is not None:
                self._chunks.append(chunk)
                self._done.update(tokens_in)
        # the next chunk's number follows every chunk ever written here, kept-aside ones included
        numbers = (int(c.name.split("_")[1].split(".")[0]) for c in self.partial.glob("chunk_*.npz*"))
        self._next = 1 + max(numbers, default=-1)

    def done(self) -> set[str]:
        """Tokens already extracted (by this or an earlier, killed run)."""
        return set(self._done)

    def add(self, tokens: Sequence[str], features: np.ndarray, missing: np.ndarray, reasons: Sequence[str]) -> None:
        """Write one batch as an atomic chunk (``reasons[i]`` says why item i has no media, else '')."""
        path = self.partial / f"chunk_{self._next:06d}.npz"
        self._next += 1
        atomic_save_npz(path, tokens=np.asarray(tokens, dtype=np.str_), features=np.asarray(features, np.float32),
                        missing=np.asarray(missing, bool), reasons=np.asarray(reasons, dtype=np.str_))
        self._chunks.append(path)
        self._done.update(str(t) for t in tokens)

    def finish(self, extra_meta: dict | None = None) -> Path:
        """Merge the chunks in item order into the final files; returns the ``.npz`` path."""
        rows: dict[str, tuple[np.ndarray, bool, str]] = {}
        for c in self._chunks:
            with np.load(c, allow_pickle=False) as z:
                for t, f, m, r in zip(z["tokens"].astype(str), z["features"], z["missing"], z["reasons"].astype(str)):
                    rows[t] = (f, bool(m), r)
        absent = [t for t in self.tokens if t not in rows]
        if absent:
            raise BundleConfigError(f"{self.partial}: {len(absent)} items not extracted yet (e.g. {absent[:3]}); rerun the command")
        # a chunk whose items all lacked media holds 0-wide rows: every missing row becomes zeros of the full width
        dim = max(rows[t][0].shape[0] for t in self.tokens)
        missing = np.asarray([rows[t][1] for t in self.tokens])
        feats = np.zeros((len(self.tokens), dim), np.float32)
        present = np.flatnonzero(~missing)
        if len(present):
            feats[present] = np.stack([rows[self.tokens[i]][0] for i in present])
        reasons = {t: rows[t][2] for t in self.tokens if rows[t][1]}
        atomic_save_npz(self.path, tokens=np.asarray(self.tokens, dtype=np.str_), features=feats, missing=missing)
        meta = {**self.identity, "dim": int(dim), "n_items": len(self.tokens), "n_missing": int(missing.sum()),
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "missing_items": reasons, **(extra_meta or {})}
        atomic_write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(self.partial, ignore_errors=True)
        logger.info("wrote %s: %d items x %d dims, %d without media", self.path, len(self.tokens), dim, missing.sum())
        return self.path
