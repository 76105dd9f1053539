"""Bad input stops with one clear message naming the file / line / key and the fix."""

import subprocess
import sys

import pytest

from recbole_bundle.config import BundleConfig
from recbole_bundle.errors import BundleConfigError, BundleDataError
from recbole_bundle.quick_start import run_recbole_bundle
from tests.conftest import ROOT, tiny_bundles, write_atomic


def cfg(tmp_path, **kw):
    return {"data_path": str(tmp_path), "state": "WARNING", "show_progress": False,
            "checkpoint_dir": str(tmp_path / "saved"), "epochs": 1, **kw}


def test_wrong_column_count_names_file_and_line(tmp_path):
    d = write_atomic(tmp_path, "bad", tiny_bundles(8, 20))
    lines = (d / "bad.inter").read_text().splitlines()
    lines[5] = lines[5] + "\textra"
    (d / "bad.inter").write_text("\n".join(lines) + "\n")
    with pytest.raises(BundleDataError, match=r"bad\.inter, line 6: expected 2 TAB-separated values"):
        run_recbole_bundle("Pop", "bad", config_dict=cfg(tmp_path))


@pytest.mark.parametrize("name, content, message", [
    ("notype", "bundle_id\titem_id\nb1\ti1\n", "line 1: column 'bundle_id' must be 'name:type'"),
    ("nocol", "user_id:token\titem_id:token\nb1\ti1\n", "required column 'bundle_id:token' is missing"),
    ("empty", "", "empty file"),
])
def test_bad_header_names_the_problem(tmp_path, name, content, message):
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}.inter").write_text(content)
    with pytest.raises(BundleDataError, match=message):
        run_recbole_bundle("Pop", name, config_dict=cfg(tmp_path))


def test_unknown_dataset_says_where_files_go(tmp_path):
    with pytest.raises(BundleDataError, match=r"no dataset named 'nosuch'.*nosuch\.inter.*bi_train\.txt"):
        run_recbole_bundle("Pop", "nosuch", config_dict=cfg(tmp_path))


def test_official_dataset_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BundleDataError, match="xhLiu/BundleConstruction"):
        run_recbole_bundle("Pop", "spotify", config_dict=cfg(tmp_path))


def test_bundle_with_one_item(tmp_path):
    bundles = tiny_bundles(10, 20)
    bundles["lonely"] = ["i3"]
    write_atomic(tmp_path, "small", bundles)
    with pytest.raises(BundleDataError, match=r"fewer than 2 items \(e\.g\. \['lonely'\]\)"):
        run_recbole_bundle("Pop", "small", config_dict=cfg(tmp_path))


def test_k_larger_than_items_available(tmp_path):
    write_atomic(tmp_path, "few", tiny_bundles(20, 24))
    with pytest.raises(BundleConfigError, match="n_candidates=40 is larger than the items available"):
        run_recbole_bundle("Pop", "few", config_dict=cfg(tmp_path, n_candidates=40))


def test_unknown_model_lists_models():
    with pytest.raises(BundleConfigError, match="unknown model 'LightGNC'.*LightGCN"):
        BundleConfig("LightGNC", "sample")


def test_wrong_type_from_command_line_and_yaml(tmp_path):
    with pytest.raises(BundleConfigError, match="config key 'n_candidates' \\(from command line\\) must be int"):
        BundleConfig("Pop", "sample", cmd_args=["--n_candidates=ten"])
    y = tmp_path / "bad.yaml"
    y.write_text("eval_batch_size: [1, 2]\n")
    with pytest.raises(BundleConfigError, match="config key 'eval_batch_size' \\(from config files\\) must be int"):
        BundleConfig("Pop", "sample", config_file_list=[str(y)])
    with pytest.raises(BundleConfigError, match="config file '.*missing.yaml' does not exist"):
        BundleConfig("Pop", "sample", config_file_list=[str(tmp_path / "missing.yaml")])


def test_bad_split_settings(tmp_path):
    write_atomic(tmp_path, "tiny", tiny_bundles(20, 30))
    with pytest.raises(BundleConfigError, match="bundle_split"):
        run_recbole_bundle("Pop", "tiny", config_dict=cfg(tmp_path, bundle_split="random"))
    with pytest.raises(BundleDataError, match="role:token"):
        run_recbole_bundle("Pop", "tiny", config_dict=cfg(tmp_path, bundle_split="file"))


def test_cli_reports_error_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run_recbole_bundle.py"), "--model=Nope", "--dataset=sample"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "error: unknown model 'Nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
