"""Tests of recbole_bundle.data.converters: official release and bundle<TAB>item pair conversion."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_bundle.data import converters
from recbole_bundle.data.converters import (
    OFFICIAL_REQUIRED_FILES,
    convert_official,
    convert_pairs,
    download_official,
    official_missing_message,
)
from recbole_bundle.errors import BundleDataError

try:
    from tests.fixtures_official import OfficialFixture, write_official_fixture
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from fixtures_official import OfficialFixture, write_official_fixture

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a tab-separated atomic file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def roles_from_inter(path: Path) -> dict[str, dict[str, list[str]]]:
    header, rows = read_table(path)
    assert header == ["bundle_id:token", "item_id:token", "role:token"]
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for bundle, item, role in rows:
        out[role][bundle].append(item)
    return {role: dict(groups) for role, groups in out.items()}


@pytest.fixture
def release(tmp_path: Path) -> OfficialFixture:
    return write_official_fixture(tmp_path / "raw", n_items=30)


# ---------------------------------------------------------------------------- official: good input


def test_official_roundtrip_roles(release: OfficialFixture, tmp_path: Path) -> None:
    out = convert_official(release.dir, "spot", tmp_path / "out")
    assert out == tmp_path / "out"
    got = roles_from_inter(out / "spot.inter")
    prefix = {"train": "train", "valid_input": "valid", "valid_gt": "valid", "test_input": "test", "test_gt": "test"}
    for role, groups in release.splits.items():
        want = {f"{prefix[role]}_{b}": [str(i) for i in items] for b, items in groups.items()}
        assert got[role] == want, role
    # bundle tokens are unique across splits even though every split numbers bundles from 0
    assert not set(got["train"]) & set(got["valid_input"])
    assert not set(got["valid_input"]) & set(got["test_input"])
    assert set(got["valid_input"]) == set(got["valid_gt"])


def test_official_titles_all_items(release: OfficialFixture, tmp_path: Path) -> None:
    out = convert_official(release.dir, "spot", tmp_path / "out")
    header, rows = read_table(out / "spot.item")
    assert header == ["item_id:token", "title:token_seq"]
    assert [r[0] for r in rows] == [str(i) for i in range(release.n_items)]
    titles = [r[1] if len(r) > 1 else "" for r in rows]
    assert titles == release.titles
    assert titles[0] == "Red dress number 0"  # title_en wins over title; tabs/newlines collapsed
    assert titles[1] == "plain title 1"
    assert titles[2] == "Song 2 by Band 2"  # Spotify: "<track_name> by <artist_name>"
    assert titles[-1] == ""


def test_official_features_match_tensors(release: OfficialFixture, tmp_path: Path) -> None:
    out = convert_official(release.dir, "spot", tmp_path / "out")
    assert set(release.features) == {"media", "description", "cf", "relational"}
    for modality, tensor in release.features.items():
        with np.load(out / f"spot.feat_{modality}.npz") as npz:
            tokens, features, missing = npz["tokens"], npz["features"], npz["missing"]
        assert features.dtype == np.float32
        assert features.shape == tuple(tensor.shape)
        assert not missing.any() and missing.shape == (release.n_items,)
        row_of = {str(t): k for k, t in enumerate(tokens)}
        for item in range(release.n_items):
            np.testing.assert_array_equal(features[row_of[str(item)]], tensor[item].numpy())
        meta = json.loads((out / f"spot.feat_{modality}.json").read_text())
        assert meta == {"source": release.feature_files[modality], "dim": tensor.shape[1], "n_items": release.n_items}


def test_official_useritem(release: OfficialFixture, tmp_path: Path) -> None:
    out = convert_official(release.dir, "spot", tmp_path / "out")
    header, rows = read_table(out / "spot.useritem")
    assert header == ["user_id:token", "item_id:token"]
    got: dict[int, list[int]] = defaultdict(list)
    for user, item in rows:
        got[int(user)].append(int(item))
    assert dict(got) == release.user_items


def test_official_optional_files_absent(tmp_path: Path) -> None:
    release = write_official_fixture(tmp_path / "raw", with_user_items=False, dims={}, with_candidates=False)
    out = convert_official(release.dir, "pog", tmp_path / "out")
    assert (out / "pog.inter").is_file() and (out / "pog.item").is_file()
    assert not (out / "pog.useritem").exists()
    assert not list(out.glob("*.npz"))


def test_official_keeps_other_contents_of_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "spotify"
    release = write_official_fixture(out / "raw")
    convert_official(release.dir, "spotify", out)
    assert (out / "raw" / "bi_train.txt").is_file()  # the raw folder inside out_dir is left alone
    assert (out / "spotify.inter").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging directory removed


# ----------------------------------------------------------------------------- official: bad input


def assert_nothing_written(out: Path) -> None:
    """No atomic file in ``out`` and no staging directory left beside it."""
    if out.exists():
        assert not [p.name for p in out.iterdir() if p.name.startswith(("spot.", ".spot."))]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".") and "converting" in p.name]


@pytest.mark.parametrize("missing", ["bi_valid_gt.txt", "count.json"])
def test_official_missing_required_file(release: OfficialFixture, tmp_path: Path, missing: str) -> None:
    (release.dir / missing).unlink()
    with pytest.raises(BundleDataError) as err:
        convert_official(release.dir, "spotify", tmp_path / "out")
    msg = str(err.value)
    assert f"missing: {missing}" in msg
    for name in OFFICIAL_REQUIRED_FILES:  # says which files are required ...
        assert name in msg
    assert str(release.dir) in msg  # ... where they go ...
    assert "xhLiu/BundleConstruction" in msg and "'spotify/*'" in msg  # ... and where to get them
    assert not (tmp_path / "out").exists()


def _rewrite_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _line_of(path: Path, bundle: int) -> int:
    for k, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip() and int(line.split(",")[0]) == bundle:
            return k
    raise AssertionError(bundle)


def test_official_item_id_out_of_catalogue(release: OfficialFixture, tmp_path: Path) -> None:
    path = release.dir / "bi_test_gt.txt"
    lineno = _line_of(path, 1)
    _rewrite_line(path, lineno, f"1, 3, {release.n_items}")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BundleDataError, match=rf"bi_test_gt\.txt, line {lineno}: item id {release.n_items} "):
        convert_official(release.dir, "spot", out)
    assert_nothing_written(out)


def test_official_negative_item_id(release: OfficialFixture, tmp_path: Path) -> None:
    path = release.dir / "bi_train.txt"
    _rewrite_line(path, 1, "0, 4, -1")
    with pytest.raises(BundleDataError, match=r"bi_train\.txt, line 1: item id -1 is not in the catalogue"):
        convert_official(release.dir, "spot", tmp_path / "out")


def test_official_non_integer_id(release: OfficialFixture, tmp_path: Path) -> None:
    path = release.dir / "bi_valid_input.txt"
    lineno = _line_of(path, 2)
    _rewrite_line(path, lineno, "2, 5, abc")
    with pytest.raises(BundleDataError, match=rf"bi_valid_input\.txt, line {lineno}: item id 'abc' is not an integer"):
        convert_official(release.dir, "spot", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_official_train_bundle_without_items(release: OfficialFixture, tmp_path: Path) -> None:
    path = release.dir / "bi_train.txt"
    lineno = _line_of(path, 3)
    _rewrite_line(path, lineno, "3")
    with pytest.raises(BundleDataError, match=rf"bi_train\.txt, line {lineno}: bundle 3 has no items"):
        convert_official(release.dir, "spot", tmp_path / "out")


def test_official_gt_bundle_without_input(release: OfficialFixture, tmp_path: Path) -> None:
    path = release.dir / "bi_test_gt.txt"
    with path.open("a") as f:
        f.write("99, 1, 2\n")
    lineno = _line_of(path, 99)
    out = tmp_path / "out"
    write_official_fixture(out / "raw")  # out_dir already exists with other content
    with pytest.raises(
        BundleDataError, match=rf"bi_test_gt\.txt, line {lineno}: test bundle 99 has no line in bi_test_input\.txt"
    ):
        convert_official(release.dir, "spot", out)
    assert_nothing_written(out)
    assert (out / "raw" / "bi_train.txt").is_file()


def test_official_input_bundle_without_gt(release: OfficialFixture, tmp_path: Path) -> None:
    with (release.dir / "bi_valid_input.txt").open("a") as f:
        f.write("42, 1\n")
    with pytest.raises(
        BundleDataError, match=r"bi_valid_input\.txt, line \d+: valid bundle 42 has no line in bi_valid_gt\.txt"
    ):
        convert_official(release.dir, "spot", tmp_path / "out")


def test_official_feature_row_count(release: OfficialFixture, tmp_path: Path) -> None:
    torch.save(torch.zeros(release.n_items + 1, 3), release.dir / "item_cf_feature.pt")
    with pytest.raises(BundleDataError, match=r"item_cf_feature\.pt: has 31 rows but count.json says #I = 30"):
        convert_official(release.dir, "spot", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_official_failure_keeps_previous_conversion(release: OfficialFixture, tmp_path: Path) -> None:
    out = convert_official(release.dir, "spot", tmp_path / "out")
    before = (out / "spot.inter").read_bytes()
    _rewrite_line(release.dir / "bi_train.txt", 1, "0, x")
    with pytest.raises(BundleDataError):
        convert_official(release.dir, "spot", out)
    assert (out / "spot.inter").read_bytes() == before


def test_official_failure_while_writing_leaves_nothing(
    release: OfficialFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recbole_bundle.data.converters as conv

    def disk_full(path, **arrays):
        raise OSError("disk full")

    monkeypatch.setattr(conv, "atomic_save_npz", disk_full)  # fails after .inter/.item were staged
    out = tmp_path / "out"
    (out / "raw").mkdir(parents=True)
    with pytest.raises(OSError, match="disk full"):
        convert_official(release.dir, "spot", out)
    assert_nothing_written(out)
    assert [p.name for p in out.iterdir()] == ["raw"]


# ------------------------------------------------------------------------- missing message / download


def test_official_missing_message_lists_files(tmp_path: Path) -> None:
    raw = tmp_path / "pog_dense" / "raw"
    raw.mkdir(parents=True)
    (raw / "count.json").write_text("{}")
    msg = official_missing_message("POG_dense", raw)
    assert "count.json" not in msg.split("missing:")[1].split("\n")[0]
    assert "bi_train.txt" in msg.split("missing:")[1]
    assert "--include 'pog_dense/*'" in msg  # folder is the lower-cased dataset name
    assert f"--local-dir {raw}" in msg


def test_download_official_offline_raises_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BundleDataError) as err:
        download_official("spotify", tmp_path / "raw")
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg
    assert "huggingface-cli download xhLiu/BundleConstruction --repo-type dataset --include 'spotify/*'" in msg
    assert "bi_train.txt" in msg


def test_download_official_hub_error_raises_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def boom(**kwargs):
        assert kwargs["repo_id"] == "xhLiu/BundleConstruction" and kwargs["allow_patterns"] == ["pog/*"]
        raise OSError("no network")

    monkeypatch.setattr(converters, "hub_offline", lambda: False)  # the online path (CI is offline)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
    with pytest.raises(BundleDataError, match=r"(?s)no network.*--include 'pog/\*'"):
        download_official("pog", tmp_path / "raw")


def test_download_official_moves_files_into_dest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def fake(*, local_dir, **kwargs):
        write_official_fixture(Path(local_dir) / "spotify")
        return local_dir

    monkeypatch.setattr(converters, "hub_offline", lambda: False)  # the online path (CI is offline)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    dest = download_official("spotify", tmp_path / "raw")
    assert dest == tmp_path / "raw"
    assert all((dest / n).is_file() for n in OFFICIAL_REQUIRED_FILES)
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []
    convert_official(dest, "spotify", tmp_path / "out")


# ---------------------------------------------------------------------------------------- pairs


def test_pairs_with_titles_and_duplicates(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("b1\tx\nb1\ty\n\nb2\ty\nb1\tx\nb2\tz\nb2\ty\n")
    titles = tmp_path / "titles.json"
    titles.write_text(json.dumps({"x": "x: an\titem\n", "y": "y:  why", "unused": "never in a pair"}))
    with caplog.at_level(logging.WARNING, logger="recbole_bundle.data.converters"):
        out = convert_pairs(pairs, "tiny", tmp_path / "out", titles_file=titles)
    assert "dropped 2 duplicated" in caplog.text
    header, rows = read_table(out / "tiny.inter")
    assert header == ["bundle_id:token", "item_id:token"]
    assert rows == [["b1", "x"], ["b1", "y"], ["b2", "y"], ["b2", "z"]]
    header, rows = read_table(out / "tiny.item")
    assert header == ["item_id:token", "title:token_seq"]
    assert rows == [["x", "x: an item"], ["y", "y: why"], ["z", ""]]  # z has no title -> empty


def test_pairs_without_titles_writes_no_item_file(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("1\t2\n1\t3\n")
    out = convert_pairs(pairs, "ids", tmp_path / "out")
    assert (out / "ids.inter").read_text() == "bundle_id:token\titem_id:token\n1\t2\n1\t3\n"
    assert not (out / "ids.item").exists()


@pytest.mark.parametrize(
    "first_line, header, skipped",
    [
        ("bundle_id\titem_id", None, True),
        ("bundle_id:token\titem_id:token", None, True),
        ("bundle\titem", None, True),
        ("7\t8", None, False),
        ("7\t8", True, True),
        ("bundle\titem", False, False),
    ],
)
def test_pairs_header_detection(tmp_path: Path, first_line: str, header, skipped: bool) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{first_line}\n1\t2\n")
    out = convert_pairs(pairs, "h", tmp_path / "out", header=header)
    _, rows = read_table(out / "h.inter")
    assert (rows == [["1", "2"]]) is skipped


@pytest.mark.parametrize("bad", ["b3\tq\tr", "b3 q", "b3\t"])
def test_pairs_malformed_line(tmp_path: Path, bad: str) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"b1\tx\n\nb2\ty\n{bad}\n")
    with pytest.raises(BundleDataError, match=r"pairs\.tsv, line 4: expected exactly 2"):
        convert_pairs(pairs, "bad", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BundleDataError, match=r"nope\.tsv does not exist"):
        convert_pairs(tmp_path / "nope.tsv", "x", tmp_path / "out")


@pytest.mark.parametrize("content", ['["a", "b"]', '{"x": 3}', '{"x": null}', "{not json"])
def test_pairs_bad_titles_file(tmp_path: Path, content: str) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("b\tx\n")
    titles = tmp_path / "titles.json"
    titles.write_text(content)
    with pytest.raises(BundleDataError, match=r"titles\.json"):
        convert_pairs(pairs, "t", tmp_path / "out", titles_file=titles)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ real data


def _shared(name: str) -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (../shared is not checked out next to the project)")
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent in ../shared/data")
    return path


def _counts(inter: Path) -> tuple[int, int, int]:
    _, rows = read_table(inter)
    return len({r[0] for r in rows}), len({r[1] for r in rows}), len(rows)


def test_real_debian_meta(tmp_path: Path) -> None:
    src = _shared("debian-meta")
    out = convert_pairs(src / "pairs.tsv", "debian-meta", tmp_path / "debian-meta", titles_file=src / "titles.json")
    assert _counts(out / "debian-meta.inter") == (356, 4831, 6470)
    _, rows = read_table(out / "debian-meta.item")
    assert len(rows) == 4831
    titles = {r[0]: r[1] for r in rows}
    assert all(titles.values())  # every package has a "name: description" title
    assert titles["proguard-cli"].startswith("proguard-cli: ")
    assert not any("\t" in t or "  " in t for t in titles.values())


def test_real_ifashion(tmp_path: Path) -> None:
    src = _shared("ifashion")
    out = convert_pairs(src / "bundle_item.txt", "ifashion", tmp_path / "ifashion")
    assert _counts(out / "ifashion.inter") == (27694, 42563, 106916)
    _, n_bundles, n_items = (int(x) for x in (src / "iFashion_data_size.txt").read_text().split())
    assert (n_bundles, n_items) == (27694, 42563)
