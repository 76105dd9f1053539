"""Convert raw bundle releases into the atomic files described in ``dataset/README.md``.

Two raw formats are supported:

* the official Bundle-MLLM / CLHE release (``xhLiu/BundleConstruction`` on the Hugging Face Hub),
  pre-split into train / valid / test with ``*.pt`` item features -> :func:`convert_official`;
* plain ``bundle<TAB>item`` pair files with an optional JSON ``{item: title}`` -> :func:`convert_pairs`.

Every input problem raises :class:`~recbole_bundle.errors.BundleDataError` naming the file, the
1-based line and the fix. Outputs are staged in a temporary sibling directory and only moved into
``out_dir`` once everything parsed and was written, so a failed conversion leaves no half dataset
(the ``.inter`` file, which loaders look for, is always moved last).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from recbole_bundle.errors import BundleDataError
from recbole_bundle.hub import hub_offline
from recbole_bundle.io import PathLike, atomic_open, atomic_save_npz, atomic_write_text

logger = logging.getLogger(__name__)

HF_REPO_ID = "xhLiu/BundleConstruction"
"""Hugging Face dataset repository of the official release (one folder per dataset)."""

OFFICIAL_SPLIT_FILES: tuple[str, ...] = (
    "bi_train.txt",
    "bi_valid_input.txt",
    "bi_valid_gt.txt",
    "bi_test_input.txt",
    "bi_test_gt.txt",
)
OFFICIAL_REQUIRED_FILES: tuple[str, ...] = OFFICIAL_SPLIT_FILES + ("count.json", "item_info.json")
"""Files that must be present in the raw directory for :func:`convert_official`."""

OFFICIAL_OPTIONAL_FILES: tuple[str, ...] = (
    "ui_full.txt",
    "content_feature.pt",
    "description_feature.pt",
    "item_cf_feature.pt",
    "<name>_LightGCN_bi_feature.pt",
)

# split file -> (role written in the .inter file, prefix that makes bundle tokens unique)
_SPLIT_ROLES: tuple[tuple[str, str, str], ...] = (
    ("bi_train.txt", "train", "train"),
    ("bi_valid_input.txt", "valid_input", "valid"),
    ("bi_valid_gt.txt", "valid_gt", "valid"),
    ("bi_test_input.txt", "test_input", "test"),
    ("bi_test_gt.txt", "test_gt", "test"),
)

# fixed feature file name -> modality
_FEATURE_FILES: dict[str, str] = {
    "content_feature.pt": "media",
    "description_feature.pt": "description",
    "item_cf_feature.pt": "cf",
}
_RELATIONAL_SUFFIX = "_LightGCN_bi_feature.pt"
_CANDIDATES_RE = re.compile(r"^bi_\w+_cans\d*\.txt$")
_HEADER_BUNDLE_NAMES = {"bundle", "bundle_id", "bundleid", "bid", "bundle id", "set", "set_id", "list", "list_id"}
_HEADER_ITEM_NAMES = {"item", "item_id", "itemid", "iid", "item id", "package", "track", "track_id"}


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def clean_title(title: object) -> str:
    """Return ``title`` as one line of words separated by single spaces (tabs/newlines removed).

    The ``.item`` file is tab-separated and line-based, so titles must not contain either.
    """
    if title is None:
        return ""
    return " ".join(str(title).split())


def _check_dataset_name(dataset: str) -> None:
    if not isinstance(dataset, str) or not dataset or dataset in (".", "..") or re.search(r"[/\\\s]", dataset):
        raise BundleDataError(
            f"Invalid dataset name {dataset!r}: it is used in file names, so it must be non-empty and "
            "contain no slashes or whitespace (e.g. 'spotify', 'pog_dense')."
        )


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line without the newline)`` for the non-blank lines of ``path``."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield lineno, line
    except UnicodeDecodeError as e:
        raise BundleDataError(f"{path}: not valid UTF-8 text ({e}); re-save the file as UTF-8.") from e


def _parse_int(token: str, path: Path, lineno: int, what: str) -> int:
    token = token.strip()
    try:
        return int(token)
    except ValueError:
        raise BundleDataError(
            f"{path}, line {lineno}: {what} {token!r} is not an integer. The official release format is "
            "'<bundle id>, <item id>, <item id>, ...' with 0-based integer ids; fix or remove that line."
        ) from None


def _read_id_lists(
    path: Path, n_items: int, *, owner: str = "bundle", require_items: bool = False
) -> dict[int, list[int]]:
    """Parse ``"<owner id>, <item id>, ..."`` lines into ``{owner id: [item ids]}`` (file order kept).

    Lines repeating an owner id are merged (so a one-pair-per-line file works too); duplicate items
    inside one owner are dropped. Item ids are checked against the catalogue ``[0, n_items)``.
    """
    groups: dict[int, list[int]] = {}
    seen: dict[int, set] = {}
    for lineno, line in _iter_lines(path):
        fields = [f for f in (x.strip() for x in line.split(",")) if f != ""]
        if not fields:
            raise BundleDataError(
                f"{path}, line {lineno}: no ids in {line!r}; expected '<{owner} id>, <item id>, ...'."
            )
        owner_id = _parse_int(fields[0], path, lineno, f"{owner} id")
        if owner_id < 0:
            raise BundleDataError(f"{path}, line {lineno}: negative {owner} id {owner_id}; ids are 0-based.")
        items = [_parse_int(tok, path, lineno, "item id") for tok in fields[1:]]
        if require_items and not items:
            raise BundleDataError(
                f"{path}, line {lineno}: {owner} {owner_id} has no items. Every line must be "
                f"'<{owner} id>, <item id>, <item id>, ...'; add its items or delete the line."
            )
        for item in items:
            if item < 0 or item >= n_items:
                raise BundleDataError(
                    f"{path}, line {lineno}: item id {item} is not in the catalogue (count.json says "
                    f"#I = {n_items}, so ids must be 0..{n_items - 1}). The split files contain ids that "
                    "are not in the catalogue: use the count.json/item_info.json of the same release folder."
                )
        group = groups.setdefault(owner_id, [])
        members = seen.setdefault(owner_id, set())
        for item in items:
            if item not in members:
                members.add(item)
                group.append(item)
    return groups


def _load_json(path: Path) -> object:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise BundleDataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}).") from e
    except UnicodeDecodeError as e:
        raise BundleDataError(f"{path}: not valid UTF-8 text ({e}); re-save the file as UTF-8.") from e


def _read_count(path: Path) -> dict[str, int]:
    data = _load_json(path)
    if not isinstance(data, dict) or "#I" not in data:
        raise BundleDataError(
            f'{path}: expected a JSON object like {{"#U": 100, "#B": 50, "#I": 300}} with at least "#I" '
            "(the number of items); use the count.json of the release folder."
        )
    counts: dict[str, int] = {}
    for key, value in data.items():
        if key in ("#U", "#B", "#I"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BundleDataError(f"{path}: {key!r} must be a non-negative integer, got {value!r}.")
            counts[key] = value
    return counts


def _item_title(info: object) -> str:
    """Title of one ``item_info.json`` entry: ``title_en``, ``title`` or Spotify's "<track> by <artist>"."""
    if isinstance(info, str):
        return clean_title(info)
    if not isinstance(info, dict):
        return ""
    for key in ("title_en", "title"):
        value = clean_title(info.get(key))
        if value:
            return value
    track = clean_title(info.get("track_name"))
    artist = clean_title(info.get("artist_name"))
    if track and artist:
        return f"{track} by {artist}"
    return track or artist


