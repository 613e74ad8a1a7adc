"""Hindcast summaries: each model's tests over the whole test period (windows pooled), Molchan area skill
scores, and the per-model figures of ``summary.json`` (windows, events, log-likelihood, gain, pass rates).

The whole-period tests read the forecast Zarrs (``write_forecasts``); the per-model figures read the results
table only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.evaluation.csep import kernels
from geodl_hpc.forecasting.hindcast_config import PAIRED_TESTS
from geodl_hpc.forecasting.hindcast_scoring import ALPHA, N_ALPHA, T_ALPHA, item_seeds
from geodl_hpc.forecasting.hindcast_stores import read_forecast_rates

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from geodl_hpc.evaluation.csep.kernels import TestResult
    from geodl_hpc.forecasting.hindcast_config import HindcastConfig
    from geodl_hpc.forecasting.hindcast_inputs import Inputs


def add_whole_period(
    models: dict[str, Any], run: Path, config: HindcastConfig, inputs: Inputs
) -> dict[str, dict[str, TestResult]]:
    """Add each model's whole-period tests and Molchan area skill scores to ``models`` (the summary's entries
    per model); returns the test results (for the whole-period figure)."""
    whole = whole_period_tests(run, config, inputs)
    for model, results in whole.items():
        models[model]["whole_period"] = {test: whole_period_entry(test, r, results) for test, r in results.items()}
    for model, scores in molchan_scores(run, config, inputs).items():
        models[model]["molchan_area_skill_score"] = scores
    return whole


def whole_period_tests(run: Path, config: HindcastConfig, inputs: Inputs) -> dict[str, dict[str, TestResult]]:
    """Each model's tests over the whole test period (the test windows pooled as independent space-time bins:
    cumulative kernels, last window; W and Brier on the pooled bins), from the forecast Zarrs;
    ``{model: {test: TestResult}}`` (no T/W entry for the reference model)."""
    counts = inputs.counts[inputs.first_test :]
    reference = config.reference_model
    ref_rates = read_forecast_rates(run, reference)
    out: dict[str, dict[str, TestResult]] = {}
    for index, model in enumerate(config.models):
        rates = read_forecast_rates(run, model.key)
        results: dict[str, TestResult] = {}
        for k, test in enumerate(config.tests):
            seed = item_seeds(config.seed, index, len(inputs.edges), len(config.tests))[k]
            if test in PAIRED_TESTS and model.key == reference:
                continue
            results[test] = _whole_period_test(test, rates, ref_rates, counts, config.n_sim, seed)
        out[model.key] = results
    return out


def _whole_period_test(
    test: str, rates: np.ndarray, ref_rates: np.ndarray, counts: np.ndarray, n_sim: int, seed: int
) -> TestResult:
    """One test of one model's (W, C, M) rates over the whole test period."""
    if test == "N":
        return kernels.cumulative_n_test(rates, counts).windows()[-1]
    if test == "T":
        return kernels.cumulative_t_test(rates, ref_rates, counts, alpha=T_ALPHA).windows()[-1]
    if test == "W":
        return kernels.w_test(*(_pool(x) for x in (rates, ref_rates, counts)))
    if test == "Brier":
        return kernels.brier_score(_pool(rates), _pool(counts), n_sim=n_sim, seed=seed)
    likelihood = kernels.likelihood_test(test, rates, counts, n_sim=n_sim, seed=seed)
    return kernels.cumulative(likelihood).windows()[-1]


def _pool(x: np.ndarray) -> np.ndarray:
    """(W, C, M) -> (W * C, M): every window's cells as bins of one space-time forecast."""
    return x.reshape(-1, x.shape[-1])


def molchan_scores(run: Path, config: HindcastConfig, inputs: Inputs) -> dict[str, dict[str, float | None]]:
    """Area skill score of each model's Molchan diagram: over the whole period (rates and events summed over
    the test windows, as ``plots/molchan_roc.png``) and the mean over windows with events."""
    counts = inputs.counts[inputs.first_test :]
    active = counts.sum(axis=(1, 2)) > 0
    out: dict[str, dict[str, float | None]] = {}
    for model in config.models:
        rates = read_forecast_rates(run, model.key)
        pooled = kernels.area_skill_score(*kernels.molchan_curve(rates.sum(axis=0), counts.sum(axis=0)))
        per_window = np.asarray(kernels.area_skill_score(*kernels.molchan_curve(rates, counts)), dtype=np.float64)
        mean = float(np.mean(per_window[active])) if active.any() else float("nan")
        out[model.key] = {"whole_period": _round(pooled), "mean_per_window": _round(mean)}
    return out


def _passes(test: str, result: TestResult) -> bool:
    """The pass rule of the per-window rows applied to a whole-period result."""
    q = np.atleast_1d(np.asarray(result.quantile, dtype=np.float64))
    if test == "N":
        return bool(np.min(q[:2]) >= N_ALPHA)
    if test == "T":
        return bool(result.extra["ig_lower"] > 0)
    if test == "W":
        return False  # decided with the T-test's sign in whole_period_entry
    return bool(q[0] >= ALPHA)


def whole_period_entry(test: str, result: TestResult, results: dict[str, TestResult]) -> dict[str, Any]:
    """One whole-period result as ``summary.json`` holds it: the kernel's fields and whether it passes."""
    passed = _passes(test, result)
    if test == "W":
        gain = results["T"].observed_statistic if "T" in results else np.nan
        passed = bool(float(np.asarray(result.quantile)) < T_ALPHA and gain > 0)
    return {**result.to_dict(), "passed": passed}


def summarise(table: pd.DataFrame, reference: str) -> dict[str, Any]:
    """Per model: windows, events, expected events, total log-likelihood, information gain, pass rates."""
    out: dict[str, Any] = {}
    for model, rows in table.groupby("model", sort=False):
        per_window = rows.drop_duplicates("window")
        n = int(per_window["n_events"].sum())
        ll = float(per_window["log_likelihood"].sum())
        passed = {str(t): round(float(g["passed"].mean()), 4) for t, g in rows.groupby("test", sort=False)}
        out[str(model)] = {
            "windows": len(per_window),
            "events": n,
            "expected_events": round(float(per_window["n_fore"].sum()), 3),
            "log_likelihood": round(ll, 3) if np.isfinite(ll) else None,
            "information_gain_vs_" + reference: _round(per_window["cumulative_information_gain"].iloc[-1]),
            "pass_rate": passed,
        }
    return out


def _round(value: Any) -> float | None:
    x = float(value)
    return round(x, 4) if np.isfinite(x) else None
