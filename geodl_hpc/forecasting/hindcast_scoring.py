"""Hindcast scoring: the CSEP tests of a block of windows (one row per window and test), the seeds they draw
with, and the campaign finaliser that adds each model's information gain over the reference.

The vectorised kernels of :mod:`geodl_hpc.evaluation.csep.kernels` run once per test on (W, C, M); this module
only decides what a row holds and when it passes. pandas is imported where it is used."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.evaluation.csep import kernels
from geodl_hpc.forecasting.hindcast_config import PAIRED_TESTS
from geodl_hpc.forecasting.scores import poisson_log_likelihood

if TYPE_CHECKING:
    import pandas as pd

    from geodl_hpc.evaluation.csep.kernels import TestResult

# Pass/fail at the CSEP level (Zechar et al. 2010), as evaluation.csep.plots colours them: the N-test passes when
# both deltas are >= 0.025, the one-sided likelihood tests when the quantile is >= 0.025.
N_ALPHA = 0.025
# Paired tests: a model beats the reference in a window when the T-test's (1 - T_ALPHA) interval of the
# information gain lies above 0, and (W-test) when the signed-rank p-value is below T_ALPHA with a positive gain.
T_ALPHA = 0.05
ALPHA = 0.025


def log_likelihoods(rates: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Joint Poisson log-likelihood of each window (W,) (``scores.poisson_log_likelihood`` per window)."""
    return np.array([poisson_log_likelihood(r, c) for r, c in zip(rates, counts, strict=True)])


