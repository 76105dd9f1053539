"""The CLI and the comparison runner share run_recbole_bundle; tables and run logs are written."""

import csv
import json
import subprocess
import sys

from recbole_bundle.quick_start import compare
from tests.conftest import ROOT


def test_cli_single_run_prints_metrics(tmp_path, data_root):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_recbole_bundle.py"), "--model=Pop", "--dataset=sample",
         f"--data_path={data_root}", "--show_progress=False", "--state=WARNING", "--n_candidates=5"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(": ") for line in proc.stdout.split("\n\n")[0].strip().splitlines())  # then the summary
    assert set(lines) == {"hitrate@1", "validratio", "hitrate@1(valid)"}
    assert 0.2 - 0.1 < float(lines["hitrate@1"]) <= 1.0  # K=5: random would be 0.2
    assert list((data_root / "sample" / "questions").glob("test_K5_uniform_*"))


def test_compare_writes_tables_and_log(tmp_path, run_config):
    out = compare(["Random", "ItemKNN"], "sample", seeds=[1, 2], config_dict=run_config, out_dir=tmp_path / "res")
    assert [(r["model"], r["seed"]) for r in out["records"]] == [("Random", 1), ("Random", 2), ("ItemKNN", 1), ("ItemKNN", 2)]
    md = out["tables"]["md"].read_text()
    assert "| ItemKNN | 2 |" in md and "**" in md
    rows = list(csv.DictReader(out["tables"]["csv"].open()))
    knn = [r for r in out["records"] if r["model"] == "ItemKNN"]
    mean = sum(r["metrics"]["hitrate@1"] for r in knn) / 2
    assert abs(float(rows[1]["hitrate@1_mean"]) - mean) < 1e-9
    assert "\\textbf" in out["tables"]["tex"].read_text()
    log = [json.loads(line) for line in out["log"].read_text().splitlines()]
    assert len(log) == 4 and log[0]["config"]["seed"] == 1 and log[0]["config"]["n_candidates"] == 10


def test_cli_single_run_saves_its_validation_curve(tmp_path, data_root):
    from PIL import Image

    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_recbole_bundle.py"), "--model=LightGCN", "--dataset=sample", "--epochs=3",
         f"--data_path={data_root}", "--show_progress=False", "--state=WARNING", f"--out_dir={tmp_path / 'res'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (png,) = (tmp_path / "res" / "curves").glob("sample_LightGCN_seed*.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and len(set(im.convert("L").getdata())) > 10
