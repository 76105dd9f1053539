import csv
import json
from pathlib import Path

import numpy as np
import pytest

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.tables import (
    append_run_log,
    display_metric_name,
    log_run_and_write_tables,
    read_run_log,
    summarize,
    write_tables,
)

HR, VR, HRV = "hitrate@1", "validratio", "hitrate@1(valid)"

VALUES = {
    # model: per seed (hitrate@1, validratio, hitrate@1(valid))
    "Pop": [(0.10, 0.90, 0.11), (0.12, 0.92, 0.13), (0.11, 0.91, 0.12)],
    "Text_LoRA": [(0.20, 0.50, 0.22), (0.26, 0.54, 0.27), (0.23, 0.52, 0.25)],
    "GRU4Rec": [(0.15, 0.80, 0.16), (0.17, 0.82, 0.18), (0.16, 0.84, 0.17)],
}


def make_records(values=VALUES):
    recs = []
    for model, runs in values.items():
        for seed, (hr, vr, hrv) in enumerate(runs):
            recs.append({"model": model, "seed": seed, "metrics": {HR: hr, VR: vr, HRV: hrv}})
    return recs


def md_rows(text):
    """Markdown table rows -> {first cell: [cells...]}"""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|:"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def tex_rows(text):
    rows = {}
    for line in text.splitlines():
        if line.endswith(r"\\"):
            cells = [c.strip() for c in line[:-2].split(" & ")]
            rows[cells[0]] = cells
    return rows


def test_mean_and_sample_std_over_three_seeds():
    rows = summarize(make_records())
    assert [r["model"] for r in rows] == ["Pop", "Text_LoRA", "GRU4Rec"]
    for row in rows:
        arr = np.array(VALUES[row["model"]])
        assert row["n_seeds"] == 3
        for j, metric in enumerate((HR, VR, HRV)):
            assert row[f"{metric}_mean"] == pytest.approx(arr[:, j].mean(), abs=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(arr[:, j].std(ddof=1), abs=1e-12)
            assert row[f"{metric}_n"] == 3


def test_single_seed_std_is_zero():
    rows = summarize([{"model": "A", "seed": 0, "metrics": {HR: 0.3}}])
    assert rows[0][f"{HR}_mean"] == 0.3 and rows[0][f"{HR}_std"] == 0.0


def test_single_seed_cells_show_no_zero_std(tmp_path):
    """'0.3000 ± 0.0000' reads as a measured zero spread; one seed has none."""
    recs = [{"model": "A", "seed": 0, "metrics": {HR: 0.3}}, {"model": "B", "seed": 0, "metrics": {HR: 0.2}},
            {"model": "B", "seed": 1, "metrics": {HR: 0.4}}]
    paths = write_tables(recs, tmp_path)
    md, tex = md_rows(paths["md"].read_text()), tex_rows(paths["tex"].read_text())
    assert md["A"][2] == "0.3000" and tex["A"][1] == "0.3000"
    assert md["B"][2] == f"**0.3000 ± {np.std([0.2, 0.4], ddof=1):.4f}**"
    assert "±" not in md["A"][2] and r"\pm" not in tex["A"][1]


def test_best_marked_per_metric_in_md_and_tex(tmp_path):
    # hitrate@1 and hitrate@1(valid): Text_LoRA best; validratio: Pop best.
    paths = write_tables(make_records(), tmp_path)
    md = md_rows(paths["md"].read_text())
    tex = tex_rows(paths["tex"].read_text())
    assert md["Model"][2:] == ["HitRate@1", "ValidRatio", "HitRate@1(valid)"]
    expected_best = {1: "Text_LoRA", 2: "Pop", 3: "Text_LoRA"}  # metric column -> best model
    for col, winner in expected_best.items():
        for model in VALUES:
            md_cell = md[model][1 + col]
            tex_cell = tex[model.replace("_", r"\_")][col]
            is_bold_md = md_cell.startswith("**") and md_cell.endswith("**")
            is_bold_tex = tex_cell.startswith(r"\textbf{")
            assert is_bold_md == (model == winner), (col, model, md_cell)
            assert is_bold_tex == (model == winner), (col, model, tex_cell)
    mean = np.mean([r[0] for r in VALUES["Text_LoRA"]])
    std = np.std([r[0] for r in VALUES["Text_LoRA"]], ddof=1)
    assert md["Text_LoRA"][2] == f"**{mean:.4f} ± {std:.4f}**"
    assert tex[r"Text\_LoRA"][1] == rf"\textbf{{{mean:.4f} $\pm$ {std:.4f}}}"
    tex_text = paths["tex"].read_text()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}"):
        assert rule in tex_text


