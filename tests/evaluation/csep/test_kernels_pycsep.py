"""Our kernels against pyCSEP's functions on the same forecast and catalog.

Observed statistics must agree to 1e-9 (absolute; the T-test's t statistic, about 300 here, relative 1e-9 since
it divides by a small standard deviation). Simulated quantiles come from different random streams (numpy's
Generator vs pyCSEP's global legacy state), so they agree within Monte Carlo error: each is a binomial share
with standard error sqrt(q (1 - q) / n_sim), the difference of two independent ones has standard error
sqrt(2 q (1 - q) / n_sim); we allow 4 of those plus 2 / n_sim for the discreteness (a false alarm
probability of about 6e-5 per comparison; the seeds are fixed, so the outcome is deterministic). With pyCSEP's
own ``random_numbers`` injected, the simulated distributions must agree to 1e-9 draw for draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from geodl_hpc.evaluation.csep import kernels as K
from geodl_hpc.evaluation.csep.forecast import GriddedForecast, bin_events, to_pycsep
from tests.evaluation.csep.conftest import Pair, pycsep_catalog

N_SIM = 1000


def mc_bound(q_a: float, q_b: float, n_sim: int) -> float:
    q = min(max((q_a + q_b) / 2, 1.0 / n_sim), 1 - 1.0 / n_sim)
    return 4.0 * np.sqrt(2.0 * q * (1.0 - q) / n_sim) + 2.0 / n_sim


def _pycsep(kind: str, pair: Pair, n_sim: int, seed: int | None = 1, **kw: Any) -> Any:
    from csep.core import poisson_evaluations as pe

    fn = {"L": pe.likelihood_test, "CL": pe.conditional_likelihood_test, "S": pe.spatial_test, "M": pe.magnitude_test}
    return fn[kind](pair.csep_a, pair.catalog, num_simulations=n_sim, seed=seed, **kw)


@pytest.mark.parametrize("kind", ["L", "CL", "S", "M"])
def test_likelihood_observed_real_ridgecrest(ridgecrest_pair: Pair, kind: str) -> None:
    """Real Ridgecrest events (827 in the GR-extended bins): observed log-likelihoods equal pyCSEP's to 1e-9."""
    ref = _pycsep(kind, ridgecrest_pair, n_sim=5)
    ours = K.likelihood_test(kind, ridgecrest_pair.a.rates, ridgecrest_pair.counts, n_sim=5, seed=1)
    assert ours.observed_statistic == pytest.approx(ref.observed_statistic, abs=1e-9)
    assert ours.n_obs == 827
    assert ours.quantile == ref.quantile == 0.0  # a long-term forecast fails an aftershock sequence, as in pyCSEP


def test_real_forecast_real_catalog_unmodified(helmstetter: GriddedForecast, comcat: Any) -> None:
    """The unmodified real forecast (all of California, M >= 4.95) against the real catalog: 3 target events."""
    from csep.core import poisson_evaluations as pe

    lon, lat, mag = (comcat[c].to_numpy(dtype=np.float64) for c in ("longitude", "latitude", "magnitude"))
    counts = bin_events(lon, lat, mag, helmstetter)
    fc = to_pycsep(helmstetter)
    catalog = pycsep_catalog(lon, lat, mag, fc.region)
    n_ref = pe.number_test(fc, catalog)
    n_ours = K.n_test(helmstetter.rates, counts)
    assert n_ours.observed_statistic == n_ref.observed_statistic == 3
    assert np.allclose(n_ours.quantile, n_ref.quantile, rtol=0, atol=1e-12)
    for kind, fn in (("CL", pe.conditional_likelihood_test), ("S", pe.spatial_test), ("M", pe.magnitude_test)):
        ref = fn(fc, catalog, num_simulations=200, seed=3)
        ours = K.likelihood_test(kind, helmstetter.rates, counts, n_sim=200, seed=3)
        assert ours.observed_statistic == pytest.approx(ref.observed_statistic, abs=1e-9)
        assert abs(ours.quantile - ref.quantile) <= mc_bound(ours.quantile, ref.quantile, 200)


