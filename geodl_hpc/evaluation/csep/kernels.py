"""CSEP statistical tests of gridded forecasts as pure, vectorised numpy kernels.

Every kernel takes expected counts ``rates`` and observed ``counts`` shaped (cells, mags) or (W, cells, mags)
with a leading window axis (``rates`` (cells, mags) broadcast over the windows of ``counts``), and returns a
:class:`TestResult` whose fields carry that window axis. The statistics follow pyCSEP 0.8
(``csep/core/poisson_evaluations.py``, ``brier_evaluations.py``, ``plots.py`` ROC/Molchan): observed
statistics agree to rounding; simulated quantiles agree within Monte Carlo error (our draws use numpy's
``Generator``, not pyCSEP's global legacy state). Cumulative versions pool windows 1..k as independent
space-time bins: likelihoods and their simulations add up, the N-test adds expected and observed numbers, the
T-test pools target events (what pyCSEP lacks, pycsep#87).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from geodl_hpc.errors import ConfigError, InputDataError

SeedLike = int | np.random.Generator | None

N_TEST = "Poisson N-Test"
L_TEST = "Poisson L-Test"
CL_TEST = "Poisson CL-Test"
S_TEST = "Poisson S-Test"
M_TEST = "Poisson M-Test"
T_TEST = "Paired T-Test"
W_TEST = "W-Test"
BRIER_TEST = "Brier score-Test"


@dataclass(frozen=True, eq=False)
class TestResult:
    """One test's outcome for one window (scalars) or W windows (arrays with a leading window axis).

    ``quantile`` is what pyCSEP reports: a float (L, CL, S, M, W, Brier), the pair (delta1, delta2) for the
    N-test, or (t_statistic, t_critical, alpha) for the T-test. ``test_distribution`` holds the simulated
    statistics (n_sim,) per window where the test simulates; ``extra`` holds the test's other numbers
    (expected count, information-gain interval, ...).
    """

    __test__ = False  # not a pytest class

    name: str
    observed_statistic: float | np.ndarray
    quantile: float | tuple[float, ...] | np.ndarray
    test_distribution: np.ndarray | None = None
    n_obs: float | np.ndarray = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_windows(self) -> int | None:
        """Number of windows, or None for a single-window result."""
        obs = np.asarray(self.observed_statistic)
        return None if obs.ndim == 0 else int(obs.shape[0])

    def windows(self) -> list[TestResult]:
        """The per-window results of a vectorised result (a one-element list for a single window)."""
        n = self.n_windows
        if n is None:
            return [self]
        return [self._window(i) for i in range(n)]

    def _window(self, i: int) -> TestResult:
        quantile = np.asarray(self.quantile)[i]
        return TestResult(
            name=self.name,
            observed_statistic=float(np.asarray(self.observed_statistic)[i]),
            quantile=float(quantile) if quantile.ndim == 0 else tuple(float(q) for q in quantile),
            test_distribution=None if self.test_distribution is None else np.asarray(self.test_distribution)[i],
            n_obs=float(np.asarray(self.n_obs)[i]),
            extra={k: float(np.asarray(v)[i]) if np.ndim(v) else v for k, v in self.extra.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: name, observed statistic, quantile(s), extras; simulated 2.5/50/97.5 percentiles.

        Non-finite numbers (a -inf log-likelihood when an event falls in a zero-rate bin) become None.
        """
        out: dict[str, Any] = {
            "name": self.name,
            "observed_statistic": _json(self.observed_statistic),
            "quantile": _json(self.quantile),
            "n_obs": _json(self.n_obs),
        }
        out.update({k: _json(v) for k, v in self.extra.items()})
        if self.test_distribution is not None:
            sims = np.asarray(self.test_distribution, dtype=np.float64)
            out["n_sim"] = int(sims.shape[-1])
            with np.errstate(invalid="ignore"):
                out["simulated_percentiles"] = {
                    str(p): _json(np.percentile(sims, p, axis=-1)) for p in (2.5, 50.0, 97.5)
                }
        return out


def _json(value: Any) -> Any:
    if isinstance(value, str) or value is None:
        return value
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        x = float(array)
        return x if np.isfinite(x) else None
    return [_json(v) for v in array]


# --- shapes, randomness ---------------------------------------------------------------------------------------------


