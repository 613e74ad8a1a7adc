"""Poisson log-likelihood and information gain of gridded rate forecasts (pure numpy kernels)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def poisson_log_likelihood(rates: np.ndarray, observed: np.ndarray) -> float:
    """Joint Poisson log-likelihood of ``observed`` counts under expected counts ``rates`` (same shape)."""
    lam = np.asarray(rates, dtype=np.float64)
    n = np.asarray(observed, dtype=np.float64)
    if lam.shape != n.shape:
        raise ValueError(f"rates {lam.shape} and observed {n.shape} must have the same shape")
    with np.errstate(divide="ignore"):
        log_lam = np.where(n > 0, np.log(lam), 0.0)
    return float(np.sum(-lam + n * log_lam - gammaln(n + 1.0)))


def information_gain_per_event(ll_model: float, ll_reference: float, n_events: int) -> float:
    """(LL_model - LL_reference) / N: mean log-probability gain per observed event (nats)."""
    return (ll_model - ll_reference) / max(int(n_events), 1)