def test_smaller_is_better_flips_best(tmp_path):
    paths = write_tables(make_records(), tmp_path, smaller_is_better={VR})
    md = md_rows(paths["md"].read_text())
    assert md["Text_LoRA"][3].startswith("**")
    assert not md["Pop"][3].startswith("**")


def gain(p, b):
    return (p - b) / abs(b) * 100


def test_relative_gain_proposed_vs_best_baseline(tmp_path):
    paths = write_tables(make_records(), tmp_path, proposed=["Text_LoRA"])
    md = md_rows(paths["md"].read_text())
    tex = tex_rows(paths["tex"].read_text())
    means = {m: np.array(v).mean(axis=0) for m, v in VALUES.items()}
    for j in range(3):
        best_base = max(means["Pop"][j], means["GRU4Rec"][j])
        g = gain(means["Text_LoRA"][j], best_base)
        assert md["Improvement"][2 + j] == f"{g:+.2f}%"
        assert tex["Improvement"][1 + j] == f"{g:+.2f}" + r"\%"
    # validratio: proposed is worse than the best baseline (Pop) -> negative gain
    assert md["Improvement"][3].startswith("-")
    assert md["Improvement"][2].startswith("+")


def test_relative_gain_negative_when_proposed_worse(tmp_path):
    paths = write_tables(make_records(), tmp_path, proposed=["Pop"], metrics=[HR])
    md = md_rows(paths["md"].read_text())
    means = {m: np.array(v).mean(axis=0) for m, v in VALUES.items()}
    g = gain(means["Pop"][0], means["Text_LoRA"][0])
    assert g < 0
    assert md["Improvement"][2] == f"{g:+.2f}%"
    assert md["Model"][2:] == ["HitRate@1"]


def test_relative_gain_without_proposed_is_best_vs_second(tmp_path):
    paths = write_tables(make_records(), tmp_path, metrics=[HR])
    md = md_rows(paths["md"].read_text())
    means = {m: np.array(v).mean(axis=0)[0] for m, v in VALUES.items()}
    first, second = sorted(means.values(), reverse=True)[:2]
    assert md["Improvement"][2] == f"{gain(first, second):+.2f}%"


def test_unknown_proposed_model_raises(tmp_path):
    with pytest.raises(BundleConfigError, match="Nope"):
        write_tables(make_records(), tmp_path, proposed=["Nope"])


def test_csv_parses_back_to_same_numbers(tmp_path):
    records = make_records()
    paths = write_tables(records, tmp_path)
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == ["model", "n_seeds"] + [f"{m}_{s}" for m in (HR, VR, HRV) for s in ("mean", "std")]
    assert [r["model"] for r in rows] == list(VALUES)
    for row in rows:
        arr = np.array(VALUES[row["model"]])
        assert int(row["n_seeds"]) == 3
        for j, metric in enumerate((HR, VR, HRV)):
            assert float(row[f"{metric}_mean"]) == pytest.approx(arr[:, j].mean(), abs=1e-12)
            assert float(row[f"{metric}_std"]) == pytest.approx(arr[:, j].std(ddof=1), abs=1e-12)
    # and exactly what summarize() computed (full precision, no rounding)
    for row, summ in zip(rows, summarize(records)):
        assert float(row[f"{HR}_mean"]) == summ[f"{HR}_mean"]


