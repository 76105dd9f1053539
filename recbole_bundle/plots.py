"""PNG figures: training curves (valid metric per epoch, one line per stage) and metric-vs-K studies."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from recbole_bundle.io import atomic_open  # noqa: E402


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curve(curve: Sequence[Mapping], path: Path, title: str = "", metric: str = "HitRate@1") -> Path:
    """Valid ``metric`` after each epoch; stages follow one another on the x axis, one colour each."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = 0
    for stage in dict.fromkeys(c["stage"] for c in curve):
        points = [c["score"] for c in curve if c["stage"] == stage]
        xs = list(range(x + 1, x + 1 + len(points)))
        ax.plot(xs, points, marker="o", label=stage)
        x += len(points)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (stages in order)")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_metric_vs_k(rows: Mapping[str, Mapping[int, float]], path: Path, metric: str = "HitRate@1",
                     title: str = "", chance: bool = True) -> Path:
    """``rows[model][K] = value``: one line per model over K (log-scaled x), with the 1/K chance line."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ks = sorted({k for r in rows.values() for k in r})
    for model, values in rows.items():
        pts = sorted(values.items())
        ax.plot([k for k, _ in pts], [v for _, v in pts], marker="o", label=model)
    if chance:
        ax.plot(ks, [1 / k for k in ks], linestyle="--", color="grey", label="random (1/K)")
    ax.set_xscale("log")
    ax.minorticks_off()  # log-scale minor labels (3x10^0 ...) would overprint the K ticks
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("K (candidates per question)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)
