"""Intensity scoring kernels: block splits, CRPS, coverage, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from geodl_hpc.evaluation import intensity


def test_blocks_and_conditioning_share() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 100, 400), rng.uniform(0, 100, 400)
    blocks = intensity.block_ids(x, y, 50.0)
    assert len(np.unique(blocks)) == 4
    cond = intensity.conditioning_split(blocks, 0.3, seed=1)
    for b in range(4):
        share = cond[blocks == b].mean()
        assert share == pytest.approx(0.3, abs=0.01)
    assert (cond == intensity.conditioning_split(blocks, 0.3, seed=1)).all()


def test_crps_matches_numerical_integral_and_coverage() -> None:
    obs, mu, sd = 1.3, 0.2, 0.7
    numeric, _ = integrate.quad(lambda t: (stats.norm.cdf(t, mu, sd) - (t >= obs)) ** 2, -20, 20, points=[obs])
    got = intensity.crps_gaussian(np.array([obs]), np.array([mu]), np.array([sd]))[0]
    assert got == pytest.approx(numeric, rel=1e-4)
    draws = np.random.default_rng(2).normal(size=20000)
    cov = intensity.gaussian_coverage(draws, np.zeros_like(draws), np.ones_like(draws), 0.9).mean()
    assert cov == pytest.approx(0.9, abs=0.01)


def test_bootstrap_interval_brackets_the_estimate() -> None:
    r = np.random.default_rng(3).normal(0.5, 1.0, 500)
    s = intensity.bootstrap_stats(r, n_boot=300)
    assert s["rmse_lo"] < s["rmse"] < s["rmse_hi"] and s["bias_lo"] < 0.5 < s["bias_hi"]
    ratio = intensity.paired_rmse_ratio(0.5 * r, r, n_boot=200)
    assert ratio["ratio"] == pytest.approx(0.5) and ratio["lo"] == pytest.approx(0.5)
