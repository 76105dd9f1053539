"""BundleDataset: RecBole's Dataset over the bundle–item graph, with a bundle-level split.

Bundles play RecBole's users (``USER_ID_FIELD: bundle_id``). ``build()`` splits *bundles* (not
interactions) into train/valid/test, by ratio or by the ``role`` column of the ``.inter`` file. Each
valid/test bundle is cut into input items (the partial bundle, known at test time) and held-out items
(one question each). Training interactions = every train bundle plus the input items of eval bundles
(like a test user's history in RecBole), so RecBole's own models can score an eval bundle by its id;
held-out items never reach training.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from recbole.data.dataset import Dataset

from recbole_bundle.data.resolve import ensure_atomic_files
from recbole_bundle.errors import BundleConfigError, BundleDataError

ROLES = ("train", "valid_input", "valid_gt", "test_input", "test_gt")
_TRAIN, _VALID_IN, _VALID_GT, _TEST_IN, _TEST_GT = range(5)
SUPPORTED_TYPES = ("token", "token_seq", "float", "float_seq")


@dataclass
class EvalBundles:
    """The eval bundles of one phase: internal bundle ids, their input items and held-out items."""

    bundles: np.ndarray
    inputs: list[np.ndarray]
    held_out: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.bundles)

    def fingerprint(self) -> str:
        h = hashlib.sha1()
        for b, i, g in zip(self.bundles, self.inputs, self.held_out):
            h.update(np.asarray([b, len(i), len(g)], dtype=np.int64).tobytes())
            h.update(np.asarray(i, dtype=np.int64).tobytes())
            h.update(np.asarray(g, dtype=np.int64).tobytes())
        return h.hexdigest()[:12]


def validate_atomic_file(path: Path, required: tuple[str, ...], separator: str = "\t") -> None:
    """Check an atomic file's header and that every line has one value per column.

    RecBole's own loader fails with pandas tracebacks on such files; this names file, line and fix.
    A UTF-8 byte-order mark (BOM, written by some Windows editors) is accepted: the files are read as
    ``utf-8-sig``, which skips it.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            _validate_lines(path, f, required, separator)
    except UnicodeDecodeError as e:
        raise BundleDataError(
            f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save the file as UTF-8 "
            f"(e.g. iconv -f latin1 -t utf-8 {path.name} > fixed && mv fixed {path.name})"
        ) from None


def _validate_lines(path: Path, f, required: tuple[str, ...], separator: str) -> None:
    header = f.readline().rstrip("\n").rstrip("\r")
    if not header:
        raise BundleDataError(f"{path}: empty file; the first line must be a header like 'bundle_id:token<TAB>item_id:token'")
    columns = header.split(separator)
    names, types = [], {}
    for col in columns:
        name, _, ftype = col.partition(":")
        if ftype not in SUPPORTED_TYPES:
            raise BundleDataError(
                f"{path}, line 1: column '{col}' must be 'name:type' with type one of {SUPPORTED_TYPES} "
                f"(columns are separated by a TAB)"
            )
        names.append(name)
        types[name] = ftype
    for name in required:
        if name not in names:
            raise BundleDataError(f"{path}, line 1: required column '{name}:token' is missing (header: {header!r})")
        if types[name] != "token":
            raise BundleDataError(
                f"{path}, line 1: column '{name}:{types[name]}' must be '{name}:token' (ids are tokens, not numbers); "
                f"change the header"
            )
    n = len(columns)
    rows = 0
    for lineno, line in enumerate(f, start=2):
        line = line.rstrip("\n").rstrip("\r")
        if not line:
            continue
        rows += 1
        if line.count(separator) != n - 1:
            raise BundleDataError(
                f"{path}, line {lineno}: expected {n} TAB-separated values ({header!r}), "
                f"got {line.count(separator) + 1}: {line[:80]!r}"
            )
    if rows == 0:
        raise BundleDataError(f"{path}: only a header, no data rows; add one line per {'/'.join(required)} row "
                              f"below the header")