def test_latex_escapes_special_characters(tmp_path):
    records = [
        {"model": "Text_LoRA", "seed": 0, "metrics": {HR: 0.2, "my_metric%": 0.1}},
        {"model": "A&B #2", "seed": 0, "metrics": {HR: 0.1, "my_metric%": 0.3}},
    ]
    tex = write_tables(records, tmp_path)["tex"].read_text()
    assert r"Text\_LoRA" in tex and "Text_LoRA" not in tex
    assert r"A\&B \#2" in tex
    assert r"my\_metric\%" in tex
    rows = tex_rows(tex)
    assert set(rows) == {"Model", r"Text\_LoRA", r"A\&B \#2", "Improvement"}


def test_missing_metric_shows_dash(tmp_path):
    records = make_records()
    for r in records:
        if r["model"] == "GRU4Rec":
            del r["metrics"][VR]
    # partially missing: Pop has validratio only in 2 of 3 seeds
    del records[0]["metrics"][VR]
    paths = write_tables(records, tmp_path)
    md = md_rows(paths["md"].read_text())
    tex = tex_rows(paths["tex"].read_text())
    col = md["Model"].index("ValidRatio")  # first run lacks it, so it is no longer column 3
    assert md["GRU4Rec"][col] == "–"
    assert tex["GRU4Rec"][col - 1] == "--"
    assert "(n=2)" in md["Pop"][col]
    assert md["GRU4Rec"][md["Model"].index("HitRate@1")] != "–"
    with open(paths["csv"], newline="") as f:
        csv_rows = {r["model"]: r for r in csv.DictReader(f)}
    assert csv_rows["GRU4Rec"][f"{VR}_mean"] == ""
    expected = np.mean([v[1] for v in VALUES["Pop"][1:]])
    assert float(csv_rows["Pop"][f"{VR}_mean"]) == pytest.approx(expected, abs=1e-12)
    # a metric nobody reports for the proposed model -> gain shown as a dash too
    paths = write_tables(records, tmp_path, proposed=["GRU4Rec"], metrics=[HR, VR])
    imp = md_rows(paths["md"].read_text())["Improvement"]
    assert imp[3] == "–" and imp[2] != "–"


def test_display_names():
    assert display_metric_name("hitrate@1") == "HitRate@1"
    assert display_metric_name("validratio") == "ValidRatio"
    assert display_metric_name("hitrate@1(valid)") == "HitRate@1(valid)"
    assert display_metric_name("ndcg@10") == "NDCG@10"  # catalogue_metrics columns
    assert display_metric_name("recall@20") == "Recall@20"
    assert display_metric_name("mrr@10") == "mrr@10"  # others unchanged


def test_unknown_metric_and_empty_records_raise(tmp_path):
    with pytest.raises(BundleConfigError, match="hitrate@5"):
        write_tables(make_records(), tmp_path, metrics=["hitrate@5"])
    with pytest.raises(BundleConfigError):
        write_tables([], tmp_path)


def test_duplicate_model_seed_raises():
    recs = make_records()
    recs.append(dict(recs[0]))
    with pytest.raises(BundleConfigError, match="twice"):
        summarize(recs)


def test_no_temp_files_left(tmp_path):
    write_tables(make_records(), tmp_path, name="cmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.csv", "cmp.md", "cmp.tex"]


def test_run_log_appends_json_lines_with_non_serialisable_values(tmp_path):
    log = tmp_path / "sub" / "runs.jsonl"
    first = {"model": "Text_LoRA", "seed": 1, "lr": 1e-4, "data_path": Path("/data/x"),
             "nested": {"dir": Path("a/b"), 3: [1, Path("c")]}, "score": float("nan"), "obj": object}
    append_run_log(log, first)
    append_run_log(log, {"model": "Pop", "seed": 2})
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    parsed = [json.loads(line) for line in lines]  # strict: every line valid JSON on its own
    assert parsed[0]["data_path"] == str(Path("/data/x"))
    assert parsed[0]["nested"] == {"dir": str(Path("a/b")), "3": [1, "c"]}
    assert parsed[0]["lr"] == 1e-4 and parsed[0]["seed"] == 1
    assert parsed[0]["score"] == "nan"
    assert parsed[1] == {"model": "Pop", "seed": 2}
    assert read_run_log(log) == parsed
    assert not [p for p in log.parent.iterdir() if p.name.endswith(".tmp")]


