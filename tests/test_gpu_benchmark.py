"""benchmarks/gpu.py runs end to end on the CPU with a tiny random Llama: every row, positive throughput."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("letter", "candidate", "generate", "generate-paper", "S1", "S1+ckpt", "S2")


@pytest.fixture(scope="module")
def gpu_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_tiny_run_has_every_row(gpu_benchmark, data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    emitted: list[str] = []
    result = gpu_benchmark.main([
        "--shape=tiny", "--dataset=sample", "--device=cpu", "--questions=8", "--eval-batch=8", "--train-batch=2",
        "--train-steps=2", "--warmup-steps=1", f"--out={out}", f"--data_path={data_root}",
        f"--checkpoint_dir={tmp_path / 'saved'}", "--relational_epochs=1",
    ], emit=emitted.append)
    rows = {r["name"]: r for r in result["rows"]}
    for name in ROWS:
        assert name in rows, f"row {name} missing"
        assert rows[name]["throughput"] > 0 and rows[name]["n"] > 0, rows[name]
        assert f"| {name} |" in result["markdown"]
    assert rows["letter"]["unit"] == "questions/s" and rows["letter"]["batch"] == 8 and rows["letter"]["n"] == 8
    assert rows["S1"]["unit"] == "samples/s" and rows["S1"]["batch"] == 2 and rows["S1"]["n"] == 4
    assert rows["generate"]["extra"]["new_tokens_per_batch"] == 4  # random weights never stop early
    assert rows["generate-paper"]["extra"]["new_tokens_per_batch"] == 64
    for name in ("S1", "S1+ckpt", "S2"):  # the timed steps really trained the stage's parameters
        assert rows[name]["extra"]["updated"] == 1.0, rows[name]
    assert result["meta"]["shape"] == "tiny" and result["meta"]["vocab"] > 1000
    assert emitted == [result["markdown"]]
    saved = json.loads((out / "gpu_tiny.json").read_text())
    assert {r["name"] for r in saved["rows"]} >= set(ROWS)
    assert (out / "gpu_tiny.md").read_text() == result["markdown"]
