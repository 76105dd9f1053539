"""Comparison tables over seeds (Markdown, CSV, LaTeX) and an append-only JSON-lines run log.

A *run record* is ``{"model": str, "seed": int, "metrics": {name: float, ...}}``; metric names
are RecBole-style lower case (``hitrate@1``, ``validratio``, ``hitrate@1(valid)``) and a run may
lack some of them.  Per model and metric the tables show ``mean ± std`` over the seeds that
report the metric, where std is the *sample* standard deviation (``ddof=1``; a cell of a single
seed shows the value alone, the CSV gives its std as 0.0).  The best mean per metric is bold; a final "Improvement" row gives the relative gain
(in %) of the best proposed model over the best baseline (every model not in ``proposed``), or,
when nothing is marked proposed, of the best model over the second best.  All metrics are
bigger-is-better unless named in ``smaller_is_better``; the gain is signed so that positive
always means "better".

Every file is written with :func:`recbole_bundle.io.atomic_write_text`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from recbole_bundle.errors import BundleConfigError
from recbole_bundle.io import PathLike, atomic_write_text
from recbole_bundle.metrics import METRIC_DISPLAY, display_metric_name

__all__ = [
    "METRIC_DISPLAY",
    "MISSING",
    "display_metric_name",
    "summarize",
    "best_models",
    "relative_gain",
    "format_markdown",
    "format_csv",
    "format_latex",
    "write_tables",
    "append_run_log",
    "log_run_and_write_tables",
    "read_run_log",
]

#: Cell text for a model that reports a metric in none of its seeds.
MISSING = "–"
_TEX_MISSING = "--"

# --------------------------------------------------------------------------- names


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


# --------------------------------------------------------------------------- summary


def _validate(records: Sequence[Mapping[str, Any]]) -> None:
    seen: set[tuple[str, Any]] = set()
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise BundleConfigError(f"run record #{i} is a {type(rec).__name__}, expected a dict "
                                    "{'model': str, 'seed': int, 'metrics': {...}}")
        model = rec.get("model")
        if not isinstance(model, str) or not model:
            raise BundleConfigError(f"run record #{i} has model={model!r}; give a non-empty string")
        metrics = rec.get("metrics", {})
        if not isinstance(metrics, Mapping):
            raise BundleConfigError(f"run record #{i} ({model}): 'metrics' is a "
                                    f"{type(metrics).__name__}, expected a dict of metric -> float")
        for key, value in metrics.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise BundleConfigError(f"run record #{i} ({model}): metric {key!r} = {value!r} is "
                                        "not a number; store floats (or leave the metric out)")
        seed = rec.get("seed")
        if seed is not None:
            if (model, seed) in seen:
                raise BundleConfigError(f"run record #{i}: model {model!r} seed {seed!r} appears twice; "
                                        "drop the duplicate run so it does not weigh twice in the mean")
            seen.add((model, seed))


def _metric_names(records: Sequence[Mapping[str, Any]], metrics: Optional[Sequence[str]]) -> list[str]:
    present: dict[str, None] = {}
    for rec in records:
        for key in rec.get("metrics", {}):
            present.setdefault(key, None)
    if metrics is None:
        return list(present)
    metrics = list(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in present]
    if unknown and records:
        raise BundleConfigError(f"metric(s) {unknown} appear in no run record; "
                                f"available: {sorted(present)}")
    return metrics


def _models(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(rec["model"] for rec in records))


def summarize(records: Sequence[Mapping[str, Any]], metrics: Optional[Sequence[str]] = None) -> list[dict]:
    """One row per model, in first-appearance order.

    Row keys: ``model``, ``n_seeds`` (number of runs) and, per metric, ``<metric>_mean``,
    ``<metric>_std`` (sample std, ``ddof=1``; 0.0 for a single value) and ``<metric>_n`` (how many
    runs report it).  A metric no run of the model reports has mean and std ``None``.
    ``metrics=None`` means every metric found, in first-appearance order.
    """
    records = list(records)
    _validate(records)
    names = _metric_names(records, metrics)
    rows: list[dict] = []
    for model in _models(records):
        runs = [r for r in records if r["model"] == model]
        row: dict[str, Any] = {"model": model, "n_seeds": len(runs)}
        for metric in names:
            values = [float(r.get("metrics", {})[metric]) for r in runs
                      if r.get("metrics", {}).get(metric) is not None]
            n = len(values)
            if n == 0:
                mean = std = None
            else:
                mean = math.fsum(values) / n
                std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
            row[f"{metric}_mean"] = mean
            row[f"{metric}_std"] = std
            row[f"{metric}_n"] = n
        rows.append(row)
    return rows


def _mean(row: Mapping[str, Any], metric: str) -> Optional[float]:
    value = row.get(f"{metric}_mean")
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def best_models(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                smaller_is_better: Iterable[str] = frozenset()) -> dict[str, set[str]]:
    """Per metric, the model(s) with the best finite mean (all of them on an exact tie)."""
    smaller = set(smaller_is_better)
    best: dict[str, set[str]] = {}
    for metric in metrics:
        scored = [(row["model"], _mean(row, metric)) for row in rows]
        scored = [(m, v) for m, v in scored if v is not None]
        if not scored:
            best[metric] = set()
            continue
        pick = min if metric in smaller else max
        target = pick(v for _, v in scored)
        best[metric] = {m for m, v in scored if v == target}
    return best


def _gain(new: float, ref: float, smaller: bool) -> Optional[float]:
    if ref == 0:
        return None
    diff = (ref - new) if smaller else (new - ref)
    return diff / abs(ref) * 100.0


def relative_gain(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                  proposed: Sequence[str] = (),
                  smaller_is_better: Iterable[str] = frozenset()) -> dict[str, Optional[float]]:
    """Per metric, the relative gain in % (positive = better), or ``None`` if undefined.

    With ``proposed``: best proposed model vs the best of all other models (the baselines).
    Without: best model vs second-best model.  ``None`` when a side has no value or the
    reference mean is 0.
    """
    smaller = set(smaller_is_better)
    known = {row["model"] for row in rows}
    missing = [p for p in proposed if p not in known]
    if missing:
        raise BundleConfigError(f"proposed model(s) {missing} have no run records; "
                                f"models present: {sorted(known)}")
    prop = set(proposed)
    gains: dict[str, Optional[float]] = {}
    for metric in metrics:
        is_small = metric in smaller

        def ranked(models: Iterable[Mapping[str, Any]]) -> list[float]:
            vals = [v for v in (_mean(r, metric) for r in models) if v is not None]
            return sorted(vals, reverse=not is_small)  # best first

        if prop:
            p = ranked(r for r in rows if r["model"] in prop)
            b = ranked(r for r in rows if r["model"] not in prop)
            gains[metric] = _gain(p[0], b[0], is_small) if p and b else None
        else:
            vals = ranked(rows)
            gains[metric] = _gain(vals[0], vals[1], is_small) if len(vals) >= 2 else None
    return gains


# --------------------------------------------------------------------------- formatting


def _cell(row: Mapping[str, Any], metric: str, decimals: int, pm: str, missing: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None:
        return missing
    n = row.get(f"{metric}_n", row["n_seeds"])
    # one seed has no spread: "0.4100", not "0.4100 ± 0.0000" (which would read as a measured zero std)
    text = f"{mean:.{decimals}f}" if n <= 1 else f"{mean:.{decimals}f}{pm}{std:.{decimals}f}"
    if n < row["n_seeds"]:
        text += f" (n={n})"
    return text


def _gain_text(gain: Optional[float], percent: str, missing: str) -> str:
    return missing if gain is None else f"{gain:+.2f}{percent}"


def _gain_note(proposed: Sequence[str]) -> str:
    if proposed:
        return (f"Improvement: relative gain of the best proposed model ({', '.join(proposed)}) "
                "over the best baseline, per metric.")
    return "Improvement: relative gain of the best model over the second-best model, per metric."


def format_markdown(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], proposed: Sequence[str] = (),
                    decimals: int = 4, smaller_is_better: Iterable[str] = frozenset()) -> str:
    """GitHub Markdown table of ``mean ± std`` cells, best in bold, and an Improvement row."""
    best = best_models(rows, metrics, smaller_is_better)
    gains = relative_gain(rows, metrics, proposed, smaller_is_better)
    header = ["Model", "Seeds"] + [_md_escape(display_metric_name(m)) for m in metrics]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---", "---:"] + ["---:"] * len(metrics)) + "|"]
    for row in rows:
        cells = [_md_escape(row["model"]), str(row["n_seeds"])]
        for m in metrics:
            text = _cell(row, m, decimals, " ± ", MISSING)
            cells.append(f"**{text}**" if row["model"] in best[m] else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join(["Improvement", ""] + [_gain_text(gains[m], "%", MISSING) for m in metrics]) + " |")
    return "\n".join(lines) + "\n\n" + _gain_note(proposed) + "\n"


def format_csv(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str:
    """CSV with columns ``model, n_seeds, <metric>_mean, <metric>_std, ...`` (full precision; empty = missing)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "n_seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")])
    for row in rows:
        out: list[Any] = [row["model"], row["n_seeds"]]
        for m in metrics:
            for s in ("mean", "std"):
                value = row.get(f"{m}_{s}")
                out.append("" if value is None else repr(float(value)))
        writer.writerow(out)
    return buf.getvalue()