def test_n_test_matches(consistent_pair: Pair, ridgecrest_pair: Pair) -> None:
    from csep.core import poisson_evaluations as pe

    for pair in (consistent_pair, ridgecrest_pair):
        ref = pe.number_test(pair.csep_a, pair.catalog)
        ours = K.n_test(pair.a.rates, pair.counts)
        assert ours.observed_statistic == ref.observed_statistic
        assert np.allclose(ours.quantile, ref.quantile, rtol=0, atol=1e-12)
        assert ours.extra["n_fore"] == pytest.approx(pair.csep_a.event_count, rel=1e-12)


@pytest.mark.parametrize("kind", ["L", "CL", "S", "M"])
def test_likelihood_quantiles_within_mc_error(consistent_pair: Pair, kind: str) -> None:
    """A catalog drawn from the forecast: observed to 1e-9, quantile within MC error, simulated mean and spread
    within 5 standard errors of pyCSEP's."""
    ref = _pycsep(kind, consistent_pair, N_SIM, seed=11)
    ours = K.likelihood_test(kind, consistent_pair.a.rates, consistent_pair.counts, n_sim=N_SIM, seed=11)
    assert ours.observed_statistic == pytest.approx(ref.observed_statistic, abs=1e-9)
    assert abs(ours.quantile - ref.quantile) <= mc_bound(ours.quantile, ref.quantile, N_SIM)
    sims_ref, sims = np.asarray(ref.test_distribution), np.asarray(ours.test_distribution)
    se = np.sqrt((sims.var() + sims_ref.var()) / N_SIM)
    assert abs(sims.mean() - sims_ref.mean()) <= 5 * se
    assert sims.std() == pytest.approx(sims_ref.std(), rel=0.15)  # sd of an sd estimate ~ 1/sqrt(2 n_sim) = 2 %


@pytest.mark.parametrize("kind", ["CL", "S", "M"])
def test_simulations_equal_pycsep_with_its_random_numbers(consistent_pair: Pair, kind: str) -> None:
    """pyCSEP's injection point: the same uniforms give the same simulated catalogs and log-likelihoods."""
    n_sim = 50
    rng = np.random.default_rng(5)
    n_obs = int(consistent_pair.counts.sum())
    uniforms = rng.random((n_sim, n_obs))
    ref = _pycsep(kind, consistent_pair, n_sim, seed=None, random_numbers=uniforms)
    r, c, _ = K._batched(consistent_pair.a.rates, consistent_pair.counts)
    fore, obs = K._likelihood_inputs(kind, r, c)
    name, use_observed, normalize = K._LIKELIHOOD[kind]
    ours = K._likelihood_test(
        name,
        fore,
        obs,
        n_sim=n_sim,
        seed=None,
        use_observed_counts=use_observed,
        normalize=normalize,
        uniforms=uniforms.ravel(),
    )
    assert np.allclose(np.asarray(ours.test_distribution)[0], ref.test_distribution, rtol=0, atol=1e-9)
    assert float(np.asarray(ours.quantile)[0]) == ref.quantile


