"""Leading window axis: a vectorised call equals the per-window calls; cumulative tests equal pooled tests.

Windows: the real Helmstetter forecast around Ridgecrest (GR-extended, see conftest) scaled per window by
factors from 0.02 to 0.2, with counts from an independent Poisson draw of 0.7..1.4 times each window's rates
(synthetic, seed 3): some windows pass and some fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from geodl_hpc.evaluation.csep import kernels as K
from tests.evaluation.csep.conftest import Pair

W = 6


@pytest.fixture(scope="module")
def windows(ridgecrest_pair: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    scale = np.linspace(0.02, 0.2, W)
    rates_a = ridgecrest_pair.a.rates[None] * scale[:, None, None]
    rates_b = ridgecrest_pair.b.rates[None] * scale[:, None, None]
    activity = rng.uniform(0.7, 1.4, W)
    counts = rng.poisson(rates_a * activity[:, None, None]).astype(np.float64)
    return rates_a, rates_b, counts


def test_deterministic_kernels_per_window(windows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rates_a, rates_b, counts = windows
    batched = {
        "N": K.n_test(rates_a, counts),
        "T": K.t_test(rates_a, rates_b, counts),
        "W": K.w_test(rates_a, rates_b, counts),
    }
    assert batched["N"].n_windows == W
    for i in range(W):
        single = {
            "N": K.n_test(rates_a[i], counts[i]),
            "T": K.t_test(rates_a[i], rates_b[i], counts[i]),
            "W": K.w_test(rates_a[i], rates_b[i], counts[i]),
        }
        for name, result in batched.items():
            window = result.windows()[i]
            assert window.observed_statistic == pytest.approx(single[name].observed_statistic, rel=1e-12)
            assert np.allclose(window.quantile, single[name].quantile, rtol=1e-12, atol=0)
    tau, nu = K.molchan_curve(rates_a, counts)
    f, h = K.roc_curve(rates_a, counts)
    ass = K.area_skill_score(tau, nu)
    for i in range(W):
        tau_i, nu_i = K.molchan_curve(rates_a[i], counts[i])
        assert np.array_equal(tau[i], tau_i) and np.array_equal(nu[i], nu_i)
        assert np.array_equal(K.roc_curve(rates_a[i], counts[i])[1], h[i])
        assert np.asarray(ass)[i] == K.area_skill_score(tau_i, nu_i)
    assert f.shape == (W, rates_a.shape[1] + 1)


@pytest.mark.parametrize("kind", ["CL", "S", "M"])
def test_batched_simulation_equals_per_window_with_same_draws(
    windows: tuple[np.ndarray, np.ndarray, np.ndarray], kind: str
) -> None:
    """All windows' catalogs are drawn in one batch; with the same uniforms each window equals its own run."""
    rates, _, counts = windows
    n_sim = 40
    r, c, _ = K._batched(rates, counts)
    fore, obs = K._likelihood_inputs(kind, r, c)
    name, use_observed, normalize = K._LIKELIHOOD[kind]
    n_obs = obs.sum(axis=1).astype(int)
    uniforms = [np.random.default_rng(i).random(n_sim * n) for i, n in enumerate(n_obs)]
    kw = {"n_sim": n_sim, "seed": None, "use_observed_counts": use_observed, "normalize": normalize}
    batched = K._likelihood_test(name, fore, obs, uniforms=np.concatenate(uniforms), **kw)  # type: ignore[arg-type]
    for i in range(W):
        single = K._likelihood_test(name, fore[i : i + 1], obs[i : i + 1], uniforms=uniforms[i], **kw)  # type: ignore[arg-type]
        assert np.allclose(np.asarray(batched.test_distribution)[i], np.asarray(single.test_distribution)[0], atol=1e-9)
        assert np.asarray(batched.quantile)[i] == np.asarray(single.quantile)[0]
        assert np.asarray(batched.observed_statistic)[i] == np.asarray(single.observed_statistic)[0]


@pytest.mark.parametrize("kind", ["L", "CL", "S", "M"])
def test_simulated_kernels_per_window(windows: tuple[np.ndarray, np.ndarray, np.ndarray], kind: str) -> None:
    """Public kernels: observed statistics equal per window; quantiles within Monte Carlo error (other draws)."""
    rates, _, counts = windows
    n_sim = 500
    batched = K.likelihood_test(kind, rates, counts, n_sim=n_sim, seed=1)
    assert np.asarray(batched.test_distribution).shape == (W, n_sim)
    for i, window in enumerate(batched.windows()):
        single = K.likelihood_test(kind, rates[i], counts[i], n_sim=n_sim, seed=100 + i)
        assert window.observed_statistic == pytest.approx(single.observed_statistic, abs=1e-9)
        q = (window.quantile + single.quantile) / 2
        bound = 4 * np.sqrt(2 * max(q * (1 - q), 1 / n_sim) / n_sim) + 2 / n_sim
        assert abs(window.quantile - single.quantile) <= bound  # type: ignore[operator]