def test_run_log_crash_leaves_file_intact(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    append_run_log(log, {"seed": 0})
    before = log.read_text()

    import recbole_bundle.io as rio

    real_replace = rio.os.replace

    def boom(*a, **k):
        raise OSError("disk died")

    monkeypatch.setattr(rio.os, "replace", boom)
    with pytest.raises(OSError):
        append_run_log(log, {"seed": 1})
    monkeypatch.setattr(rio.os, "replace", real_replace)
    assert log.read_text() == before
    append_run_log(log, {"seed": 2})
    assert [r["seed"] for r in read_run_log(log)] == [0, 2]


def _run(model, seed, hr, k=10):
    return {"model": model, "seed": seed, "metrics": {HR: hr}, "protocol": {"dataset": "d", "n_candidates": k}}


def test_tables_rebuilt_from_the_run_log_hold_every_comparison_into_one_out_dir(tmp_path):
    """Two comparisons into one out_dir used to leave a table holding only the last writer's models."""
    log = tmp_path / "d_runs.jsonl"
    for rec in (_run("Pop", 1, 0.1), _run("Pop", 2, 0.2)):  # first comparison
        paths = log_run_and_write_tables(log, rec, tmp_path, "cmp")
    for rec in (_run("BPR", 1, 0.3), _run("Pop", 2, 0.4)):  # second one, reruns Pop seed 2
        paths = log_run_and_write_tables(log, rec, tmp_path, "cmp")
    rows = {r["model"]: r for r in csv.DictReader(paths["csv"].open())}
    assert set(rows) == {"Pop", "BPR"}
    assert float(rows["Pop"][f"{HR}_mean"]) == pytest.approx((0.1 + 0.4) / 2)  # the latest Pop seed-2 run counts
    assert rows["Pop"]["n_seeds"] == "2" and float(rows["BPR"][f"{HR}_mean"]) == 0.3
    log_run_and_write_tables(log, _run("Random", 1, 0.05), tmp_path, "other")  # another table in the same log
    assert "Random" not in paths["md"].read_text()
    assert len(read_run_log(log)) == 5


def test_runs_of_another_protocol_are_left_out_with_a_warning(tmp_path, caplog):
    import logging

    log = tmp_path / "d_runs.jsonl"
    log_run_and_write_tables(log, _run("Pop", 1, 0.1, k=20), tmp_path, "cmp")
    with caplog.at_level(logging.WARNING):
        paths = log_run_and_write_tables(log, _run("BPR", 1, 0.3, k=10), tmp_path, "cmp")
    assert "Pop" not in paths["md"].read_text() and "BPR" in paths["md"].read_text()
    assert "leaves out earlier runs made with other settings (n_candidates = 20); this run used n_candidates = 10" in caplog.text


def test_a_damaged_log_line_is_skipped_when_tables_are_rebuilt(tmp_path, caplog):
    log = tmp_path / "d_runs.jsonl"
    log_run_and_write_tables(log, _run("Pop", 1, 0.1), tmp_path, "cmp")
    log.write_text(log.read_text() + "{not json\n")
    paths = log_run_and_write_tables(log, _run("BPR", 1, 0.3), tmp_path, "cmp")
    assert {"Pop", "BPR"} <= set(md_rows(paths["md"].read_text()))
    assert "not a JSON run record" in caplog.text
    with pytest.raises(BundleConfigError, match=r"d_runs\.jsonl:2: not valid JSON.*fix or delete that line"):
        read_run_log(log)


def _writer(args):
    log, out, model = args
    for seed in range(4):
        log_run_and_write_tables(log, _run(model, seed, 0.1 * seed), out, "cmp")


def test_concurrent_comparisons_into_one_out_dir_lose_no_run(tmp_path):
    import multiprocessing as mp

    log = tmp_path / "d_runs.jsonl"
    with mp.get_context("fork").Pool(3) as pool:
        pool.map(_writer, [(log, tmp_path, m) for m in ("A", "B", "C")])
    assert len(read_run_log(log)) == 12
    rows = {r["model"]: r for r in csv.DictReader((tmp_path / "cmp.csv").open())}
    assert set(rows) == {"A", "B", "C"} and all(r["n_seeds"] == "4" for r in rows.values())
