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
from pathlib import Path
from typing import Sequence

import numpy as np

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import atomic_save_npz, atomic_write_text

logger = logging.getLogger(__name__)


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
            previous = json.loads(ident_file.read_text())
            if previous != json.loads(json.dumps(identity)):
                raise BundleConfigError(
                    f"{self.partial} holds an unfinished extraction made with different settings "
                    f"({previous}); rerun with --restart to discard it, or repeat the earlier command to finish it"
                )
        else:
            atomic_write_text(ident_file, json.dumps(identity, indent=2, sort_keys=True))
        self._chunks = sorted(self.partial.glob("chunk_*.npz"))

    def done(self) -> set[str]:
        """Tokens already extracted (by this or an earlier, killed run)."""
        out: set[str] = set()
        for c in self._chunks:
            with np.load(c, allow_pickle=False) as z:
                out.update(z["tokens"].astype(str).tolist())
        return out

    def add(self, tokens: Sequence[str], features: np.ndarray, missing: np.ndarray, reasons: Sequence[str]) -> None:
        """Write one batch as an atomic chunk (``reasons[i]`` says why item i has no media, else '')."""
        path = self.partial / f"chunk_{len(self._chunks):06d}.npz"
        atomic_save_npz(path, tokens=np.asarray(tokens, dtype=np.str_), features=np.asarray(features, np.float32),
                        missing=np.asarray(missing, bool), reasons=np.asarray(reasons, dtype=np.str_))
        self._chunks.append(path)

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