def format_latex(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], proposed: Sequence[str] = (),
                 decimals: int = 4, smaller_is_better: Iterable[str] = frozenset()) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), best in ``\\textbf{}``."""
    best = best_models(rows, metrics, smaller_is_better)
    gains = relative_gain(rows, metrics, proposed, smaller_is_better)
    lines = [f"% {_gain_note(proposed)}",
             r"\begin{tabular}{l" + "r" * len(metrics) + "}",
             r"\toprule",
             " & ".join(["Model"] + [_tex_escape(display_metric_name(m)) for m in metrics]) + r" \\",
             r"\midrule"]
    for row in rows:
        cells = [_tex_escape(row["model"])]
        for m in metrics:
            text = _cell(row, m, decimals, r" $\pm$ ", _TEX_MISSING)
            cells.append(rf"\textbf{{{text}}}" if row["model"] in best[m] else text)
        lines.append(" & ".join(cells) + r" \\")
    lines.append(r"\midrule")
    lines.append(" & ".join(["Improvement"] + [_gain_text(gains[m], r"\%", _TEX_MISSING) for m in metrics]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_tables(records: Sequence[Mapping[str, Any]], out_dir: PathLike, name: str = "comparison",
                 metrics: Optional[Sequence[str]] = None, proposed: Sequence[str] = (), decimals: int = 4,
                 smaller_is_better: Iterable[str] = frozenset()) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.csv`` and ``<name>.tex`` under ``out_dir`` (atomically).

    Returns ``{"md": path, "csv": path, "tex": path}``.  Raises ``BundleConfigError`` for no
    records, malformed records, an unknown metric or a proposed model without records.
    """
    records = list(records)
    if not records:
        raise BundleConfigError("write_tables got no run records; pass at least one "
                                "{'model': ..., 'seed': ..., 'metrics': {...}}")
    if decimals < 0:
        raise BundleConfigError(f"decimals={decimals}; give a non-negative integer")
    names = _metric_names(records, metrics)
    rows = summarize(records, names)
    proposed = list(dict.fromkeys(proposed))
    smaller = frozenset(smaller_is_better)
    out = Path(out_dir)
    paths = {"md": out / f"{name}.md", "csv": out / f"{name}.csv", "tex": out / f"{name}.tex"}
    texts = {
        "md": format_markdown(rows, names, proposed, decimals, smaller),
        "csv": format_csv(rows, names),
        "tex": format_latex(rows, names, proposed, decimals, smaller),
    }
    for key, path in paths.items():
        atomic_write_text(path, texts[key])
    return paths


