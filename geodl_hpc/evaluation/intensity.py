"""Scoring intensity (MMI) predictions on held-out stations: spatial-block splits, RMSE/bias with bootstrap
intervals over stations, Gaussian CRPS and central-interval coverage. Pure numpy kernels."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, erfinv


def block_ids(x_km: np.ndarray, y_km: np.ndarray, block_km: float) -> np.ndarray:
    """An integer id per point for the square spatial block (side ``block_km``) it falls in."""
    bx = np.floor(np.asarray(x_km) / block_km).astype(np.int64)
    by = np.floor(np.asarray(y_km) / block_km).astype(np.int64)
    _, ids = np.unique(np.stack([bx, by], axis=1), axis=0, return_inverse=True)
    return ids.ravel()


def conditioning_split(blocks: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the points that condition: a fixed ``share`` of each block (at least one where a block has two)."""
    rng = np.random.default_rng(seed)
    cond = np.zeros(len(blocks), dtype=bool)
    for block in np.unique(blocks):
        idx = np.flatnonzero(blocks == block)
        k = round(share * len(idx))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        cond[rng.permutation(idx)[:k]] = True
    return cond


def crps_gaussian(obs: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """CRPS of a normal predictive distribution at each observation (Gneiting et al. 2005, closed form)."""
    z = (obs - mean) / std
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + erf(z / math.sqrt(2)))
    return std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def gaussian_coverage(obs: np.ndarray, mean: np.ndarray, std: np.ndarray, level: float) -> np.ndarray:
    """Whether each observation lies in the central ``level`` interval of its normal predictive distribution."""
    half = math.sqrt(2) * float(erfinv(level)) * std
    return np.abs(obs - mean) <= half


def bootstrap_stats(residual: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """RMSE and bias of ``residual`` (obs - pred) with 95 % percentile intervals over stations resampled."""
    r = np.asarray(residual, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(r), size=(n_boot, len(r)))
    rmse_b = np.sqrt((r[idx] ** 2).mean(axis=1))
    bias_b = r[idx].mean(axis=1)
    return {
        "n": len(r),
        "rmse": float(np.sqrt((r**2).mean())),
        "rmse_lo": float(np.percentile(rmse_b, 2.5)),
        "rmse_hi": float(np.percentile(rmse_b, 97.5)),
        "bias": float(r.mean()),
        "bias_lo": float(np.percentile(bias_b, 2.5)),
        "bias_hi": float(np.percentile(bias_b, 97.5)),
    }


def paired_rmse_ratio(res_a: np.ndarray, res_b: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """RMSE(a) / RMSE(b) on the same stations, with a paired 95 % bootstrap interval."""
    a, b = np.asarray(res_a, float), np.asarray(res_b, float)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    ratio = np.sqrt((a[idx] ** 2).mean(axis=1) / (b[idx] ** 2).mean(axis=1))
    point = math.sqrt(float((a**2).mean() / (b**2).mean()))
    return {"ratio": point, "lo": float(np.percentile(ratio, 2.5)), "hi": float(np.percentile(ratio, 97.5))}