@pytest.mark.parametrize("pair_name", ["ridgecrest_pair", "consistent_pair"])
def test_t_and_w_tests_match(pair_name: str, request: pytest.FixtureRequest) -> None:
    """Helmstetter vs its aftershock variant: T-test and W-test, deterministic, to 1e-9.

    The t statistic divides by the standard deviation of the log-rate differences at the target events, which
    pyCSEP (and we) compute as mean(d^2) - mean(d)^2: its relative rounding error grows with
    cond = mean(d^2) / var(d), about 1e4 for the real events but 1e15 for the synthetic catalog, whose events
    fall in cells where the two forecasts differ by an almost constant factor. Hence rel 1e-9 * cond for t.
    """
    from csep.core import poisson_evaluations as pe

    pair: Pair = request.getfixturevalue(pair_name)
    ref = pe.paired_t_test(pair.csep_a, pair.csep_b, pair.catalog)
    ours = K.t_test(pair.a.rates, pair.b.rates, pair.counts)
    assert ours.observed_statistic == pytest.approx(ref.observed_statistic, abs=1e-9)
    t_ref, crit_ref, alpha = ref.quantile
    t_ours, crit_ours, alpha_ours = ours.quantile  # type: ignore[misc]
    d = (np.log(pair.a.rates) - np.log(pair.b.rates))[pair.counts > 0]
    w = pair.counts[pair.counts > 0]
    mean_sq, mean = np.average(d**2, weights=w), np.average(d, weights=w)
    cond = mean_sq / max(mean_sq - mean**2, np.finfo(float).tiny)
    assert t_ours == pytest.approx(t_ref, rel=1e-9 * max(1.0, cond)) and crit_ours == pytest.approx(crit_ref, abs=1e-12)
    assert alpha_ours == alpha == 0.05
    assert ours.extra["ig_lower"] == pytest.approx(ref.test_distribution[0], abs=1e-9)
    assert ours.extra["ig_upper"] == pytest.approx(ref.test_distribution[1], abs=1e-9)
    w_ref = pe.w_test(pair.csep_a, pair.csep_b, pair.catalog)
    w_ours = K.w_test(pair.a.rates, pair.b.rates, pair.counts)
    assert w_ours.observed_statistic == pytest.approx(w_ref.observed_statistic, abs=1e-9)
    assert w_ours.quantile == pytest.approx(w_ref.quantile, rel=1e-9, abs=1e-12)


def test_brier_matches(consistent_pair: Pair, ridgecrest_pair: Pair) -> None:
    from csep.core.brier_evaluations import brier_score_test

    real = brier_score_test(ridgecrest_pair.csep_a, ridgecrest_pair.catalog, num_simulations=2, seed=1)
    ours_real = K.brier_score(ridgecrest_pair.a.rates, ridgecrest_pair.counts, n_sim=2, seed=1)
    assert ours_real.observed_statistic == pytest.approx(real.observed_statistic, abs=1e-9)
    n_sim = 200
    ref = brier_score_test(consistent_pair.csep_a, consistent_pair.catalog, num_simulations=n_sim, seed=2)
    ours = K.brier_score(consistent_pair.a.rates, consistent_pair.counts, n_sim=n_sim, seed=2)
    assert ours.observed_statistic == pytest.approx(ref.observed_statistic, abs=1e-9)
    assert abs(ours.quantile - ref.quantile) <= mc_bound(ours.quantile, ref.quantile, n_sim)
    sims_ref, sims = np.asarray(ref.test_distribution), np.asarray(ours.test_distribution)
    assert abs(sims.mean() - sims_ref.mean()) <= 5 * np.sqrt((sims.var() + sims_ref.var()) / n_sim)


def test_molchan_and_roc_equal_pycsep_diagrams(ridgecrest_pair: Pair) -> None:
    """The curves pyCSEP draws (read back from its axes) and its area skill score legend (clipped at 0.5,
    rounded to 2 decimals) equal ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from csep import plots

    pair = ridgecrest_pair
    ax = plots.plot_Molchan_diagram(pair.csep_a, pair.catalog, show=False)
    tau_ref, nu_ref = (np.asarray(v, dtype=float) for v in ax.lines[0].get_data())
    label = ax.lines[0].get_label()
    plt.close("all")
    tau, nu = K.molchan_curve(pair.a.rates, pair.counts)
    assert np.allclose(tau, tau_ref, rtol=0, atol=1e-12) and np.allclose(nu, nu_ref, rtol=0, atol=1e-12)
    ass = K.area_skill_score(tau, nu)
    assert f"ASS={np.round(max(0.5, ass), 2)}" in label
    assert 0.5 < ass < 1.0
    ax = plots.plot_ROC_diagram(pair.csep_a, pair.catalog, show=False)
    f_ref, h_ref = (np.asarray(v, dtype=float) for v in ax.lines[0].get_data())
    plt.close("all")
    f, h = K.roc_curve(pair.a.rates, pair.counts)
    assert np.allclose(f, f_ref, rtol=0, atol=1e-12) and np.allclose(h, h_ref, rtol=0, atol=1e-12)