def evaluate_block(
    model: str,
    rates: np.ndarray,
    counts: np.ndarray,
    windows: np.ndarray,
    edges: np.ndarray,
    origins: np.ndarray,
    tests: Sequence[str],
    n_sim: int,
    seeds: Sequence[int],
    reference: tuple[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per window and test of a block: the vectorised CSEP kernels run once per test on (W, C, M).

    ``reference`` (label, rates of the same windows) adds the paired T and W rows against it; without it (the
    reference model itself) those tests are skipped. Columns beyond the consistency tests' observed statistic,
    quantile(s) and pass: ``versus`` (the reference of a paired row), ``ci_lower``/``ci_upper`` (the T-test's
    interval of the information gain) and ``t_statistic``."""
    import pandas as pd

    base = {
        "model": model,
        "window": windows.astype(np.int64),
        "window_start": pd.to_datetime(edges[windows], utc=True),
        "window_end": pd.to_datetime(edges[windows + 1], utc=True),
        "fit_origin": origins.astype(np.int64),
        "n_events": counts.sum(axis=(1, 2)).astype(np.int64),
        "n_fore": rates.sum(axis=(1, 2)),
        "log_likelihood": log_likelihoods(rates, counts),
    }
    paired = None
    if reference is not None and any(t in PAIRED_TESTS for t in tests):
        paired = kernels.t_test(rates, reference[1], counts, alpha=T_ALPHA)
    frames = []
    for test in tests:
        if test not in PAIRED_TESTS:
            seed = seeds[list(tests).index(test)]
            columns = _consistency_columns(test, rates, counts, n_sim, seed)
        elif reference is not None and paired is not None:
            columns = _paired_columns(test, rates, counts, reference, paired)
        else:
            continue  # the reference model itself: no paired rows
        frames.append(pd.DataFrame({**base, "test": test, **columns}))
    return pd.concat(frames, ignore_index=True)


def _consistency_columns(test: str, rates: np.ndarray, counts: np.ndarray, n_sim: int, seed: int) -> dict[str, Any]:
    """N, L, CL, S, M or Brier in every window of a block: observed statistic, quantile(s) and pass."""
    n = len(rates)
    nan = np.full(n, np.nan)
    if test == "N":
        result = kernels.n_test(rates, counts)
        q = _per_window(result.quantile, n, 2)
        return _columns(result, q[:, 0], q[:, 1], np.minimum(q[:, 0], q[:, 1]) >= N_ALPHA)
    if test == "Brier":
        result = kernels.brier_score(rates, counts, n_sim=n_sim, seed=seed)
    else:
        result = kernels.likelihood_test(test, rates, counts, n_sim=n_sim, seed=seed)
    q1 = _per_window(result.quantile, n)
    return _columns(result, q1, nan, q1 >= ALPHA)


def _paired_columns(
    test: str, rates: np.ndarray, counts: np.ndarray, reference: tuple[str, np.ndarray], paired: TestResult
) -> dict[str, Any]:
    """T or W against the reference in every window of a block, ``paired`` being the T-test of the block."""
    n = len(rates)
    nan = np.full(n, np.nan)
    versus, ref_rates = reference
    if test == "T":
        lower = _per_window(paired.extra["ig_lower"], n)
        upper = _per_window(paired.extra["ig_upper"], n)
        t_statistic = _per_window(paired.extra["t_statistic"], n)
        passed = lower > 0  # significantly more informative than the reference
        return _columns(paired, nan, nan, passed, versus, lower, upper, t_statistic)
    result = kernels.w_test(rates, ref_rates, counts)
    q1 = _per_window(result.quantile, n)
    gain = _per_window(paired.observed_statistic, n)
    passed = (q1 < T_ALPHA) & (gain > 0)  # the median difference is significant, gain positive
    return _columns(result, q1, nan, passed, versus)


def _per_window(values: Any, n: int, *shape: int) -> np.ndarray:
    """A kernel's statistic as float64 with one row per window."""
    return np.asarray(values, dtype=np.float64).reshape(n, *shape)


def _columns(
    result: TestResult,
    quantile: np.ndarray,
    quantile_2: np.ndarray,
    passed: np.ndarray,
    versus: str = "",
    ci_lower: np.ndarray | None = None,
    ci_upper: np.ndarray | None = None,
    t_statistic: np.ndarray | None = None,
) -> dict[str, Any]:
    """The test columns of the rows of one test, in the table's order (NaN where a column does not apply)."""
    nan = np.full(len(quantile), np.nan)
    return {
        "observed_statistic": np.asarray(result.observed_statistic, dtype=np.float64).reshape(-1),
        "quantile": quantile,
        "quantile_2": quantile_2,
        "passed": passed,
        "versus": versus,
        "ci_lower": nan if ci_lower is None else ci_lower,
        "ci_upper": nan if ci_upper is None else ci_upper,
        "t_statistic": nan if t_statistic is None else t_statistic,
    }


def item_seeds(seed: int, model_index: int, first: int, n: int) -> list[int]:
    """One independent seed per test of an item, the same on every rerun and under every executor."""
    children = np.random.SeedSequence([seed, model_index, first]).spawn(n)
    return [int(c.generate_state(1)[0]) for c in children]


@dataclasses.dataclass(frozen=True)
class AddInformationGain:
    """Campaign finaliser: information gain per event of each model over the reference, per window and
    cumulative (sum of log-likelihood gains over windows 1..k divided by their events)."""

    reference: str

    def __call__(self, table: pd.DataFrame) -> pd.DataFrame:
        per_window = table.drop_duplicates(["model", "window"])[["model", "window", "log_likelihood", "n_events"]]
        ref = per_window[per_window["model"] == self.reference].set_index("window")["log_likelihood"]
        per_window = per_window.sort_values(["model", "window"]).copy()
        gain = per_window["log_likelihood"].to_numpy() - ref.reindex(per_window["window"]).to_numpy()
        per_window["log_likelihood_gain"] = gain
        per_window["information_gain"] = gain / np.maximum(per_window["n_events"].to_numpy(), 1)
        grouped = per_window.groupby("model", sort=False)
        cum_gain = grouped["log_likelihood_gain"].cumsum().to_numpy()
        cum_events = grouped["n_events"].cumsum().to_numpy()
        per_window["cumulative_information_gain"] = cum_gain / np.maximum(cum_events, 1)
        columns = ["model", "window", "information_gain", "cumulative_information_gain"]
        out = table.merge(per_window[columns], on=["model", "window"], how="left", validate="many_to_one")
        order = {t: i for i, t in enumerate(dict.fromkeys(table["test"]))}
        out = out.assign(_t=out["test"].map(order)).sort_values(["model", "window", "_t"], kind="stable")
        return out.drop(columns="_t").reset_index(drop=True)
