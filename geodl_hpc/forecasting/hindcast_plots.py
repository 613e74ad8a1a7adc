"""Figures of a hindcast: test quantiles over windows, information gain over time, Molchan and ROC diagrams,
and a forecast map with the observed events. Everything is read from the results table and forecast Zarrs.

The many-window figures (quantiles and gains of every model over time, all models' maps side by side) are drawn
here; the Molchan/ROC diagram and each model's paired T-test gain with its interval come from
``geodl_hpc.evaluation.csep.plots``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.evaluation.plots import _figure, save_figure_atomic
from geodl_hpc.forecasting.hindcast_config import CONSISTENCY_TESTS

if TYPE_CHECKING:
    import pandas as pd

    from geodl_hpc.forecasting.hindcast import Inputs
    from geodl_hpc.forecasting.hindcast_config import HindcastConfig


def _quantile_for_plot(rows: pd.DataFrame) -> np.ndarray:
    """N-test: the smaller of its two quantiles (it fails when either is small); others: the quantile."""
    q = rows["quantile"].to_numpy(dtype=np.float64)
    q2 = rows["quantile_2"].to_numpy(dtype=np.float64)
    return np.where(np.isfinite(q2), np.fmin(q, q2), q)


MANY_WINDOWS = 60  # above this, quantiles per window become a smear: plot a rolling share of passes instead


def plot_tests(table: pd.DataFrame, path: Path) -> Path:
    """One panel per test: each model's quantile per window with the rejection level or, for many windows,
    the share of windows passing over a rolling span (95 % N, 97.5 % others for a forecast consistent with the data)."""
    from geodl_hpc.forecasting.hindcast import ALPHA, N_ALPHA

    tests = [t for t in dict.fromkeys(table["test"]) if t in CONSISTENCY_TESTS]  # T/W: information_gain_*.png
    n_windows = table["window"].nunique()
    span = max(5, n_windows // 40)
    fig, axes = _figure(nrows=len(tests), figsize=(8, 1.8 * len(tests) + 0.6), sharex=True, squeeze=False)
    for ax, test in zip(axes[:, 0], tests, strict=True):
        rows = table[table["test"] == test]
        for model, g in rows.groupby("model", sort=False):
            if n_windows <= MANY_WINDOWS:
                ax.plot(g["window_start"], _quantile_for_plot(g), marker="o", markersize=3, linewidth=0.8, label=model)
            else:
                share = g["passed"].astype(float).rolling(span, min_periods=1).mean()
                ax.plot(g["window_start"], share, linewidth=1.0, label=model)
        if n_windows <= MANY_WINDOWS:
            ax.axhline(N_ALPHA if test == "N" else ALPHA, color="crimson", linewidth=0.8, linestyle="--")
            ax.set_ylabel(f"{test}-test\n{'min(δ1, δ2)' if test == 'N' else 'quantile'}")
        else:
            expected = 1 - 2 * N_ALPHA if test == "N" else 1 - ALPHA  # share passing for a consistent forecast
            ax.axhline(expected, color="0.4", linewidth=0.8, linestyle="--")
            ax.set_ylabel(f"{test}-test\nshare passing")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="lower right", fontsize=8, ncol=3)
    if n_windows <= MANY_WINDOWS:
        axes[0, 0].set_title("CSEP tests per window (below the dashed line: rejected)")
    else:
        axes[0, 0].set_title(f"Share of windows passing each CSEP test, rolling over {span} windows (dashed: expected)")
    axes[-1, 0].set_xlabel("window start")
    fig.autofmt_xdate()
    return save_figure_atomic(fig, path)


def plot_information_gain(table: pd.DataFrame, reference: str, path: Path) -> Path:
    """Cumulative information gain per event of each model over the reference, with the per-window gains
    (for many windows, their rolling mean)."""
    fig, ax = _figure(figsize=(8, 4))
    per_window = table.drop_duplicates(["model", "window"])
    many = per_window["window"].nunique() > MANY_WINDOWS
    span = max(5, per_window["window"].nunique() // 40)
    for model, g in per_window.groupby("model", sort=False):
        if model == reference:
            continue
        (line,) = ax.plot(g["window_start"], g["cumulative_information_gain"], linewidth=2.2, zorder=3,
                          label=f"{model} cumulative")  # fmt: skip
        if many:
            rolling = g["information_gain"].rolling(span, min_periods=1).mean()
            ax.plot(g["window_start"], rolling, linewidth=0.7, alpha=0.6, color=line.get_color(),
                    label=f"{model} per window, rolling mean of {span}")  # fmt: skip
        else:
            ax.plot(g["window_start"], g["information_gain"], linewidth=0.6, alpha=0.6, color=line.get_color(),
                    marker=".", label=f"{model} per window")  # fmt: skip
    ax.axhline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("window start")
    ax.set_ylabel(f"information gain per event vs {reference} (nats)")
    ax.set_title("Information gain over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return save_figure_atomic(fig, path)


def plot_forecast_map(
    maps: dict[str, np.ndarray], inputs: Inputs, events: pd.DataFrame, title: str, path: Path
) -> Path:
    """log10 expected events per cell (magnitudes summed) of each model in one window, with its events."""
    grid = inputs.grid
    n = len(maps)
    fig, axes = _figure(ncols=n, figsize=(4.2 * n, 4), squeeze=False)
    values = [np.log10(np.maximum(m.sum(axis=1), 1e-12)).reshape(grid.n_lon, grid.n_lat).T for m in maps.values()]
    vmin = min(float(v.min()) for v in values)
    vmax = max(float(v.max()) for v in values)
    extent = (grid.lon_min, grid.lon_max, grid.lat_min, grid.lat_max)
    image = None
    for ax, model, v in zip(axes[0], maps, values, strict=True):
        image = ax.imshow(v, origin="lower", extent=extent, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.scatter(events["longitude"], events["latitude"], s=6 + 3 * (events["magnitude"] - grid.mc) ** 2,
                   facecolors="none", edgecolors="red", linewidths=0.7)  # fmt: skip
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("longitude")
        ax.locator_params(axis="x", nbins=4)
    axes[0, 0].set_ylabel("latitude")
    fig.colorbar(image, ax=axes[0].tolist(), label="log10 expected events", shrink=0.85)
    fig.suptitle(title, fontsize=10)
    return save_figure_atomic(fig, path)


def write_plots(
    run: Path,
    config: HindcastConfig,
    inputs: Inputs,
    table: pd.DataFrame,
    whole: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Every figure into ``run/plots``; Molchan/ROC and the map need the forecast Zarrs (write_forecasts)."""
    from geodl_hpc.forecasting.binning import event_times_ms
    from geodl_hpc.forecasting.hindcast import read_forecast_rates

    folder = Path(run) / "plots"
    folder.mkdir(exist_ok=True)
    out: dict[str, Any] = {"tests": plot_tests(table, folder / "tests.png")}
    if len(config.models) > 1:
        out["information_gain"] = plot_information_gain(table, config.reference_model, folder / "information_gain.png")
    if config.write_forecasts:
        from geodl_hpc.evaluation.csep import kernels, plots

        rates = {m.key: read_forecast_rates(run, m.key) for m in config.models}
        test_counts = inputs.counts[inputs.first_test :]
        if test_counts.sum() > 0:
            pooled = {k: v.sum(axis=0) for k, v in rates.items()}
            title = f"{len(test_counts)} test windows pooled"
            out["molchan_roc"] = plots.plot_molchan_roc(
                pooled, test_counts.sum(axis=0), folder / "molchan_roc.png", title
            )
        reference = config.reference_model
        times = list(inputs.edges[inputs.first_test : -1])
        for model in rates:
            if model == reference:
                continue
            per = kernels.t_test(rates[model], rates[reference], test_counts)
            cum = kernels.cumulative_t_test(rates[model], rates[reference], test_counts)
            name = f"information_gain_{model}"
            title = f"{model} over {reference}: paired T-test gain per earthquake (95 % interval)"
            out[name] = plots.plot_information_gain(per, folder / f"{name}.png", cum, times, title)
        if whole:
            consistency = [(m, r) for m, rs in whole.items() for t, r in rs.items() if t in CONSISTENCY_TESTS]
            results = [r for _, r in consistency]
            labels = [m for m, _ in consistency]
            title = f"Whole test period: {len(test_counts)} windows pooled"
            out["whole_period"] = plots.plot_test_results(results, folder / "whole_period.png", title, labels)
        busiest = int(np.argmax(test_counts.sum(axis=(1, 2))))
        w = inputs.first_test + busiest
        t = event_times_ms(inputs.events)
        in_window = (t >= inputs.edges[w]) & (t < inputs.edges[w + 1])
        events = inputs.events[in_window & (inputs.events["magnitude"].to_numpy() >= inputs.grid.mc - 1e-9)]
        title = (
            f"Forecasts of window {inputs.edges[w]} .. {inputs.edges[w + 1]} "
            f"({len(events)} events >= M{inputs.grid.mc}, circles)"
        )
        maps = {k: v[busiest] for k, v in rates.items()}
        out["forecast_map"] = plot_forecast_map(maps, inputs, events, title, folder / "forecast_map.png")
    return {k: str(v) for k, v in out.items()}
