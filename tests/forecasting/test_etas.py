"""ETAS simulator: branching ratio, Gutenberg-Richter b and Omori-Utsu lags recovered from a SYNTHETIC catalog
at fixed seeds within stated statistical tolerances; the archive records that it is synthetic."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from geodl_hpc.archive.catalog import COLUMNS, open_catalog
from geodl_hpc.archive.store import PROVENANCE_ATTR
from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.etas import (
    CALIFORNIA_BBOX,
    CALIFORNIA_MIZRAHI_2021,
    bbox_area_km2,
    branching_ratio,
    etas_expected_rates,
    etas_simulated_rates,
    simulate_etas,
    simulate_events,
    write_etas_catalog,
)
from geodl_hpc.forecasting.gr import b_value
from geodl_hpc.forecasting.grid import SpaceMagGrid
from tests.forecasting.conftest import Binned

CA = CALIFORNIA_MIZRAHI_2021


def test_published_california_set_is_subcritical_and_matches_direct_integration() -> None:
    n = branching_ratio(CA)
    assert 0.85 < n < 0.95  # ~0.895: stable (< 1)
    beta = CA.b * math.log(10)

    def offspring(m: float) -> float:  # Nandan's kernel integrated over time and space directly
        t_int, _ = integrate.quad(lambda t: math.exp(-t / CA.tau) * (t + CA.c) ** (-1 - CA.omega), 0, np.inf, limit=500)
        dd = CA.d * math.exp(CA.gamma * (m - CA.m_ref))
        space = math.pi * dd**-CA.rho / CA.rho
        return CA.k0 * math.exp(CA.a * (m - CA.m_ref)) * t_int * space

    norm = 1 - math.exp(-beta * (CA.m_max - CA.m_min))
    direct, _ = integrate.quad(
        lambda m: offspring(m) * beta * math.exp(-beta * (m - CA.m_min)) / norm, CA.m_min, CA.m_max, limit=200
    )
    assert direct == pytest.approx(n, rel=1e-3)


def test_simulated_offspring_b_value_and_omori_lags() -> None:
    days = 40 * 365.25
    ev = simulate_events(CA, CALIFORNIA_BBOX, days, np.random.default_rng(7))
    # Branching: mean direct aftershocks drawn per event = n, within 4 standard errors.
    kids = ev.n_children_drawn.astype(float)
    se = kids.std() / math.sqrt(len(kids))
    assert abs(kids.mean() - branching_ratio(CA)) < 4 * se
    # GR: Aki's MLE of all magnitudes (continuous above m_min), within 3 sigma = 3 b / sqrt(N).
    b = b_value(ev.m, CA.m_min)
    assert abs(b - CA.b) < 3 * CA.b / math.sqrt(len(ev.m))
    # Omori-Utsu with taper: lags of direct aftershocks of parents early enough that no lag < horizon is cut,
    # against the exact CDF 1 - Gamma(s, (t+c)/tau) / Gamma(s, c/tau), s = -omega; KS test p > 0.01.
    horizon = 3650.0
    child = ev.parent >= 0
    lag = ev.t[child] - ev.t[ev.parent[child]]
    early = (ev.t[ev.parent[child]] < days - horizon) & (lag < horizon)
    s = -CA.omega

    def cdf(t: np.ndarray) -> np.ndarray:
        full = 1 - special.gammaincc(s, (t + CA.c) / CA.tau) / special.gammaincc(s, CA.c / CA.tau)
        at_h = 1 - special.gammaincc(s, (horizon + CA.c) / CA.tau) / special.gammaincc(s, CA.c / CA.tau)
        return full / at_h

    assert early.sum() > 500
    assert stats.kstest(lag[early], cdf).pvalue > 0.01


def test_untapered_omori_exponent_is_recovered() -> None:
    params = replace(CA, omega=0.2, tau=math.inf, k0=CA.k0 * 0.7, mu=CA.mu * 20, name="test_p1.2")  # n ~ 0.76
    ev = simulate_events(params, CALIFORNIA_BBOX, 3650.0, np.random.default_rng(11))
    child = ev.parent >= 0
    lag = ev.t[child] - ev.t[ev.parent[child]]
    lag = lag[(ev.t[ev.parent[child]] < 3650.0 - 365.0) & (lag < 365.0)]

    def nll(p: float) -> float:  # truncated Omori-Utsu density on [0, 365) with known c
        norm = (params.c ** (1 - p) - (365.0 + params.c) ** (1 - p)) / (p - 1)
        return -float(np.sum(-p * np.log(lag + params.c)) - len(lag) * math.log(norm))

    from scipy.optimize import minimize_scalar

    p_hat = minimize_scalar(nll, bounds=(1.01, 2.0), method="bounded").x
    assert len(lag) > 5000
    assert abs(p_hat - params.p) < 0.02  # ~7000 lags: standard error ~0.005


def test_catalog_archive_says_synthetic_with_model_params_and_seed(tmp_path: Path) -> None:
    table = simulate_etas(CA, (-119.0, 34.0, -117.0, 36.0), "2000-01-01", "2002-01-01", np.random.default_rng(5))
    assert list(table.columns) == list(COLUMNS) and table["time"].is_monotonic_increasing
    out = write_etas_catalog(tmp_path / "etas.parquet", table, seed=5)
    back = open_catalog(out)
    record = back.attrs[PROVENANCE_ATTR]["synthetic"]
    assert record["synthetic"] is True and record["seed"] == 5
    assert record["params"]["name"] == "california_mizrahi2021" and record["params"]["branching_ratio"] < 1
    np.testing.assert_allclose(back["magnitude"], table["magnitude"])
    assert (back["time"] == table["time"]).all()


def test_expected_rates_background_and_no_look_ahead(etas_binned: Binned) -> None:
    grid = SpaceMagGrid.from_bbox((-119.0, 34.0, -117.0, 36.0), 0.5, 3.95, 6.95, 0.1)
    empty = etas_binned.table.iloc[:0]
    window = (np.datetime64("2010-01-01"), np.datetime64("2010-01-31"))
    bg = etas_expected_rates(empty, CA, grid, window)
    expected = CA.mu * bbox_area_km2((-119.0, 34.0, -117.0, 36.0)) * 30 * 10 ** (-CA.b * (3.95 - CA.m_min))
    assert bg.sum() == pytest.approx(expected, rel=1e-9)
    table = etas_binned.table
    before = etas_expected_rates(table, CA, grid, window)
    later = table["time"] >= "2010-01-01"
    shuffled = table.copy()
    shuffled.loc[later, "magnitude"] = 7.5  # a different future
    np.testing.assert_array_equal(etas_expected_rates(shuffled, CA, grid, window), before)
    assert before.sum() > bg.sum()
    with pytest.raises(ConfigError, match="after start"):
        etas_expected_rates(table, CA, grid, (window[1], window[0]))


def test_simulated_rates_add_in_window_triggering_and_never_look_ahead(etas_binned: Binned) -> None:
    grid = SpaceMagGrid.from_bbox((-125.0, 31.5, -113.0, 43.5), 1.0, 3.95, 6.95, 0.1)
    table = etas_binned.table
    window = (np.datetime64("2010-01-01"), np.datetime64("2010-01-31"))
    analytic = etas_expected_rates(table, CA, grid, window)
    simulated = etas_simulated_rates(table, CA, grid, window, n_sims=50, seed=3)
    bg = CA.mu * grid.cell_area_km2().sum() * 30 * 10 ** (-CA.b * (3.95 - CA.m_min))
    assert simulated.sum() > analytic.sum() > bg  # cascades inside the window come on top (n ~ 0.9)
    changed = table.copy()
    changed.loc[changed["time"] >= pd.Timestamp("2010-01-01", tz="UTC"), "magnitude"] = 7.5
    again = etas_simulated_rates(changed, CA, grid, window, n_sims=50, seed=3)
    np.testing.assert_array_equal(again, simulated)