def _rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _batched(rates: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(W, cells, mags) views of rates and counts and whether the caller gave a window axis."""
    r = np.asarray(rates, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if r.ndim not in (2, 3) or c.ndim not in (2, 3) or r.shape[-2:] != c.shape[-2:]:
        raise InputDataError(
            f"rates {r.shape} and counts {c.shape}: need (cells, mags) or (windows, cells, mags) of the same grid"
        )
    batched = r.ndim == 3 or c.ndim == 3
    w = max(r.shape[0] if r.ndim == 3 else 1, c.shape[0] if c.ndim == 3 else 1)
    r3 = r if r.ndim == 3 else r[None]
    c3 = c if c.ndim == 3 else c[None]
    if r3.shape[0] not in (1, w) or c3.shape[0] not in (1, w):
        raise InputDataError(f"rates {r.shape} and counts {c.shape}: window axes differ")
    r3 = np.broadcast_to(r3, (w, *r.shape[-2:]))
    c3 = np.broadcast_to(c3, (w, *r.shape[-2:]))
    # single reductions without full-size temporaries: NaN propagates through min, inf through sum
    nonzero = c[c != 0]  # NaN != 0 too
    if not (np.all(nonzero > 0) and np.all(np.isfinite(nonzero)) and np.all(nonzero == np.floor(nonzero))):
        raise InputDataError("counts must be whole numbers >= 0 (observed events per bin)")
    if r.size and not (r.min() >= 0 and np.isfinite(r.sum())):
        raise InputDataError("rates must be finite and >= 0 (expected events per bin)")
    return r3, c3, batched


def _unbatch(result: TestResult, batched: bool) -> TestResult:
    return result if batched else result.windows()[0]


def _log_rates_at(fore: np.ndarray, scale: np.ndarray | None, window: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """log(rate) of the given (window, bin) pairs, the forecast scaled per window first when ``scale`` is given
    (the same floating-point operations as pyCSEP's log(forecast * scale), only where they are needed)."""
    rates = fore[window, bins]
    if scale is not None:
        rates = rates * scale[window]
    return _log(rates)


def _wsum(index: np.ndarray, *, weights: np.ndarray, minlength: int = 0) -> np.ndarray:
    """Weighted bincount, always float64 (numpy returns int64 zeros for empty input)."""
    return np.bincount(index, weights=weights, minlength=minlength).astype(np.float64, copy=False)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


# --- N-test ---------------------------------------------------------------------------------------------------------


def _n_test_arrays(n_fore: np.ndarray, n_obs: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import pdtr  # what scipy.stats.poisson.cdf computes, without importing scipy.stats (4 s)

    def cdf(k: np.ndarray) -> np.ndarray:
        return np.where(k < 0, 0.0, pdtr(np.floor(np.maximum(k, 0.0)), n_fore))

    delta1 = 1.0 - cdf(n_obs - epsilon)
    delta2 = cdf(n_obs + epsilon)
    return np.asarray(delta1, dtype=np.float64), np.asarray(delta2, dtype=np.float64)


def n_test(rates: np.ndarray, counts: np.ndarray, epsilon: float = 1e-6) -> TestResult:
    """Poisson N-test: observed number vs the forecast's Poisson number; quantile (delta1, delta2)."""
    r, c, batched = _batched(rates, counts)
    n_fore = r.sum(axis=(1, 2))
    n_obs = c.sum(axis=(1, 2))
    d1, d2 = _n_test_arrays(n_fore, n_obs, epsilon)
    result = TestResult(N_TEST, n_obs, np.stack([d1, d2], axis=-1), None, n_obs, {"n_fore": n_fore})
    return _unbatch(result, batched)


def cumulative_n_test(rates: np.ndarray, counts: np.ndarray, epsilon: float = 1e-6) -> TestResult:
    """N-test of windows 1..k pooled, for every k (expected and observed numbers add up)."""
    r, c, _ = _batched(rates, counts)
    n_fore = np.cumsum(r.sum(axis=(1, 2)))
    n_obs = np.cumsum(c.sum(axis=(1, 2)))
    d1, d2 = _n_test_arrays(n_fore, n_obs, epsilon)
    return TestResult(f"Cumulative {N_TEST}", n_obs, np.stack([d1, d2], axis=-1), None, n_obs, {"n_fore": n_fore})


# --- likelihood tests (L, CL, S, M) ---------------------------------------------------------------------------------


def _sample_bins(
    fore: np.ndarray, window: np.ndarray, uniforms: np.ndarray, totals: np.ndarray | None = None
) -> np.ndarray:
    """Bin of each simulated event: inverse CDF of its window's forecast (pyCSEP's searchsorted, side right).

    ``window`` is non-decreasing (catalogs in window order); each window's queries are sorted first so that
    the binary searches walk its cumulative table once (cache-friendly on large grids).
    """
    w, b = fore.shape
    cum = np.cumsum(fore, axis=1)
    cum /= (fore.sum(axis=1) if totals is None else totals)[:, None]
    bounds = np.searchsorted(window, np.arange(w + 1))
    bins = np.empty(uniforms.size, dtype=np.int64)
    for k in range(w):
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            continue
        order = np.argsort(uniforms[lo:hi])
        found = np.empty(hi - lo, dtype=np.int64)
        found[order] = np.searchsorted(cum[k], uniforms[lo:hi][order], side="right")
        over = found >= b  # u above a last cumsum that rounded below 1: the window's last bin with a rate
        if np.any(over):
            found[over] = b - 1 - int(np.argmax(fore[k, ::-1] > 0))
        bins[lo:hi] = found
    return bins


def _simulated_loglik(
    fore: np.ndarray,
    scale: np.ndarray | None,
    expected: np.ndarray,
    n_events: np.ndarray,
    rng: np.random.Generator | None,
    uniforms: np.ndarray | None = None,
    totals: np.ndarray | None = None,
) -> np.ndarray:
    """Joint Poisson log-likelihood (W, n_sim) of catalogs simulated from ``fore`` with ``n_events`` each.

    All catalogs of all windows are simulated in one batch. log(c!) of a bin holding c simulated events is
    summed as log 1 + ... + log c over the events ranked within their bin (same value as lgamma(c + 1)).
    ``uniforms`` (events of catalog 0, then catalog 1, ...) replaces the random draws (tests).
    """
    w, b = fore.shape
    n_sim = n_events.shape[1]
    per_catalog = n_events.ravel()
    catalog = np.repeat(np.arange(w * n_sim, dtype=np.int64), per_catalog)
    window = catalog // n_sim
    if uniforms is None:
        uniforms = (rng or np.random.default_rng()).random(catalog.size)
    bins = _sample_bins(fore, window, np.asarray(uniforms, dtype=np.float64), totals)
    loglik = _wsum(catalog, weights=_log_rates_at(fore, scale, window, bins), minlength=w * n_sim)
    keys = np.sort(catalog * b + bins)
    position = np.arange(keys.size)
    first = np.ones(keys.size, dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    rank = position - np.maximum.accumulate(np.where(first, position, 0)) + 1
    penalty = _wsum(keys // b, weights=np.log(rank), minlength=w * n_sim)
    return (loglik - penalty).reshape(w, n_sim) - expected[:, None]


def _likelihood_test(
    name: str,
    fore: np.ndarray,
    obs: np.ndarray,
    *,
    n_sim: int,
    seed: SeedLike,
    use_observed_counts: bool,
    normalize: bool,
    uniforms: np.ndarray | None = None,
) -> TestResult:
    """pyCSEP's ``_poisson_likelihood_test`` over a window axis: fore, obs (W, bins)."""
    from scipy.special import gammaln

    if n_sim < 1:
        raise InputDataError(f"n_sim={n_sim}: the number of simulations must be >= 1")
    w = fore.shape[0]
    target_w, target_b = np.nonzero(obs)
    target = obs[target_w, target_b]
    n_obs = _wsum(target_w, weights=target, minlength=w)
    n_fore = fore.sum(axis=1)
    empty = np.flatnonzero(n_fore <= 0)
    if empty.size:
        raise InputDataError(f"window {int(empty[0])}: the forecast expects no events at all; it cannot be tested")
    expected = n_fore.copy()
    scale = None
    if use_observed_counts and normalize:  # S and M tests: forecast scaled to the observed number
        expected = np.floor(n_obs)
        scale = n_obs / n_fore
    with np.errstate(invalid="ignore"):
        hits = _wsum(target_w, weights=target * _log_rates_at(fore, scale, target_w, target_b), minlength=w)
    observed = hits - _wsum(target_w, weights=gammaln(target + 1.0), minlength=w) - expected
    rng = _rng(seed)
    if use_observed_counts:
        n_events = np.repeat(n_obs.astype(np.int64)[:, None], n_sim, axis=1)
    else:  # L-test: each simulated catalog has a Poisson number of events
        n_events = rng.poisson(n_fore[:, None], size=(w, n_sim)).astype(np.int64)
    simulated = _simulated_loglik(fore, scale, expected, n_events, rng, uniforms, n_fore)
    quantile = np.mean(simulated <= observed[:, None], axis=1)
    return TestResult(name, observed, quantile, simulated, n_obs, {"n_fore": n_fore})


def _likelihood_inputs(kind: str, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (W, bins) forecast and observation each likelihood test works on."""
    if kind == "S":
        return r.sum(axis=2), c.sum(axis=2)
    if kind == "M":
        return r.sum(axis=1), c.sum(axis=1)
    w = r.shape[0]
    return r.reshape(w, -1), c.reshape(w, -1)


_LIKELIHOOD = {  # kind: (name, use_observed_counts, normalize) as pyCSEP calls _poisson_likelihood_test
    "L": (L_TEST, False, False),
    "CL": (CL_TEST, True, False),
    "S": (S_TEST, True, True),
    "M": (M_TEST, True, True),
}


def likelihood_test(
    kind: str, rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None
) -> TestResult:
    """One of the simulation-based Poisson tests: ``kind`` L, CL, S or M."""
    if kind not in _LIKELIHOOD:
        raise ConfigError(f"likelihood test {kind!r}: use one of {', '.join(_LIKELIHOOD)}")
    name, use_observed, normalize = _LIKELIHOOD[kind]
    r, c, batched = _batched(rates, counts)
    fore, obs = _likelihood_inputs(kind, r, c)
    result = _likelihood_test(
        name, fore, obs, n_sim=n_sim, seed=seed, use_observed_counts=use_observed, normalize=normalize
    )
    return _unbatch(result, batched)


def l_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """Poisson L-test: joint log-likelihood vs catalogs simulated with a Poisson number of events."""
    return likelihood_test("L", rates, counts, n_sim=n_sim, seed=seed)


def cl_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """Poisson CL-test: the L-test conditional on the observed number of events."""
    return likelihood_test("CL", rates, counts, n_sim=n_sim, seed=seed)


def s_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """Poisson S-test: spatial log-likelihood (magnitudes summed) of the forecast scaled to the observed number."""
    return likelihood_test("S", rates, counts, n_sim=n_sim, seed=seed)


def m_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """Poisson M-test: magnitude log-likelihood (cells summed) of the forecast scaled to the observed number."""
    return likelihood_test("M", rates, counts, n_sim=n_sim, seed=seed)


def cumulative(result: TestResult) -> TestResult:
    """Cumulative version of a vectorised L/CL/S/M result: windows 1..k as independent space-time bins.

    Observed and simulated log-likelihoods add up over windows (simulation i of every window forms
    cumulative simulation i); the quantile at k is the share of cumulative simulations <= the observed sum.
    """
    if result.test_distribution is None or result.n_windows is None:
        raise InputDataError(f"{result.name}: cumulative needs a simulated test over a window axis")
    observed = np.cumsum(np.asarray(result.observed_statistic), axis=0)
    simulated = np.cumsum(np.asarray(result.test_distribution), axis=0)
    quantile = np.mean(simulated <= observed[:, None], axis=1)
    extra = {k: np.cumsum(np.asarray(v), axis=0) for k, v in result.extra.items()}
    return TestResult(
        f"Cumulative {result.name}",
        observed,
        quantile,
        simulated,
        np.cumsum(np.asarray(result.n_obs)),
        extra,
    )


def cumulative_l_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """L-test of windows 1..k pooled, for every k."""
    return cumulative(_as_windows(likelihood_test("L", rates, counts, n_sim=n_sim, seed=seed)))


def cumulative_cl_test(
    rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None
) -> TestResult:
    """CL-test of windows 1..k pooled (each window conditional on its observed number), for every k."""
    return cumulative(_as_windows(likelihood_test("CL", rates, counts, n_sim=n_sim, seed=seed)))


def cumulative_s_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """S-test of windows 1..k pooled (each window scaled to its observed number), for every k."""
    return cumulative(_as_windows(likelihood_test("S", rates, counts, n_sim=n_sim, seed=seed)))


def cumulative_m_test(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """M-test of windows 1..k pooled (each window scaled to its observed number), for every k."""
    return cumulative(_as_windows(likelihood_test("M", rates, counts, n_sim=n_sim, seed=seed)))


def _as_windows(result: TestResult) -> TestResult:
    """A single-window result as a one-window vectorised result."""
    if result.n_windows is not None:
        return result
    return replace(
        result,
        observed_statistic=np.atleast_1d(result.observed_statistic),
        quantile=np.asarray(result.quantile)[None],
        test_distribution=None if result.test_distribution is None else np.asarray(result.test_distribution)[None],
        n_obs=np.atleast_1d(result.n_obs),
        extra={k: np.atleast_1d(v) for k, v in result.extra.items()},
    )


# --- comparison tests (T, W) ----------------------------------------------------------------------------------------


def _paired(
    rates_a: np.ndarray, rates_b: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    a, c, batched_a = _batched(rates_a, counts)
    b, _, batched_b = _batched(rates_b, counts)
    if a.shape != b.shape:
        raise InputDataError(f"forecasts to compare differ in shape: {a.shape} vs {b.shape}")
    return a, b, c, batched_a or batched_b


def _t_arrays(
    s1: np.ndarray, s2: np.ndarray, n: np.ndarray, n1: np.ndarray, n2: np.ndarray, alpha: float
) -> dict[str, np.ndarray]:
    """Rhoades et al. (2011) eqs. 17-18 from the sufficient statistics sum(d), sum(d^2) of target events."""
    from scipy.special import stdtrit  # scipy.stats.t.ppf

    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (s1 - (n1 - n2)) / n
        variance = s2 / (n - 1) - s1**2 / (n**2 - n)
        std = np.sqrt(variance)
        t_stat = gain / (std / np.sqrt(n))
        t_crit = np.asarray(stdtrit(n - 1, 1 - alpha / 2), dtype=np.float64)
        half = t_crit * std / np.sqrt(n)
    return {
        "information_gain": gain,
        "t_statistic": t_stat,
        "t_critical": t_crit,
        "lower": gain - half,
        "upper": gain + half,
    }


def _t_result(name: str, parts: dict[str, np.ndarray], n: np.ndarray, alpha: float) -> TestResult:
    quantile = np.stack(
        [parts["t_statistic"], parts["t_critical"], np.full(np.shape(n), alpha, dtype=np.float64)], axis=-1
    )
    extra = {
        "t_statistic": parts["t_statistic"],
        "t_critical": parts["t_critical"],
        "alpha": alpha,
        "ig_lower": parts["lower"],
        "ig_upper": parts["upper"],
    }
    return TestResult(name, parts["information_gain"], quantile, None, n, extra)


def _t_sums(
    a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sum(d), sum(d^2) over target events (d = log a - log b at each event's bin), N, N_a, N_b per window."""
    w = a.shape[0]
    cf = c.reshape(w, -1)
    win, bins = np.nonzero(cf)
    weight = cf[win, bins]
    with np.errstate(invalid="ignore"):
        d = _log(a.reshape(w, -1)[win, bins]) - _log(b.reshape(w, -1)[win, bins])
    s1 = _wsum(win, weights=weight * d, minlength=w)
    s2 = _wsum(win, weights=weight * d * d, minlength=w)
    return s1, s2, _wsum(win, weights=weight, minlength=w), a.sum(axis=(1, 2)), b.sum(axis=(1, 2))


def t_test(rates_a: np.ndarray, rates_b: np.ndarray, counts: np.ndarray, alpha: float = 0.05) -> TestResult:
    """Paired T-test: information gain per event of forecast a over b with its (1 - alpha) interval.

    Positive means a is better. Target event rates are the rates of the bins holding events, once per event.
    """
    a, b, c, batched = _paired(rates_a, rates_b, counts)
    s1, s2, n, n1, n2 = _t_sums(a, b, c)
    result = _t_result(T_TEST, _t_arrays(s1, s2, n, n1, n2, alpha), n, alpha)
    return _unbatch(result, batched)


def cumulative_t_test(rates_a: np.ndarray, rates_b: np.ndarray, counts: np.ndarray, alpha: float = 0.05) -> TestResult:
    """T-test of windows 1..k pooled (target events of all k windows together), for every k."""
    a, b, c, _ = _paired(rates_a, rates_b, counts)
    sums = [np.cumsum(x) for x in _t_sums(a, b, c)]
    s1, s2, n, n1, n2 = sums
    return _t_result(f"Cumulative {T_TEST}", _t_arrays(s1, s2, n, n1, n2, alpha), n, alpha)


def w_test(rates_a: np.ndarray, rates_b: np.ndarray, counts: np.ndarray) -> TestResult:
    """Wilcoxon signed-rank W-test of the log-rate differences at target events around (N_a - N_b) / N.

    The observed statistic is the z value, the quantile the two-sided p-value (pyCSEP's normal approximation
    with the tie correction and without the continuity correction). Ranks are computed for all windows at once.
    """
    from scipy.special import ndtr  # scipy.stats.norm.sf(x) == ndtr(-x)

    a, b, c, batched = _paired(rates_a, rates_b, counts)
    w = a.shape[0]
    cf = c.reshape(w, -1)
    n = cf.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        median = (a.sum(axis=(1, 2)) - b.sum(axis=(1, 2))) / n
    win, bins = np.nonzero(cf)
    weight = cf[win, bins]
    la, lb = _log(a.reshape(w, -1)[win, bins]), _log(b.reshape(w, -1)[win, bins])
    d = (la - lb) - median[win]
    keep = d != 0
    win, weight, d = win[keep], weight[keep], d[keep]
    order = np.lexsort((np.abs(d), win))
    win, weight, d = win[order], weight[order], d[order]
    absd = np.abs(d)
    new_group = np.ones(d.size, dtype=bool)
    new_group[1:] = (win[1:] != win[:-1]) | (absd[1:] != absd[:-1])
    group = np.cumsum(new_group) - 1
    group_weight = _wsum(group, weights=weight)
    group_win = win[new_group]
    # rank of a tie group = events ranked before it in its window + (size + 1) / 2
    before_all = np.cumsum(group_weight) - group_weight
    window_start = np.zeros(w)
    count = _wsum(win, weights=weight, minlength=w)
    window_start[1:] = np.cumsum(count)[:-1]
    group_rank = before_all - window_start[group_win] + (group_weight + 1) / 2
    rank = group_rank[group]
    r_plus = _wsum(win, weights=weight * rank * (d > 0), minlength=w)
    r_minus = _wsum(win, weights=weight * rank * (d < 0), minlength=w)
    t = np.minimum(r_plus, r_minus)
    mn = count * (count + 1.0) * 0.25
    se = count * (count + 1.0) * (2.0 * count + 1.0)
    ties = _wsum(group_win, weights=group_weight * (group_weight**2 - 1), minlength=w)
    se = np.sqrt((se - 0.5 * ties) / 24)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (t - mn) / se
    p = 2.0 * ndtr(-np.abs(z))
    result = TestResult(W_TEST, z, np.asarray(p, dtype=np.float64), None, n, {"n_nonzero": count})
    return _unbatch(result, batched)


# --- Brier score ----------------------------------------------------------------------------------------------------


def _first_distinct(cum: np.ndarray, k: int, n_sim: int, rng: np.random.Generator) -> np.ndarray:
    """(n_sim, k) bins: the first k distinct bins of an iid sequence drawn from ``cum`` (pyCSEP's rejection loop)."""
    b = cum.size
    length = max(2 * k, 8)
    draws = np.searchsorted(cum, rng.random((n_sim, length)), side="right").clip(max=b - 1)
    while True:
        order = np.argsort(draws, axis=1, kind="stable")
        sorted_draws = np.take_along_axis(draws, order, axis=1)
        first_sorted = np.ones_like(sorted_draws, dtype=bool)
        first_sorted[:, 1:] = sorted_draws[:, 1:] != sorted_draws[:, :-1]
        first = np.zeros_like(first_sorted)
        np.put_along_axis(first, order, first_sorted, axis=1)  # first occurrence of each bin, in draw order
        if first.sum(axis=1).min() >= k:
            break
        more = np.searchsorted(cum, rng.random((n_sim, length)), side="right").clip(max=b - 1)
        draws = np.concatenate([draws, more], axis=1)
        length *= 2
    ranked = np.cumsum(first, axis=1)
    take = first & (ranked <= k)
    return np.asarray(draws[take].reshape(n_sim, k))


def brier_score(rates: np.ndarray, counts: np.ndarray, *, n_sim: int = 1000, seed: SeedLike = None) -> TestResult:
    """Brier score -2/(cells*mags) * sum (P(>=1 event) - 1{observed})^2 and pyCSEP's consistency test.

    Simulated catalogs activate as many distinct bins as were observed, drawn one after another in proportion
    to the rates (pyCSEP's rejection sampling); the quantile is the share of simulated scores <= observed.
    """
    r, c, batched = _batched(rates, counts)
    w = r.shape[0]
    p = -np.expm1(-r.reshape(w, -1))
    active = c.reshape(w, -1) > 0
    size = p.shape[1]
    observed = -2.0 * ((p - active) ** 2).sum(axis=1) / size
    rng = _rng(seed)
    base = (p**2).sum(axis=1)
    simulated = np.empty((w, n_sim))
    for i in range(w):  # the number of distinct active bins differs per window
        k = int(active[i].sum())
        if k == 0:
            simulated[i] = -2.0 * base[i] / size
            continue
        cum = np.cumsum(r[i].ravel()) / r[i].sum()
        bins = _first_distinct(cum, k, n_sim, rng)
        simulated[i] = -2.0 * (base[i] + (1.0 - 2.0 * p[i][bins]).sum(axis=1)) / size
    quantile = np.mean(simulated <= observed[:, None], axis=1)
    result = TestResult(BRIER_TEST, observed, quantile, simulated, c.sum(axis=(1, 2)), {})
    return _unbatch(result, batched)


# --- ROC, Molchan, area skill score --------------------------------------------------------------------------------


def _ranked_hits(rates: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Per alarm threshold (each cell's rate, highest first): alarmed cells, hit active cells, active cells.

    A threshold alarms every cell whose rate is >= it (ties together), as pyCSEP's ROC and Molchan diagrams.
    """
    r, c, batched = _batched(rates, counts)
    spatial = r.sum(axis=2)
    active = c.sum(axis=2) > 0
    order = np.argsort(-spatial, axis=1, kind="stable")
    ranked = np.take_along_axis(spatial, order, axis=1)
    hits = np.cumsum(np.take_along_axis(active, order, axis=1), axis=1)
    n_cells = spatial.shape[1]
    # alarmed count at threshold i = cells with rate >= ranked[i] = last position of ranked[i]'s tie run + 1
    run_end = np.empty_like(ranked, dtype=np.int64)
    for_end = np.ones_like(ranked, dtype=bool)
    for_end[:, :-1] = ranked[:, 1:] != ranked[:, :-1]
    idx = np.where(for_end, np.arange(n_cells), n_cells)
    run_end[:] = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    alarmed = run_end + 1
    hit = np.take_along_axis(hits, run_end, axis=1)
    return alarmed.astype(np.float64), hit.astype(np.float64), active.sum(axis=1).astype(np.float64), batched


def roc_curve(rates: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spatial ROC: false-alarm rate F and hit rate H per threshold, starting at (0, 0); (..., cells + 1)."""
    alarmed, hit, n_active, batched = _ranked_hits(rates, counts)
    n_cells = alarmed.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = hit / n_active[:, None]
        f = (alarmed - hit) / (n_cells - n_active)[:, None]
    zeros = np.zeros((alarmed.shape[0], 1))
    f, h = np.concatenate([zeros, f], axis=1), np.concatenate([zeros, h], axis=1)
    return (f, h) if batched else (f[0], h[0])


def molchan_curve(rates: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Molchan diagram: share of cells alarmed tau and miss rate nu per threshold, from (0, 1) to (1, 0)."""
    alarmed, hit, n_active, batched = _ranked_hits(rates, counts)
    w, n_cells = alarmed.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = 1.0 - hit / n_active[:, None]
    tau = alarmed / n_cells
    tau = np.concatenate([np.zeros((w, 1)), tau, np.ones((w, 1))], axis=1)
    nu = np.concatenate([np.ones((w, 1)), nu, np.zeros((w, 1))], axis=1)
    return (tau, nu) if batched else (tau[0], nu[0])


def area_skill_score(tau: np.ndarray, nu: np.ndarray) -> np.ndarray | float:
    """Area skill score: area under 1 - nu over tau in [0, 1] (0.5 for a random forecast, 1 for a perfect one).

    pyCSEP's Molchan plot shows this value clipped below at 0.5 and rounded to two decimals.
    """
    tau = np.asarray(tau, dtype=np.float64)
    nu = np.asarray(nu, dtype=np.float64)
    score = np.trapezoid(1.0 - nu, tau, axis=-1) / (tau[..., -1] - tau[..., 0])
    return float(score) if np.ndim(score) == 0 else np.asarray(score)
