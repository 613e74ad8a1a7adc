"""Evaluation figures: success-rate curves of several models, and a probability map with the deposits on it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from geodl_hpc.evaluation.blockcv import CVResult, RasterData


def _figure(**kwargs: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # never open a window on a cluster node
    import matplotlib.pyplot as plt

    return plt.subplots(**kwargs)


def save_figure_atomic(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Save a figure so that a reader never sees a half-written PNG; closes the figure."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def plot_success_rate(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> Path:
    """Success-rate curves (share of deposits vs share of area, ranked by score) with the random-ranking diagonal."""
    fig, ax = _figure(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="random")
    for name, (area, captured) in curves.items():
        ax.plot(area, captured, linewidth=1.6, label=name)
    for frac in (0.02, 0.05, 0.10):
        ax.axvline(frac, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("share of area (ranked by prospectivity)")
    ax.set_ylabel("share of deposits captured")
    ax.set_title(title or "Success-rate curves (out-of-fold)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure_atomic(fig, path)


def plot_probability_map(
    probability: np.ndarray,
    deposits: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    path: Path,
    title: str = "",
) -> Path:
    """Probability map on km axes (pixel-centre coordinates ``x``, ``y`` in metres) with deposit pixels overlaid."""
    fig, ax = _figure(figsize=(6, 7))
    xk, yk = np.asarray(x) / 1000.0, np.asarray(y) / 1000.0
    dx = abs(float(xk[1] - xk[0])) if len(xk) > 1 else 1.0
    dy = abs(float(yk[1] - yk[0])) if len(yk) > 1 else 1.0
    extent = (xk.min() - dx / 2, xk.max() + dx / 2, yk.min() - dy / 2, yk.max() + dy / 2)
    origin = "upper" if len(yk) < 2 or yk[0] > yk[-1] else "lower"
    image = ax.imshow(
        np.ma.masked_invalid(probability), extent=extent, origin=origin, cmap="viridis", interpolation="nearest"
    )
    rows, cols = np.nonzero(np.asarray(deposits) > 0)
    ax.scatter(
        xk[cols],
        yk[rows],
        s=6 + 6 * np.asarray(deposits)[rows, cols],
        facecolors="none",
        edgecolors="red",
        linewidths=0.7,
        label=f"deposits ({int(np.asarray(deposits).sum())})",
    )
    ax.set_xlabel("easting (km)")
    ax.set_ylabel("northing (km)")
    ax.set_title(title or "Out-of-fold probability")
    ax.legend(loc="lower left", fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.7, label="probability")
    return save_figure_atomic(fig, path)


def write_cv_figures(output: Path, results: dict[str, CVResult], data: RasterData) -> dict[str, str]:
    """The success-rate PNG and one probability map PNG per model; returns ``{caption: file name}``."""
    curves = {name: (r.area, r.captured) for name, r in results.items()}
    figures = {"Success-rate curves": plot_success_rate(curves, output / "success_rate.png").name}
    for name, r in results.items():
        path = plot_probability_map(
            r.probability,
            data.deposits,
            data.x,
            data.y,
            output / f"probability_{name}.png",
            title=f"{name}: out-of-fold probability with deposits",
        )
        figures[f"{name} probability map"] = path.name
    return figures


def plot_learning_curves(folders: dict[str, Path], path: Path) -> Path | None:
    """Epoch loss of every fold's training run (from its ``metrics.jsonl``) in one PNG."""
    fig, ax = _figure(figsize=(6, 4))
    drawn = False
    for name, folder in folders.items():
        log = folder / "metrics.jsonl"
        if not log.exists():
            continue
        recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        steps = [r for r in recs if r.get("kind") == "step"]
        epochs = [r for r in recs if r.get("kind") == "epoch"]
        if steps:
            (line,) = ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.6, alpha=0.5)
            ax.plot([r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", color=line.get_color(), label=name)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (BCE)")
    ax.set_title("Learning curves (thin: steps, dots: epochs)")
    if drawn:
        ax.legend(fontsize=8)
    return save_figure_atomic(fig, path)