class BundleDataset(Dataset):
    """RecBole Dataset of bundle–item affiliations with a bundle-level split."""

    def __init__(self, config) -> None:
        data_dir = ensure_atomic_files(config)
        name = config["dataset"]
        if config["encoding"] is None or str(config["encoding"]).lower().replace("_", "-") in ("utf-8", "utf8"):
            config["encoding"] = "utf-8-sig"  # the same text, and a BOM (Windows editors) is skipped, not a column name
        sep = config["field_separator"]
        validate_atomic_file(data_dir / f"{name}.inter", (config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]), sep)
        if (data_dir / f"{name}.item").is_file():
            validate_atomic_file(data_dir / f"{name}.item", (config["ITEM_ID_FIELD"],), sep)
        self.role_field = "role"
        super().__init__(config)
        self._check_bundle_sizes()

    # ------------------------------------------------------------------ checks
    def _check_bundle_sizes(self) -> None:
        sizes = np.bincount(np.asarray(self.inter_feat[self.uid_field]), minlength=self.user_num)  # pandas at load time
        small = np.flatnonzero(sizes[1:] < self.config["min_bundle_size"]) + 1
        if len(small):
            tokens = self.id2token(self.uid_field, small[:5])
            raise BundleDataError(
                f"{self.dataset_path}/{self.dataset_name}.inter: {len(small)} bundle(s) have fewer than "
                f"{self.config['min_bundle_size']} items (e.g. {[str(t) for t in tokens]}); a bundle needs at least one input "
                f"and one held-out item. Remove them from the file (or lower min_bundle_size if they are train-only)."
            )
        full = np.flatnonzero(sizes[1:] >= self.item_num - 1) + 1
        if len(full):  # no negative exists for it: every sampler (ours and RecBole's) would draw forever
            raise BundleDataError(
                f"{self.dataset_path}/{self.dataset_name}.inter: bundle(s) {[str(t) for t in self.id2token(self.uid_field, full[:5])]} "
                f"contain every item of the catalogue ({self.item_num - 1}), so no negative candidate exists; "
                f"remove or split them"
            )

    # ------------------------------------------------------------------ split
    def _row_roles(self) -> np.ndarray:
        """Role code (index into ROLES) of every interaction row."""
        uids = self.inter_feat[self.uid_field].numpy()
        mode = self.config["bundle_split"]
        has_role = self.role_field in self.field2type
        if mode == "auto":
            mode = "file" if has_role else "ratio"
        if mode == "file":
            if not has_role:
                raise BundleDataError(
                    f"bundle_split: file needs a 'role:token' column in {self.dataset_name}.inter "
                    f"(values {ROLES}); use bundle_split: ratio otherwise"
                )
            tokens = np.asarray(self.field2id_token[self.role_field])
            names = tokens[self.inter_feat[self.role_field].numpy()]
            bad = sorted(set(names) - set(ROLES))
            if bad:
                raise BundleDataError(f"{self.dataset_name}.inter: unknown role value(s) {bad}; allowed: {ROLES}")
            codes = np.searchsorted(np.asarray(sorted(ROLES)), names)
            remap = np.asarray([ROLES.index(r) for r in sorted(ROLES)])
            return remap[codes]
        if mode != "ratio":
            raise BundleConfigError(f"config key 'bundle_split' must be auto, ratio or file, got {mode!r}")
        return self._ratio_roles(uids)

    def _ratio_roles(self, uids: np.ndarray) -> np.ndarray:
        ratios = np.asarray(self.config["bundle_split_ratio"], dtype=float)
        if ratios.shape != (3,) or (ratios < 0).any() or abs(ratios.sum() - 1.0) > 1e-6:
            raise BundleConfigError(
                f"config key 'bundle_split_ratio' must be 3 non-negative shares [train, valid, test] adding up to 1, "
                f"got {ratios.tolist()}; e.g. [0.8, 0.1, 0.1]"
            )
        if ratios[1] <= 0 or ratios[2] <= 0:
            raise BundleConfigError(
                f"config key 'bundle_split_ratio' = {ratios.tolist()} leaves no {'valid' if ratios[1] <= 0 else 'test'} "
                f"bundles: valid and test shares must be > 0 (validation early-stops training, test is what is "
                f"reported); e.g. [0.8, 0.1, 0.1], or bundle_split: file with a role column"
            )
        seed = self.config["split_seed"] if self.config["split_seed"] is not None else self.config["seed"]
        rng = np.random.default_rng(seed)
        bundles = np.unique(uids)
        perm = rng.permutation(bundles)
        n_valid, n_test = int(round(ratios[1] * len(bundles))), int(round(ratios[2] * len(bundles)))
        phase = np.zeros(self.user_num, dtype=np.int64)  # 0 train, 1 valid, 2 test
        phase[perm[:n_valid]] = 1
        phase[perm[n_valid:n_valid + n_test]] = 2
        roles = np.full(len(uids), _TRAIN, dtype=np.int64)
        order = np.argsort(uids, kind="stable")
        starts = np.flatnonzero(np.r_[True, uids[order][1:] != uids[order][:-1]])
        ends = np.r_[starts[1:], len(order)]
        input_ratio = float(self.config["eval_input_ratio"])
        for s, e in zip(starts, ends):
            b = uids[order[s]]
            if phase[b] == 0:
                continue
            rows = rng.permutation(order[s:e])
            n_in = min(len(rows) - 1, max(1, int(len(rows) * input_ratio)))
            base = _VALID_IN if phase[b] == 1 else _TEST_IN
            roles[rows[:n_in]] = base
            roles[rows[n_in:]] = base + 1
        return roles

    def _eval_bundles(self, roles: np.ndarray, input_code: int) -> EvalBundles:
        """The eval bundles whose input rows have ``input_code`` and held-out rows ``input_code + 1``."""
        in_bundles, inputs = self._bundle_groups(roles == input_code)
        gt_bundles, held = self._bundle_groups(roles == input_code + 1)
        if not np.array_equal(in_bundles, gt_bundles):
            b = np.setxor1d(in_bundles, gt_bundles)[0]
            count = lambda ids, groups: len(groups[np.searchsorted(ids, b)]) if b in ids else 0  # noqa: E731
            raise BundleDataError(
                f"{self.dataset_name}.inter: eval bundle '{self.id2token(self.uid_field, b)}' has "
                f"{count(in_bundles, inputs)} input and {count(gt_bundles, held)} held-out items; each eval bundle "
                f"needs at least one of each"
            )
        return EvalBundles(in_bundles, inputs, held)

    def _bundle_groups(self, mask: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(bundle ids, their items sorted) of the rows in ``mask``, bundles in id order."""
        u = self.inter_feat[self.uid_field].numpy()[mask]
        i = self.inter_feat[self.iid_field].numpy()[mask]
        order = np.lexsort((i, u))
        u, i = u[order], i[order]
        bundles, starts = np.unique(u, return_index=True)
        return bundles, (np.split(i, starts[1:]) if len(u) else [])

    def build(self) -> list[Dataset]:
        """Split bundles into [train, valid, test] datasets; valid/test carry ``eval_bundles``."""
        self._change_feat_format()
        roles = self._row_roles()
        train_mask = np.isin(roles, (_TRAIN, _VALID_IN, _TEST_IN))
        datasets = [self.copy(self.inter_feat[torch.from_numpy(train_mask)])]
        datasets[0].train_bundles = self._bundle_groups(roles == _TRAIN)
        for code, phase in ((_VALID_IN, "valid"), (_TEST_IN, "test")):
            ds = self.copy(self.inter_feat[torch.from_numpy(roles == code + 1)])
            ds.eval_bundles = self._eval_bundles(roles, code)
            if len(ds.eval_bundles) == 0:
                n_bundles = len(np.unique(self.inter_feat[self.uid_field].numpy()))
                how = (f"no '{phase}_input'/'{phase}_gt' rows in the role column of {self.dataset_name}.inter; add them"
                       if self.role_field in self.field2type and self.config["bundle_split"] != "ratio" else
                       f"bundle_split_ratio {list(self.config['bundle_split_ratio'])} rounds to 0 of the {n_bundles} "
                       f"bundles; raise the {phase} share or use more bundles")
                raise BundleDataError(f"the split leaves no {phase} bundles ({how}); without them there is no "
                                      f"{'early stopping' if phase == 'valid' else 'test result'}")
            datasets.append(ds)
        return datasets

    # ------------------------------------------------------------------ side information
    def item_titles(self, field: str = "title") -> list[str]:
        """Title of every internal item id (index 0 is padding -> '')."""
        if self.item_feat is None or field not in self.field2type:
            raise BundleDataError(
                f"dataset '{self.dataset_name}' has no '{field}' column in {self.dataset_name}.item; "
                f"this model needs item titles (add 'title:token_seq' to the .item file)"
            )
        vocab = np.asarray(self.field2id_token[field])
        seqs = self.item_feat[field]
        titles = []
        for row in seqs:
            ids = np.asarray(row)
            ids = ids[ids > 0]
            titles.append(" ".join(vocab[ids]))
        titles[0] = ""
        return titles

    def set_item_modalities(self, features: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """The item features the pipeline prepared for the model (``name -> (features, missing)``),
        stored read-only: models read them with :meth:`item_modality` and never change them."""
        prepared = {}
        for name, (feats, missing) in features.items():
            feats, missing = np.array(feats, dtype=np.float32), np.array(missing, dtype=bool)
            feats.setflags(write=False)
            missing.setflags(write=False)
            prepared[name] = (feats, missing)
        self._item_modalities = prepared

    def item_modality(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Prepared item feature ``name``: ``(features [n_items, d], missing [n_items])`` (row 0 = padding)."""
        prepared = getattr(self, "_item_modalities", {})
        if name not in prepared:
            raise BundleConfigError(
                f"item feature '{name}' was not prepared for this model (prepared: {sorted(prepared)}); build "
                f"models through the pipeline: recbole_bundle.quick_start.build_model(config, train_data, "
                f"valid_data) prepares every feature the model's item_feature_names() lists"
            )
        return prepared[name]

    def feature_path(self, name: str) -> Path:
        return Path(self.dataset_path) / f"{self.dataset_name}.feat_{name}.npz"

    def available_features(self) -> list[str]:
        prefix = f"{self.dataset_name}.feat_"
        return sorted(p.name[len(prefix):-4] for p in Path(self.dataset_path).glob(f"{prefix}*.npz"))

    def item_features(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Feature ``name`` as float32 ``[n_items, d]`` aligned to internal item ids, and a missing mask.

        Items absent from the file (or flagged ``missing``) have zero rows and ``missing=True``.
        """
        path = self.feature_path(name)
        if not path.is_file():
            raise BundleDataError(
                f"feature '{name}' not found: {path} does not exist (available: {self.available_features()}); "
                f"extract it (python -m recbole_bundle.features) or remove it from the config"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                if "tokens" not in z or "features" not in z:
                    raise BundleDataError(f"{path}: must hold arrays 'tokens' and 'features' (see dataset/README.md)")
                tokens, feats = z["tokens"].astype(str), z["features"].astype(np.float32)
                file_missing = z["missing"].astype(bool) if "missing" in z else np.zeros(len(tokens), bool)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise BundleDataError(
                f"{path}: not a readable feature file ({type(e).__name__}: {str(e)[:120]}); it is truncated or not "
                f"an .npz written by numpy.savez. Extract it again (python -m recbole_bundle.features "
                f"--dataset={self.dataset_name} ...) or remove '{name}' from the config"
            ) from None
        if feats.ndim != 2 or len(feats) != len(tokens):
            raise BundleDataError(f"{path}: 'features' must be [n, d] with n = len(tokens) = {len(tokens)}, got {feats.shape}")
        out = np.zeros((self.item_num, feats.shape[1]), dtype=np.float32)
        missing = np.ones(self.item_num, dtype=bool)
        token2id = self.field2token_id[self.iid_field]
        rows = np.asarray([token2id.get(t, -1) for t in tokens])
        keep = rows > 0
        out[rows[keep]] = feats[keep]
        missing[rows[keep]] = file_missing[keep]
        out[missing] = 0.0
        missing[0] = True
        return out, missing

    def item_popularity(self) -> np.ndarray:
        """Interaction count of every internal item id in this dataset's ``inter_feat``."""
        return np.bincount(self.inter_feat[self.iid_field].numpy(), minlength=self.item_num)