def _pooled(x: np.ndarray, k: int) -> np.ndarray:
    """Windows 0..k side by side as one forecast: (cells * (k + 1), mags)."""
    return x[: k + 1].reshape(-1, x.shape[-1])


def test_cumulative_tests_equal_pooled_windows(windows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rates_a, rates_b, counts = windows
    n_cum = K.cumulative_n_test(rates_a, counts)
    t_cum = K.cumulative_t_test(rates_a, rates_b, counts)
    l_cum = K.cumulative_l_test(rates_a, counts, n_sim=200, seed=4)
    cl_per_window = K.cl_test(rates_a, counts, n_sim=200, seed=4)
    cl_cum = K.cumulative(cl_per_window)
    for k in range(W):
        n_pool = K.n_test(_pooled(rates_a, k), _pooled(counts, k))
        assert n_cum.windows()[k].observed_statistic == n_pool.observed_statistic
        assert np.allclose(n_cum.windows()[k].quantile, n_pool.quantile, rtol=1e-9, atol=1e-15)
        t_pool = K.t_test(_pooled(rates_a, k), _pooled(rates_b, k), _pooled(counts, k))
        assert t_cum.windows()[k].observed_statistic == pytest.approx(t_pool.observed_statistic, abs=1e-9)
        assert t_cum.windows()[k].extra["ig_lower"] == pytest.approx(t_pool.extra["ig_lower"], abs=1e-9)
        l_pool = K.l_test(_pooled(rates_a, k), _pooled(counts, k), n_sim=2, seed=0)
        assert l_cum.windows()[k].observed_statistic == pytest.approx(l_pool.observed_statistic, abs=1e-9)
    sims = np.asarray(cl_per_window.test_distribution)
    assert np.allclose(np.asarray(cl_cum.test_distribution), np.cumsum(sims, axis=0))
    expected_q = np.mean(np.cumsum(sims, axis=0) <= np.cumsum(cl_per_window.observed_statistic)[:, None], axis=1)
    assert np.array_equal(cl_cum.quantile, expected_q)
    assert cl_cum.name == "Cumulative Poisson CL-Test"


def test_to_dict_is_strict_json(windows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    import json

    rates, _, counts = windows
    zero_rate = rates[0].copy()
    hit = np.argwhere(counts[0] > 0)[0]
    zero_rate[hit[0], hit[1]] = 0.0  # an event in a zero-rate bin: log-likelihood -inf
    result = K.l_test(zero_rate, counts[0], n_sim=20, seed=0)
    assert result.observed_statistic == -np.inf and result.quantile == 0.0
    payload = result.to_dict()
    assert payload["observed_statistic"] is None and payload["n_sim"] == 20
    json.dumps(payload, allow_nan=False)
    batched = K.n_test(rates, counts).to_dict()
    assert len(batched["quantile"]) == W and len(batched["quantile"][0]) == 2
    json.dumps(batched, allow_nan=False)


def test_bad_inputs_are_one_line_errors(windows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    from geodl_hpc.errors import InputDataError

    rates, _, counts = windows
    bad_counts = counts[0].copy()
    bad_counts[0, 0] = 0.5
    with pytest.raises(InputDataError, match="whole numbers"):
        K.n_test(rates[0], bad_counts)
    bad_rates = rates[0].copy()
    bad_rates[1, 1] = np.nan
    with pytest.raises(InputDataError, match="finite and >= 0"):
        K.l_test(bad_rates, counts[0], n_sim=5, seed=0)
    with pytest.raises(InputDataError, match="same grid"):
        K.t_test(rates[0], rates[0][:-1], counts[0])
    with pytest.raises(InputDataError, match="expects no events"):
        K.cl_test(np.zeros_like(rates[0]), counts[0], n_sim=5, seed=0)


def test_window_without_events(windows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """A window with no events: N/L/CL/S/M/Brier still defined (CL: every simulation equals the observation),
    T and W undefined (None in JSON), and the other windows unaffected."""
    import json

    rates_a, rates_b, counts = windows
    counts = counts.copy()
    counts[2] = 0.0
    n = K.n_test(rates_a, counts).windows()[2]
    assert n.observed_statistic == 0 and n.quantile[0] == 1.0  # type: ignore[index]
    cl = K.cl_test(rates_a, counts, n_sim=20, seed=0).windows()[2]
    assert cl.observed_statistic == pytest.approx(-rates_a[2].sum()) and cl.quantile == 1.0
    assert K.s_test(rates_a, counts, n_sim=20, seed=0).windows()[2].observed_statistic == 0.0
    assert np.isfinite(K.brier_score(rates_a, counts, n_sim=20, seed=0).windows()[2].observed_statistic)
    t = K.t_test(rates_a, rates_b, counts)
    payload = t.windows()[2].to_dict()
    assert payload["observed_statistic"] is None and payload["alpha"] == 0.05
    json.dumps(K.w_test(rates_a, rates_b, counts).to_dict(), allow_nan=False)
    assert np.isfinite(np.asarray(t.observed_statistic)[[0, 1, 3, 4, 5]]).all()
