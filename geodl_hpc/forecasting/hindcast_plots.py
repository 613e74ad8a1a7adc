"""Figures of a hindcast: test quantiles over windows, information gain over time, Molchan and ROC diagrams,
and a forecast map with the observed events. Everything is read from the results table and forecast Zarrs.

The many-window figures (quantiles and gains of every model over time, all models' maps side by side) are drawn
here; the Molchan/ROC diagram and each model's paired T-test gain with its interval come from
``geodl_hpc.evaluation.csep.plots``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geodl_hpc.evaluation.csep import kernels, plots
from geodl_hpc.evaluation.plots import _figure, save_figure_atomic
from geodl_hpc.forecasting.binning import event_times_ms
from geodl_hpc.forecasting.hindcast_config import CONSISTENCY_TESTS
from geodl_hpc.forecasting.hindcast_scoring import ALPHA, N_ALPHA
from geodl_hpc.forecasting.hindcast_stores import read_forecast_rates

if TYPE_CHECKING:
    import pandas as pd

    from geodl_hpc.evaluation.csep.kernels import TestResult
    from geodl_hpc.forecasting.hindcast_config import HindcastConfig
    from geodl_hpc.forecasting.hindcast_inputs import Inputs


def _quantile_for_plot(rows: pd.DataFrame) -> np.ndarray:
    """N-test: the smaller of its two quantiles (it fails when either is small); others: the quantile."""
    q = rows["quantile"].to_numpy(dtype=np.float64)
    q2 = rows["quantile_2"].to_numpy(dtype=np.float64)
    return np.where(np.isfinite(q2), np.fmin(q, q2), q)


MANY_WINDOWS = 60  # above this, quantiles per window become a smear: plot a rolling share of passes instead


def plot_tests(table: pd.DataFrame, path: Path) -> Path:
    """One panel per test: each model's quantile per window with the rejection level or, for many windows,
    the share of windows passing over a rolling span (95 % N, 97.5 % others for a forecast consistent with the data)."""
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


def write_plots(
    run: Path,
    config: HindcastConfig,
    inputs: Inputs,
    table: pd.DataFrame,
    whole: dict[str, dict[str, TestResult]] | None = None,
) -> dict[str, str]:
    """Every figure into ``run/plots``; Molchan/ROC and the map need the forecast Zarrs (write_forecasts)."""
    folder = Path(run) / "plots"
    folder.mkdir(exist_ok=True)
    out: dict[str, Path] = {"tests": plot_tests(table, folder / "tests.png")}
    if len(config.models) > 1:
        out["information_gain"] = plot_information_gain(table, config.reference_model, folder / "information_gain.png")
    if config.write_forecasts:
        rates = {m.key: read_forecast_rates(run, m.key) for m in config.models}
        out.update(_forecast_figures(folder, rates, config.reference_model, inputs, whole))
    return {k: str(v) for k, v in out.items()}


def _forecast_figures(
    folder: Path,
    rates: dict[str, np.ndarray],
    reference: str,
    inputs: Inputs,
    whole: dict[str, dict[str, TestResult]] | None,
) -> dict[str, Path]:
    """The figures drawn from every model's test-window rates (W_test, C, M): Molchan/ROC of the pooled windows,
    each model's paired T-test gain over the reference, the whole-period tests and the busiest window's maps."""
    out: dict[str, Path] = {}
    test_counts = inputs.counts[inputs.first_test :]
    if test_counts.sum() > 0:
        pooled = {k: v.sum(axis=0) for k, v in rates.items()}
        title = f"{len(test_counts)} test windows pooled"
        out["molchan_roc"] = plots.plot_molchan_roc(pooled, test_counts.sum(axis=0), folder / "molchan_roc.png", title)
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
    out["forecast_map"] = plot_busiest_window(rates, inputs, folder / "forecast_map.png")
    return out


def plot_busiest_window(rates: dict[str, np.ndarray], inputs: Inputs, path: Path) -> Path:
    """Every model's forecast map of the test window with the most events, with those events (>= Mc)."""
    test_counts = inputs.counts[inputs.first_test :]
    busiest = int(np.argmax(test_counts.sum(axis=(1, 2))))
    w = inputs.first_test + busiest
    start, end = inputs.edges[w], inputs.edges[w + 1]
    t = event_times_ms(inputs.events)
    in_window = (t >= start) & (t < end)
    events = inputs.events[in_window & (inputs.events["magnitude"].to_numpy() >= inputs.grid.mc - 1e-9)]
    title = f"Forecasts of window {start} .. {end} ({len(events)} events >= M{inputs.grid.mc}, circles)"
    maps = {k: inputs.grid.to_forecast(v[busiest], start, end, k) for k, v in rates.items()}
    located = tuple(events[c].to_numpy() for c in ("longitude", "latitude", "magnitude"))
    return plots.plot_forecast_maps(maps, path, located, title)
