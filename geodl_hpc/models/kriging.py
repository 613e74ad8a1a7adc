"""Conditioning a prior intensity field on observed points by ordinary kriging of residuals (as ShakeMap does).

The residual obs - prior is modelled as an unknown event term (the mean, estimated by ordinary kriging) plus a
zero-mean field with exponential covariance sill * exp(-d / range) and an independent nugget (observation
error). This is the shape of Worden et al. (2018, BSSA 108(2), 866-875) with a simpler covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KrigingResult:
    """Posterior mean and standard deviation of the residual at the target points."""

    mean: np.ndarray
    std: np.ndarray


def fit_variance(residual: np.ndarray, nugget_share: float = 0.3) -> tuple[float, float]:
    """Sill and nugget from the conditioning residuals' variance (nugget a fixed share of it)."""
    var = float(np.var(residual)) if residual.size > 1 else 1.0
    var = max(var, 1e-3)
    return (1.0 - nugget_share) * var, nugget_share * var


def krige_residuals(
    obs_xy: np.ndarray,
    residual: np.ndarray,
    target_xy: np.ndarray,
    *,
    range_km: float = 30.0,
    sill: float = 0.5,
    nugget: float = 0.2,
) -> KrigingResult:
    """Ordinary kriging of ``residual`` at ``obs_xy`` (n, 2; km) onto ``target_xy`` (m, 2; km)."""
    n = len(obs_xy)
    if n == 0:
        zeros = np.zeros(len(target_xy))
        return KrigingResult(zeros, np.full(len(target_xy), np.sqrt(sill + nugget)))
    d = np.hypot(*(obs_xy[:, None, :] - obs_xy[None, :, :]).transpose(2, 0, 1))
    cov = sill * np.exp(-d / range_km) + nugget * np.eye(n)
    system = np.zeros((n + 1, n + 1))
    system[:n, :n] = cov
    system[:n, n] = system[n, :n] = 1.0
    dt = np.hypot(*(obs_xy[:, None, :] - target_xy[None, :, :]).transpose(2, 0, 1))
    rhs = np.ones((n + 1, len(target_xy)))
    rhs[:n] = sill * np.exp(-dt / range_km)
    weights = np.linalg.solve(system, rhs)
    mean = weights[:n].T @ residual
    var = sill + nugget - np.einsum("ij,ij->j", weights[:n], rhs[:n]) - weights[n]
    return KrigingResult(mean, np.sqrt(np.maximum(var, nugget)))