def _read_item_titles(path: Path, n_items: int) -> list[str]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise BundleDataError(
            f'{path}: expected a JSON object keyed by item id ("0", "1", ...) whose values hold the '
            "item's 'title_en', 'title' or 'track_name'/'artist_name'; use the release's item_info.json."
        )
    titles = [""] * n_items
    ignored = 0
    for key, info in data.items():
        try:
            idx = int(str(key).strip())
        except ValueError:
            ignored += 1
            continue
        if not 0 <= idx < n_items:
            ignored += 1
            continue
        titles[idx] = _item_title(info)
    if ignored:
        logger.warning("%s: ignored %d entries whose key is not an item id in 0..%d", path, ignored, n_items - 1)
    untitled = sum(1 for t in titles if not t)
    if untitled:
        logger.info("%s: %d of %d items have no title (written with an empty title)", path, untitled, n_items)
    return titles


def _load_feature(path: Path, n_items: int) -> np.ndarray:
    """A release's ``.pt`` feature tensor, loaded with ``weights_only=True``: a third-party file can
    hold tensors only, never code (a pickled object is refused before anything in it runs)."""
    import torch

    from recbole_bundle.compat import torch_load

    obj = torch_load(path, map_location="cpu", what="feature file",
                     fix="re-download the release's file (a feature file holds one float tensor [#I, dim] saved with "
                         "torch.save), or delete it to build the dataset without that modality")
    if isinstance(obj, torch.Tensor):
        arr = obj.detach().to(torch.float32).numpy()
    else:
        raise BundleDataError(
            f"{path}: expected a float tensor of shape [#I, dim], got {type(obj).__name__}; re-download the file."
        )
    if arr.ndim != 2:
        raise BundleDataError(f"{path}: expected a 2-D tensor [#I, dim], got shape {tuple(arr.shape)}.")
    if arr.shape[0] != n_items:
        raise BundleDataError(
            f"{path}: has {arr.shape[0]} rows but count.json says #I = {n_items}; every feature tensor needs "
            "one row per item. Use the feature files of the same release folder (or delete this file)."
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _official_feature_files(src: Path) -> list[tuple[str, Path]]:
    """``(modality, path)`` for the recognised ``*.pt`` files of a release folder."""
    found: list[tuple[str, Path]] = []
    relational: list[Path] = []
    for path in sorted(src.glob("*.pt")):
        if path.name in _FEATURE_FILES:
            found.append((_FEATURE_FILES[path.name], path))
        elif path.name.endswith(_RELATIONAL_SUFFIX):
            relational.append(path)
        else:
            logger.info("%s: not a known feature file, ignored", path)
    if len(relational) > 1:
        names = ", ".join(p.name for p in relational)
        raise BundleDataError(
            f"{src}: several relational feature files ({names}); keep only the one '*{_RELATIONAL_SUFFIX}' "
            "that belongs to this dataset."
        )
    if relational:
        found.append(("relational", relational[0]))
    return found


# --------------------------------------------------------------------------------------------
# staged (all-or-nothing) output
# --------------------------------------------------------------------------------------------


class _Staging:
    """A temporary sibling directory of ``out_dir``; on leaving the ``with`` block its files move into
    ``out_dir`` (``last`` last), or on an exception the directory is discarded."""

    def __init__(self, out_dir: Path, dataset: str, last: str) -> None:
        self.out_dir, self.last = out_dir, last
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.converting-{dataset}-", dir=out_dir.parent))

    def file(self, name: str) -> Path:
        return self.path / name

    def __enter__(self) -> "_Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit(self.last)
        else:
            self.discard()

    def commit(self, last: str) -> None:
        """Move staged files into ``out_dir`` (``last`` is moved last, so its presence means complete)."""
        if not self.out_dir.exists():
            os.replace(self.path, self.out_dir)
            return
        names = sorted(p.name for p in self.path.iterdir() if p.name != last) + [last]
        for name in names:
            os.replace(self.path / name, self.out_dir / name)
        self.path.rmdir()

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    n = 0
    with atomic_open(path, "w") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# official release
# --------------------------------------------------------------------------------------------


def official_folder(dataset: str) -> str:
    """The release folder name of ``dataset`` on the Hub (the dataset name in lower case)."""
    return dataset.lower()


def official_missing_message(dataset: str, raw_dir: PathLike) -> str:
    """Explain which official release files are missing from ``raw_dir``, where to put them and how to get them."""
    raw_dir = Path(raw_dir)
    folder = official_folder(dataset)
    missing = [n for n in OFFICIAL_REQUIRED_FILES if not (raw_dir / n).is_file()]
    state = (
        f"these required files are missing: {', '.join(missing)}"
        if raw_dir.is_dir()
        else "that directory does not exist"
    )
    return (
        f"Dataset '{dataset}' needs the official Bundle-MLLM/CLHE release files in {raw_dir} ({state}).\n"
        f"Required, directly in that directory: {', '.join(OFFICIAL_REQUIRED_FILES)}.\n"
        f"Optional: {', '.join(OFFICIAL_OPTIONAL_FILES)}.\n"
        f"Get them from the Hugging Face dataset '{HF_REPO_ID}', folder '{folder}/':\n"
        f"  huggingface-cli download {HF_REPO_ID} --repo-type dataset --include '{folder}/*' "
        f"--local-dir {raw_dir}\n"
        f"  mv {raw_dir}/{folder}/* {raw_dir}/\n"
        "or set 'raw_data_path' to a directory that already holds them."
    )


def download_official(dataset: str, dest_dir: PathLike) -> Path:
    """Download the release folder of ``dataset`` from the Hub so its files lie directly in ``dest_dir``.

    Returns ``dest_dir``. Offline (``HF_HUB_OFFLINE=1``) or on any Hub error it raises
    :class:`BundleDataError` with :func:`official_missing_message`, which tells how to get the files by hand.
    """
    _check_dataset_name(dataset)
    dest = Path(dest_dir)
    folder = official_folder(dataset)
    if hub_offline():
        raise BundleDataError(
            "Cannot download the official release: HF_HUB_OFFLINE is set.\n" + official_missing_message(dataset, dest)
        )
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".hf-download-", dir=dest))
    try:
        try:
            from huggingface_hub import snapshot_download

            logger.info("downloading %s/%s from the Hugging Face Hub into %s", HF_REPO_ID, folder, dest)
            snapshot_download(
                repo_id=HF_REPO_ID, repo_type="dataset", allow_patterns=[f"{folder}/*"], local_dir=str(staging)
            )
        except Exception as e:
            raise BundleDataError(
                f"Downloading '{folder}/' from the Hugging Face dataset {HF_REPO_ID} failed "
                f"({type(e).__name__}: {e}).\n" + official_missing_message(dataset, dest)
            ) from e
        got = staging / folder
        if got.is_dir():
            for path in got.iterdir():
                if path.is_file():
                    os.replace(path, dest / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if any(not (dest / n).is_file() for n in OFFICIAL_REQUIRED_FILES):
        raise BundleDataError(
            f"The download of '{folder}/' from {HF_REPO_ID} is incomplete (is '{dataset}' one of its folders, "
            "e.g. pog, pog_dense, spotify, spotify_sparse?).\n" + official_missing_message(dataset, dest)
        )
    return dest


def convert_official(src_dir: PathLike, dataset: str, out_dir: PathLike) -> Path:
    """Convert an official Bundle-MLLM/CLHE release folder into atomic files in ``out_dir``.

    Writes ``<ds>.inter`` (with the ``role`` column of the given split; bundle tokens are prefixed
    ``train_``/``valid_``/``test_`` because the release numbers bundles per split), ``<ds>.item``
    (titles of all ``#I`` items), ``<ds>.useritem`` when ``ui_full.txt`` exists, and one
    ``<ds>.feat_<modality>.npz`` + ``.json`` per feature tensor. Returns ``out_dir``.
    Everything is validated before anything appears in ``out_dir``.
    """
    _check_dataset_name(dataset)
    src = Path(src_dir)
    out = Path(out_dir)
    missing = [n for n in OFFICIAL_REQUIRED_FILES if not (src / n).is_file()]
    if missing:
        raise BundleDataError(official_missing_message(dataset, src))

    counts = _read_count(src / "count.json")
    n_items = counts["#I"]
    for path in sorted(src.glob("bi_*.txt")):
        if _CANDIDATES_RE.match(path.name):
            logger.info("%s: candidate file, not needed for conversion, ignored", path)

    # --- splits -------------------------------------------------------------------------------
    splits: dict[str, dict[int, list[int]]] = {}
    for name, role, _prefix in _SPLIT_ROLES:
        splits[role] = _read_id_lists(src / name, n_items, require_items=(role == "train"))
    for part in ("valid", "test"):
        inp, gt = splits[f"{part}_input"], splits[f"{part}_gt"]
        # an eval line with a bundle id but no items cannot be evaluated: drop the bundle from both files
        empty = {b for b, items in inp.items() if not items} | {b for b, items in gt.items() if not items}
        if empty:
            logger.warning(
                "bi_%s_input.txt/bi_%s_gt.txt: %d bundles have no items on one side and are dropped",
                part,
                part,
                len(empty),
            )
            for b in empty:
                inp.pop(b, None)
                gt.pop(b, None)
        _check_paired(src, part, inp, gt)
    if "#B" in counts:
        n_bundles = len(splits["train"]) + len(splits["valid_input"]) + len(splits["test_input"])
        if n_bundles != counts["#B"]:
            logger.info("count.json says #B = %d; the split files hold %d bundles", counts["#B"], n_bundles)

    # --- everything else ----------------------------------------------------------------------
    titles = _read_item_titles(src / "item_info.json", n_items)
    user_items: dict[int, list[int]] | None = None
    if (src / "ui_full.txt").is_file():
        user_items = _read_id_lists(src / "ui_full.txt", n_items, owner="user")
    else:
        logger.info("%s: no ui_full.txt, so no .useritem file is written", src)
    features = [(modality, path, _load_feature(path, n_items)) for modality, path in _official_feature_files(src)]

    # --- write --------------------------------------------------------------------------------
    with _Staging(out, dataset, last=f"{dataset}.inter") as staging:
        inter_rows: list[tuple[str, str, str]] = []
        for _name, role, prefix in _SPLIT_ROLES:
            for bundle, items in splits[role].items():
                token = f"{prefix}_{bundle}"
                inter_rows.extend((token, str(item), role) for item in items)
        _write_rows(staging.file(f"{dataset}.inter"), ("bundle_id:token", "item_id:token", "role:token"), inter_rows)
        _write_rows(
            staging.file(f"{dataset}.item"),
            ("item_id:token", "title:token_seq"),
            ((str(i), titles[i]) for i in range(n_items)),
        )
        if user_items is not None:
            n_ui = _write_rows(
                staging.file(f"{dataset}.useritem"),
                ("user_id:token", "item_id:token"),
                ((str(u), str(i)) for u, items in user_items.items() for i in items),
            )
            logger.info("%s.useritem: %d user-item pairs of %d users", dataset, n_ui, len(user_items))
        tokens = np.array([str(i) for i in range(n_items)], dtype=np.str_)
        for modality, path, arr in features:
            atomic_save_npz(
                staging.file(f"{dataset}.feat_{modality}.npz"),
                tokens=tokens,
                features=arr,
                missing=np.zeros(n_items, dtype=bool),
            )
            meta = {"source": path.name, "dim": int(arr.shape[1]), "n_items": int(arr.shape[0])}
            atomic_write_text(staging.file(f"{dataset}.feat_{modality}.json"), json.dumps(meta, indent=2) + "\n")
    logger.info(
        "converted official release %s -> %s: %d train / %d valid / %d test bundles, %d items, %d rows, features: %s",
        src,
        out,
        len(splits["train"]),
        len(splits["valid_input"]),
        len(splits["test_input"]),
        n_items,
        len(inter_rows),
        ", ".join(m for m, _, _ in features) or "none",
    )
    return out


def _check_paired(src: Path, part: str, inp: Mapping[int, list[int]], gt: Mapping[int, list[int]]) -> None:
    for have, lack, have_name, lack_name in (
        (gt, inp, f"bi_{part}_gt.txt", f"bi_{part}_input.txt"),
        (inp, gt, f"bi_{part}_input.txt", f"bi_{part}_gt.txt"),
    ):
        orphans = [b for b in have if b not in lack]
        if orphans:
            lineno = _first_line_of(src / have_name, orphans[0])
            raise BundleDataError(
                f"{src / have_name}, line {lineno}: {part} bundle {orphans[0]} has no line in {lack_name} "
                f"({len(orphans)} such bundles). Every {part} bundle needs both an input and a ground-truth "
                f"line; use {have_name} and {lack_name} from the same release folder."
            )


def _first_line_of(path: Path, bundle: int) -> int:
    for lineno, line in _iter_lines(path):
        head = line.split(",", 1)[0].strip()
        if head == str(bundle) or (head.lstrip("+-").isdigit() and int(head) == bundle):
            return lineno
    return 0


# --------------------------------------------------------------------------------------------
# bundle<TAB>item pairs
# --------------------------------------------------------------------------------------------


def _looks_like_header(fields: Sequence[str]) -> bool:
    """True for a first line such as ``bundle_id<TAB>item_id`` or ``bundle_id:token<TAB>item_id:token``."""
    names = [f.strip().lower().split(":", 1)[0] for f in fields]
    return len(names) == 2 and names[0] in _HEADER_BUNDLE_NAMES and names[1] in _HEADER_ITEM_NAMES


def _read_titles_json(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise BundleDataError(f"Titles file {path} does not exist; fix 'raw_titles_file' or leave it unset.")
    data = _load_json(path)
    if not isinstance(data, dict):
        raise BundleDataError(
            f'{path}: expected a JSON object of strings {{"<item>": "<title>", ...}}, got {type(data).__name__}.'
        )
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise BundleDataError(
            f'{path}: expected a JSON object of strings {{"<item>": "<title>", ...}}, but the value of '
            f"{bad[0]!r} is {type(data[bad[0]]).__name__} ({len(bad)} non-string values); make every title a string."
        )
    return {str(k).strip(): v for k, v in data.items()}


def convert_pairs(
    pairs_file: PathLike,
    dataset: str,
    out_dir: PathLike,
    titles_file: PathLike | None = None,
    header: bool | None = None,
) -> Path:
    """Convert a ``bundle<TAB>item`` pair file (+ optional JSON ``{item: title}``) into atomic files.

    Writes ``<ds>.inter`` (no ``role`` column: the loader splits by ratio) and, when ``titles_file``
    is given, ``<ds>.item`` with one row per item of the pairs (empty title where the JSON has none;
    titles of items in no pair are ignored). Duplicate pairs are dropped. ``header``: ``True`` skips
    the first line, ``False`` never does, ``None`` (default) skips it only if it looks like a header
    (``bundle_id<TAB>item_id``, ``bundle<TAB>item``, optionally with ``:token`` suffixes). Returns ``out_dir``.
    """
    _check_dataset_name(dataset)
    src = Path(pairs_file)
    out = Path(out_dir)
    if not src.is_file():
        raise BundleDataError(
            f"Pair file {src} does not exist; set 'raw_pairs_file' (relative to 'raw_data_path') to a file with "
            "one 'bundle<TAB>item' pair per line."
        )
    titles = _read_titles_json(Path(titles_file)) if titles_file is not None else None

    pairs: list[tuple[str, str]] = []
    seen: set = set()
    items: dict[str, None] = {}
    duplicates = 0
    first = True
    for lineno, line in _iter_lines(src):
        fields = line.split("\t")
        if first:
            first = False
            skip = header if header is not None else _looks_like_header(fields)
            if skip:
                logger.info("%s, line %d: header line %r skipped", src, lineno, line)
                continue
        fields = [f.strip() for f in fields]
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise BundleDataError(
                f"{src}, line {lineno}: expected exactly 2 non-empty tab-separated fields 'bundle<TAB>item', "
                f"got {len(fields)} field(s): {line!r}. Fix or remove that line."
            )
        pair = (fields[0], fields[1])
        if pair in seen:
            duplicates += 1
            continue
        seen.add(pair)
        pairs.append(pair)
        items.setdefault(pair[1], None)
    if not pairs:
        raise BundleDataError(f"{src}: contains no 'bundle<TAB>item' pairs.")
    if duplicates:
        logger.warning("%s: dropped %d duplicated bundle-item pairs", src, duplicates)

    with _Staging(out, dataset, last=f"{dataset}.inter") as staging:
        _write_rows(staging.file(f"{dataset}.inter"), ("bundle_id:token", "item_id:token"), pairs)
        if titles is not None:
            untitled = sum(1 for i in items if not clean_title(titles.get(i)))
            unused = sum(1 for k in titles if k not in items)
            if untitled:
                logger.info("%s: %d of %d items have no title (written empty)", titles_file, untitled, len(items))
            if unused:
                logger.info("%s: %d titles of items that are in no pair ignored", titles_file, unused)
            _write_rows(
                staging.file(f"{dataset}.item"),
                ("item_id:token", "title:token_seq"),
                ((i, clean_title(titles.get(i))) for i in items),
            )
    logger.info(
        "converted pairs %s -> %s: %d bundles, %d items, %d pairs",
        src,
        out,
        len({b for b, _ in pairs}),
        len(items),
        len(pairs),
    )
    return out
