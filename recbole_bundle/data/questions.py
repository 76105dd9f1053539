"""Multiple-choice bundle-completion questions.

A question = a partial bundle + K candidates (the held-out positive and K-1 negatives, shuffled).
Negatives never include an item of that bundle and are drawn without replacement, by one of:

* ``uniform``: every other catalogue item equally likely (the paper's protocol);
* ``popularity``: proportional to ``(train count + 1) ** neg_pop_alpha`` (Gumbel top-k, exact
  sampling without replacement);
* ``hard``: uniformly among the ``hard_neg_pool`` nearest neighbours of the positive in a relational
  item embedding (a feature file named by ``hard_neg_feature``, else an SVD of the train graph).

Eval questions are deterministic in (data, split, seed, K, strategy) and cached as ``.npz`` under
``<data_path>/questions/``, so every model answers the same questions and reruns give the same number.
Training questions follow the paper: take up to ``train_max_items`` items of a train bundle, shuffle,
the first half is the input, one of the rest the positive, K-1 fresh negatives per epoch.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from recbole_bundle.errors import BundleConfigError, BundleDataError
from recbole_bundle.io import atomic_save_npz

logger = logging.getLogger(__name__)

STRATEGIES = ("uniform", "popularity", "hard")
_CACHE_VERSION = "q1"


@dataclass
class QuestionSet:
    """Questions as padded arrays (item id 0 is padding)."""

    bundle: np.ndarray       # [Q] internal bundle id
    partial: np.ndarray      # [Q, L] input items, 0-padded
    partial_len: np.ndarray  # [Q]
    candidates: np.ndarray   # [Q, K]
    label: np.ndarray        # [Q] index of the positive in candidates

    def __len__(self) -> int:
        return len(self.bundle)

    @property
    def positive(self) -> np.ndarray:
        return self.candidates[np.arange(len(self)), self.label]

    def subset(self, n: int, seed: int) -> "QuestionSet":
        """A fixed random subset of ``n`` questions (in original order), for slow models' budgets."""
        if n >= len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return QuestionSet(**{k: v[keep] for k, v in self.arrays().items()})

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("bundle", "partial", "partial_len", "candidates", "label")}