# --------------------------------------------------------------------------- run log


def _jsonable(value: Any) -> Any:
    """Recursively turn ``value`` into JSON-safe data; anything else (and NaN/inf) becomes ``str``."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``<path>.lock`` (POSIX), so concurrent appenders do not lose lines."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: best effort without a lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_run_log(path: PathLike, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path``.

    Non-serialisable values become ``str`` (NaN/inf too, to keep strict JSON).  The whole file
    is rewritten via :func:`atomic_write_text`, so a crash never leaves a partial line, and an
    advisory lock (``<path>.lock``) serialises concurrent appenders.
    """
    path = Path(path)
    with _locked(path):
        _append_unlocked(path, record)


def _append_unlocked(path: Path, record: Mapping[str, Any]) -> None:
    if not isinstance(record, Mapping):
        raise BundleConfigError(f"append_run_log needs a dict record, got {type(record).__name__}")
    line = json.dumps(_jsonable(record), ensure_ascii=False, allow_nan=False)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    atomic_write_text(path, existing + line + "\n")


def _compatible_protocols(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Keys both protocols set to different values (a key one run varies on purpose is in neither)."""
    return [k for k in a if k in b and a[k] != b[k]]


def log_run_and_write_tables(log_path: PathLike, record: Mapping[str, Any], out_dir: PathLike, name: str,
                             **table_options: Any) -> dict[str, Path]:
    """Append ``record`` to the run log and rebuild table ``name`` from the log, under the log's lock.

    The table holds every logged run of that table (``record["table"] == name``), the latest one per
    (model, seed), whose ``protocol`` (the settings that define the questions: dataset, K, negatives,
    split, ...) agrees with this run's: two comparisons written into one ``out_dir`` one after the other,
    or at the same time, end in one table holding both, and runs of another protocol are left out with a
    warning instead of being averaged in. ``table_options`` go to :func:`write_tables`.
    """
    import logging

    path = Path(log_path)
    with _locked(path):
        _append_unlocked(path, {**record, "table": name})
        rows = [r for r in read_run_log(path, strict=False) if r.get("table") == name]
        mine = record.get("protocol") or {}
        latest: dict[tuple, dict] = {}
        left_out: dict[str, set] = {}
        for r in rows:
            clash = _compatible_protocols(mine, r.get("protocol") or {})
            if clash:
                for k in clash:
                    left_out.setdefault(k, set()).add(json.dumps(r["protocol"][k]))
                continue
            latest.pop((r.get("model"), r.get("seed")), None)  # the latest run of a (model, seed) counts
            latest[(r.get("model"), r.get("seed"))] = {"model": r.get("model"), "seed": r.get("seed"),
                                                       "metrics": r.get("metrics", {})}
        if left_out:
            logging.getLogger(__name__).warning(
                "%s: table '%s' leaves out earlier runs made with other settings (%s); this run used %s. Write "
                "to another --out_dir to keep both tables", path, name,
                "; ".join(f"{k} = {', '.join(sorted(v))}" for k, v in left_out.items()),
                ", ".join(f"{k} = {json.dumps(mine[k])}" for k in left_out))
        return write_tables(list(latest.values()), out_dir, name=name, **table_options)


def read_run_log(path: PathLike, strict: bool = True) -> list[dict]:
    """Parse a file written by :func:`append_run_log` (blank lines skipped).

    ``strict=False`` skips a line that is not valid JSON with a warning instead of failing (tables are
    rebuilt from the log after every run: one damaged line must not lose the others).
    """
    import logging

    path = Path(path)
    out: list[dict] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise json.JSONDecodeError("not a JSON object", line, 0)
            out.append(rec)
        except json.JSONDecodeError as exc:
            if not strict:
                logging.getLogger(__name__).warning("%s:%d: not a JSON run record (%s); line skipped", path, lineno, exc.msg)
                continue
            raise BundleConfigError(f"{path}:{lineno}: not valid JSON ({exc.msg}); "
                                    "fix or delete that line") from exc
    return out
