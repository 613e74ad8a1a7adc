"""CSEP figures as seismologists expect them (after pyCSEP's): test results, Molchan + ROC, information gain
over time, forecast maps. matplotlib with the Agg backend; each function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.evaluation.csep import kernels
from geodl_hpc.evaluation.csep.forecast import GriddedForecast, region_grid
from geodl_hpc.evaluation.csep.kernels import TestResult
from geodl_hpc.evaluation.plots import _figure, save_figure_atomic

_PASS, _FAIL = "tab:green", "tab:red"


def _poisson_ppf(q: float, mu: float) -> float:
    """Smallest k with P(X <= k) >= q for X ~ Poisson(mu) (scipy.stats.poisson.ppf without importing scipy.stats)."""
    from scipy.special import pdtr

    k = np.arange(0.0, np.ceil(mu + 12.0 * np.sqrt(mu) + 20.0))
    return float(k[np.argmax(pdtr(k, mu) >= q)])


def _interval(result: TestResult) -> tuple[float, float, bool]:
    """(low, high) of the 95 % range the observed statistic is compared with, and whether it passes."""
    if result.name.endswith(kernels.N_TEST):
        n_fore = float(result.extra["n_fore"])
        d1, d2 = (float(q) for q in np.asarray(result.quantile))
        return _poisson_ppf(0.025, n_fore), _poisson_ppf(0.975, n_fore), min(d1, d2) >= 0.025
    if result.name.endswith(kernels.T_TEST):
        low, high = float(result.extra["ig_lower"]), float(result.extra["ig_upper"])
        return low, high, not (low > 0 or high < 0)
    if result.test_distribution is not None:
        sims = np.asarray(result.test_distribution, dtype=np.float64)
        sims = sims[np.isfinite(sims)]
        low, high = (float(np.percentile(sims, p)) for p in (2.5, 97.5)) if sims.size else (np.nan, np.nan)
        return low, high, float(np.asarray(result.quantile)) >= 0.025  # one-sided, lower tail, as pyCSEP
    return np.nan, np.nan, float(np.asarray(result.quantile)) >= 0.05  # W-test p-value


def plot_test_results(
    results: Sequence[TestResult], path: Path, title: str = "", labels: Sequence[str] | None = None
) -> Path:
    """pyCSEP-style consistency plot: one panel per test, one row per result (or window) with the 95 % range
    of the simulated (or Poisson) statistic as a bar and the observed statistic as a dot; green passes, red fails
    (one-sided 2.5 % for L, CL, S, M and Brier, two-sided for N, p < 0.05 for W). For the T-test the bar is the
    information-gain interval and red means it excludes 0 (the forecasts differ significantly).
    """
    rows: dict[str, list[tuple[str, TestResult]]] = {}
    for k, result in enumerate(results):
        base = labels[k] if labels is not None else None
        windows = result.windows()
        for i, window in enumerate(windows):
            label = base or (f"window {i}" if len(windows) > 1 else result.name)
            rows.setdefault(result.name, []).append((label, window))
    fig, axes = _figure(
        nrows=len(rows), ncols=1, figsize=(6.5, 1.0 + sum(0.35 * len(v) + 0.6 for v in rows.values())), squeeze=False
    )
    for ax, (name, entries) in zip(axes[:, 0], rows.items(), strict=True):
        for y, (_label, result) in enumerate(entries):
            low, high, ok = _interval(result)
            color = _PASS if ok else _FAIL
            if np.isfinite(low) and np.isfinite(high):
                ax.plot([low, high], [y, y], color="0.3", linewidth=1.5, solid_capstyle="butt")
                ax.plot([low, high], [y, y], "|", color="0.3", markersize=8)
            obs = float(np.asarray(result.observed_statistic))
            if np.isfinite(obs):
                ax.plot([obs], [y], "o", color=color, markersize=6)
            else:
                ax.annotate("-inf", (low if np.isfinite(low) else 0.0, y), color=_FAIL, fontsize=8)
        ax.set_yticks(range(len(entries)), [label for label, _ in entries])
        ax.set_ylim(-0.7, len(entries) - 0.3)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10, loc="left")
        if name.endswith(kernels.T_TEST):
            ax.axvline(0.0, color="0.6", linestyle="--", linewidth=1)
            ax.set_xlabel("information gain per earthquake")
        elif name.endswith(kernels.N_TEST):
            ax.set_xlabel("number of earthquakes")
        elif name.endswith(kernels.W_TEST):
            ax.set_xlabel("z statistic")
        elif name.endswith(kernels.BRIER_TEST):
            ax.set_xlabel("Brier score")
        else:
            ax.set_xlabel("log-likelihood")
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure_atomic(fig, Path(path))


def plot_molchan_roc(forecasts: Mapping[str, np.ndarray], counts: np.ndarray, path: Path, title: str = "") -> Path:
    """Molchan diagram (miss rate vs share of cells alarmed, with the area skill score) and spatial ROC curve
    of one or more forecasts' rates (cells, mags) against the same observed counts; diagonals are random.
    """
    fig, (ax_m, ax_r) = _figure(nrows=1, ncols=2, figsize=(10, 4.6))
    for name, rates in forecasts.items():
        tau, nu = kernels.molchan_curve(rates, counts)
        ass = kernels.area_skill_score(tau, nu)
        ax_m.step(tau, nu, where="post", label=f"{name} (ASS {float(ass):.2f})")
        f, h = kernels.roc_curve(rates, counts)
        ax_r.step(f, h, where="post", label=name)
    ax_m.plot([0, 1], [1, 0], color="0.6", linestyle="--", linewidth=1, label="random")
    ax_r.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="random")
    ax_m.set(xlabel="fraction of area alarmed τ", ylabel="miss rate ν", xlim=(0, 1), ylim=(0, 1), title="Molchan")
    ax_r.set(xlabel="false alarm rate F", ylabel="hit rate H", xlim=(0, 1), ylim=(0, 1), title="ROC")
    for ax in (ax_m, ax_r):
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure_atomic(fig, Path(path))


def plot_information_gain(
    per_window: TestResult,
    path: Path,
    cumulative: TestResult | None = None,
    times: Sequence[Any] | None = None,
    title: str = "",
) -> Path:
    """Information gain per earthquake over time: each window's T-test gain with its interval (bars) and the
    cumulative gain with its interval (line and band); above zero the first forecast is better.
    """
    gain = np.atleast_1d(np.asarray(per_window.observed_statistic, dtype=np.float64))
    low = np.atleast_1d(np.asarray(per_window.extra["ig_lower"], dtype=np.float64))
    high = np.atleast_1d(np.asarray(per_window.extra["ig_upper"], dtype=np.float64))
    x = np.arange(gain.size) if times is None else np.asarray(times)
    fig, ax = _figure(figsize=(8, 4.2))
    ax.axhline(0.0, color="0.6", linestyle="--", linewidth=1)
    finite = np.isfinite(gain)
    ax.errorbar(
        x[finite],
        gain[finite],
        yerr=[(gain - low)[finite], (high - gain)[finite]],
        fmt="o",
        color="tab:blue",
        markersize=3,
        elinewidth=0.8,
        alpha=0.7,
        label="per window",
    )
    if cumulative is not None:
        cum = np.asarray(cumulative.observed_statistic, dtype=np.float64)
        ax.plot(x, cum, color="tab:orange", linewidth=1.8, label="cumulative")
        ax.fill_between(
            x,
            np.asarray(cumulative.extra["ig_lower"], dtype=np.float64),
            np.asarray(cumulative.extra["ig_upper"], dtype=np.float64),
            color="tab:orange",
            alpha=0.25,
            linewidth=0,
        )
    ax.set(xlabel="window" if times is None else "time", ylabel="information gain per earthquake")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure_atomic(fig, Path(path))


def plot_forecast_map(
    fc: GriddedForecast,
    path: Path,
    events: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str = "",
) -> Path:
    """Map of log10 expected events per cell (magnitudes summed) with observed events sized by magnitude."""
    return plot_forecast_maps({title or fc.name: fc}, path, events)


def plot_forecast_maps(
    forecasts: Mapping[str, GriddedForecast],
    path: Path,
    events: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str = "",
) -> Path:
    """Maps of several forecasts of one region side by side on one colour scale (e.g. every model of a hindcast
    in one window), each titled by its key: log10 expected events per cell (magnitudes summed; cells outside the
    region or with no expected event blank), with the observed ``events`` (lon, lat, magnitude) sized by
    magnitude; ``title`` over them all."""
    images = {name: _log_rate_image(fc) for name, fc in forecasts.items()}
    finite = [image[np.isfinite(image)] for image, _ in images.values()]
    vmin = min((float(v.min()) for v in finite if v.size), default=None)
    vmax = max((float(v.max()) for v in finite if v.size), default=None)
    first = next(iter(images.values()))[1]
    single = len(images) == 1
    panel = 7.5 if single else 4.2
    ratio = (first[3] - first[2]) / max(first[1] - first[0], 1e-9)
    figsize = (panel * len(images), max(3.0, min(9.0, (panel - 0.5) * ratio)))
    fig, axes = _figure(ncols=len(images), figsize=figsize, squeeze=False)
    shown = None
    for ax, (name, (image, extent)) in zip(axes[0], images.items(), strict=True):
        shown = ax.imshow(image, origin="lower", extent=extent, cmap="viridis", interpolation="nearest",
                          aspect="equal", vmin=vmin, vmax=vmax)  # fmt: skip
        if events is not None and len(events[0]):
            lon, lat, mag = (np.asarray(a, dtype=np.float64) for a in events)
            size = 4.0 * 2.0 ** (mag - np.nanmin(mag))
            ax.scatter(lon, lat, s=size, facecolors="none", edgecolors="red", linewidths=0.7, label="observed events")
        ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="longitude")
        ax.set_title(name, fontsize="large" if single else 9)
        if not single:
            ax.locator_params(axis="x", nbins=4)  # narrow panels: keep the longitudes apart
    axes[0, 0].set_ylabel("latitude")
    if events is not None and len(events[0]):
        axes[0, 0].legend(fontsize=8, loc="lower left")
    # one colour bar for every panel (beside a single map it keeps tight_layout working)
    fig.colorbar(shown, ax=axes[0, 0] if single else axes[0].tolist(), label="log10 expected events per cell",
                 shrink=0.8)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10)
    if single:
        fig.tight_layout()
    return save_figure_atomic(fig, Path(path))


def _log_rate_image(fc: GriddedForecast) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """log10 of each cell's expected events on the region's lon/lat raster (NaN outside it or where zero) and
    the raster's extent (lon_min, lon_max, lat_min, lat_max)."""
    grid = region_grid(fc)
    spatial = fc.rates.sum(axis=1)
    image = np.full(grid.index.shape, np.nan)
    valid = grid.index >= 0
    with np.errstate(divide="ignore"):
        image[valid] = np.log10(spatial[grid.index[valid]])
    image[~np.isfinite(image)] = np.nan
    extent = (float(grid.xs[0]), float(grid.xs[-1] + fc.dh), float(grid.ys[0]), float(grid.ys[-1] + fc.dh))
    return image, extent