def pad(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length id arrays into a 0-padded matrix and a length vector."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    out = np.zeros((len(rows), max(int(lengths.max(initial=0)), 1)), dtype=np.int64)
    for j, r in enumerate(rows):
        out[j, : len(r)] = r
    return out, lengths


class NegativeSampler:
    """Draws K-1 negatives per question, excluding the whole bundle, without replacement."""

    def __init__(
        self,
        n_items: int,
        strategy: str = "uniform",
        popularity: np.ndarray | None = None,
        pop_alpha: float = 1.0,
        embedding: np.ndarray | None = None,
        hard_pool: int = 50,
    ) -> None:
        if strategy not in STRATEGIES:
            raise BundleConfigError(f"config key 'neg_strategy' must be one of {STRATEGIES}, got {strategy!r}")
        self.n_items, self.strategy = n_items, strategy
        if strategy == "popularity":
            if popularity is None:
                raise BundleConfigError("neg_strategy: popularity needs item popularity counts")
            w = (np.asarray(popularity, dtype=np.float64) + 1.0) ** pop_alpha
            w[0] = 0.0
            self.log_w = np.log(np.maximum(w, 1e-300))
            self.log_w[0] = -np.inf
        if strategy == "hard":
            if embedding is None:
                raise BundleConfigError("neg_strategy: hard needs a relational item embedding")
            e = np.asarray(embedding, dtype=np.float32)
            self.emb = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            self.hard_pool = hard_pool

    def check_k(self, k: int, max_bundle: int, where: str = "the largest bundle") -> None:
        """Fail clearly when K-1 negatives cannot exist for a bundle of ``max_bundle`` items.

        Every loop that draws negatives relies on this check: a bundle that leaves fewer than K-1
        items outside it has no valid question, and drawing one would never succeed.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise BundleConfigError(f"config key 'n_candidates' must be an int >= 2, got {k!r}")
        available = self.n_items - 1 - max_bundle
        if k < 2:
            raise BundleConfigError(f"config key 'n_candidates' must be >= 2 (one positive, >= 1 negative), got {k}")
        if k - 1 > available:
            raise BundleConfigError(
                f"n_candidates={k} is larger than the items available: the catalogue has {self.n_items - 1} items and "
                f"{where} {max_bundle}, leaving {available} possible negatives (K-1 = {k - 1} are needed); lower "
                f"n_candidates to at most {max(available + 1, 1)}, or remove or split that bundle"
            )

    def sample(self, rng: np.random.Generator, k_neg: int, exclude: np.ndarray, positive: int) -> np.ndarray:
        """``k_neg`` distinct item ids outside ``exclude`` (and padding id 0); never loops."""
        exclude = np.unique(np.r_[exclude, 0])
        if self.n_items - len(exclude) < k_neg:  # callers run check_k first; this keeps every draw bounded
            raise BundleDataError(
                f"cannot draw {k_neg} negatives: only {self.n_items - len(exclude)} items lie outside a bundle of "
                f"{len(exclude) - 1} items; lower n_candidates"
            )
        if self.strategy == "uniform":
            return self._uniform(rng, k_neg, exclude)
        if self.strategy == "popularity":
            keys = self.log_w + rng.gumbel(size=self.n_items)
            keys[exclude] = -np.inf
            top = np.argpartition(-keys, k_neg - 1)[:k_neg]
            top = top[np.argsort(-keys[top])]
            return top
        sims = self.emb @ self.emb[positive]
        sims[exclude] = -np.inf
        pool_size = min(self.hard_pool, self.n_items - len(exclude))
        pool = np.argpartition(-sims, pool_size - 1)[:pool_size]
        if len(pool) >= k_neg:
            return rng.choice(pool, size=k_neg, replace=False)
        rest = self._uniform(rng, k_neg - len(pool), np.r_[exclude, pool])
        return np.r_[pool, rest]

    def _uniform(self, rng: np.random.Generator, k: int, exclude: np.ndarray) -> np.ndarray:
        """One draw of ``k + |exclude|`` distinct ids holds at least ``k`` outside ``exclude`` (pigeonhole),
        so a single round always succeeds once :meth:`sample` has checked that ``k`` such items exist."""
        n = self.n_items
        draw = rng.choice(n, size=min(n, k + len(exclude)), replace=False)
        draw = draw[~np.isin(draw, exclude)]
        if len(draw) < k:  # pragma: no cover - impossible after the check in sample()
            raise BundleDataError(f"cannot draw {k} negatives outside a bundle of {len(exclude) - 1} items")
        return draw[:k]


def _shuffle_in(rng: np.random.Generator, positive: int, negatives: np.ndarray) -> tuple[np.ndarray, int]:
    cands = np.r_[positive, negatives]
    perm = rng.permutation(len(cands))
    return cands[perm], int(np.flatnonzero(perm == 0)[0])


def _question(rng, sampler: NegativeSampler, k: int, bundle: int, partial: np.ndarray, positive: int,
              exclude: np.ndarray) -> tuple:
    """One question row: the positive shuffled among K-1 negatives drawn outside ``exclude``."""
    cands, label = _shuffle_in(rng, positive, sampler.sample(rng, k - 1, exclude, positive))
    return bundle, partial, cands, label


def _assemble(rows: list[tuple], k: int) -> QuestionSet:
    bundles, partials, cands, labels = zip(*rows) if rows else ((), (), (), ())
    partial, plen = pad(list(partials))
    return QuestionSet(
        bundle=np.asarray(bundles, dtype=np.int64), partial=partial, partial_len=plen,
        candidates=np.asarray(cands, dtype=np.int64).reshape(-1, k), label=np.asarray(labels, dtype=np.int64),
    )


def build_eval_questions(eval_bundles, sampler: NegativeSampler, k: int, seed) -> QuestionSet:
    """One question per (eval bundle, held-out item); deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    max_bundle = max((len(i) + len(g) for i, g in zip(eval_bundles.inputs, eval_bundles.held_out)), default=0)
    sampler.check_k(k, max_bundle)
    rows = []
    for b, inp, gt in zip(eval_bundles.bundles, eval_bundles.inputs, eval_bundles.held_out):
        whole = np.r_[inp, gt]
        rows += [_question(rng, sampler, k, b, inp, int(pos), whole) for pos in gt]
    return _assemble(rows, k)


def sample_train_questions(
    bundle_items: Sequence[np.ndarray], bundle_ids: np.ndarray, sampler: NegativeSampler, k: int,
    rng: np.random.Generator, max_items: int = 10,
) -> QuestionSet:
    """One fresh training question per train bundle (the paper's recipe).

    The caller checks feasibility once (:func:`check_train_bundles`); ``sampler.sample`` refuses any
    bundle that leaves fewer than K-1 negatives instead of looping.
    """
    rows = []
    for b, items in zip(bundle_ids, bundle_items):
        if len(items) < 2:
            continue
        chosen = rng.permutation(items)[:max_items]
        n_in = max(1, len(chosen) // 2)
        rows.append(_question(rng, sampler, k, b, chosen[:n_in], int(rng.choice(chosen[n_in:])), items))
    return _assemble(rows, k)


def check_train_bundles(sampler: NegativeSampler, k: int, bundle_items: Sequence[np.ndarray],
                        bundle_names: Sequence[str] | None = None) -> None:
    """The eval-side :meth:`NegativeSampler.check_k` for train bundles: every train bundle must leave K-1
    negatives (its whole item set is excluded), else the message names the largest bundle."""
    sizes = np.fromiter((len(i) for i in bundle_items), dtype=np.int64, count=len(bundle_items))
    if not len(sizes):
        sampler.check_k(k, 0)
        return
    j = int(sizes.argmax())
    name = f"train bundle '{bundle_names[j]}' has" if bundle_names is not None else "the largest train bundle has"
    sampler.check_k(k, int(sizes[j]), where=name)


def negatives_source_key(config, dataset, train_dataset) -> list[str]:
    """What the eval questions' negatives are drawn from, beyond the eval bundles (part of the cache key):
    nothing for ``uniform``; the train graph for ``popularity`` and for ``hard`` from an SVD; the feature
    file's size and modification time for ``hard`` with ``hard_neg_feature``. A changed source -> new key."""
    strategy = config["neg_strategy"]
    if strategy == "uniform":
        return []
    if strategy == "hard" and config["hard_neg_feature"]:
        path = Path(dataset.feature_path(config["hard_neg_feature"]))
        st = path.stat() if path.is_file() else None
        return [f"feature:{path.name}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"]
    u = np.asarray(train_dataset.inter_feat[train_dataset.uid_field])
    i = np.asarray(train_dataset.inter_feat[train_dataset.iid_field])
    order = np.lexsort((i, u))
    return ["train:" + hashlib.sha1(np.stack([u[order], i[order]]).astype(np.int64).tobytes()).hexdigest()[:12]]


def cache_key(parts: Sequence[object]) -> str:
    return hashlib.sha1("|".join(map(str, (_CACHE_VERSION, *parts))).encode()).hexdigest()[:16]


def load_or_build(cache_dir: Path | None, name: str, key: str, build) -> QuestionSet:
    """Return cached questions for ``key`` or build and cache them (atomically).

    ``key`` fingerprints everything the questions are built from, so a changed source gets a new file.
    A cache file that cannot be read (torn copy, disk error, edited by hand) is rebuilt with a warning.
    """
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{name}_{key}.npz"
    if path.is_file():
        cached = _read_cache(path)
        if cached is not None:
            logger.info("loaded cached questions %s", path)
            return cached
    qs = build()
    atomic_save_npz(path, **qs.arrays())
    logger.info("cached %d questions in %s", len(qs), path)
    return qs


def _read_cache(path: Path) -> QuestionSet | None:
    """The cached question set, or None (with a warning) when the file is unreadable or inconsistent."""
    fields = ("bundle", "partial", "partial_len", "candidates", "label")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in fields}
        n = len(arrays["bundle"])
        if any(len(a) != n for a in arrays.values()) or arrays["candidates"].ndim != 2 or arrays["partial"].ndim != 2:
            raise ValueError("arrays of different lengths")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        logger.warning("question cache %s is unreadable (%s: %s); rebuilding it", path, type(e).__name__, e)
        return None
    return QuestionSet(**arrays)
