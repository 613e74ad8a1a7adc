"""Metric kernels: AUC against scikit-learn (ties included), success-rate curve shape, exact top-k % capture."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from geodl_hpc.evaluation.metrics import (
    MetricError,
    average_ranks,
    capture_at,
    prospectivity_metrics,
    roc_auc,
    roc_auc_within,
    success_rate_curve,
)


@pytest.mark.parametrize("levels", [None, 5, 2])  # continuous scores, heavy ties, binary scores
def test_auc_matches_sklearn(levels: int | None) -> None:
    rng = np.random.default_rng(levels or 0)
    labels = (rng.random((40, 50)) < 0.05).astype(float) * rng.integers(1, 4, (40, 50))
    scores = rng.random((40, 50)) + 0.3 * (labels > 0)
    if levels:
        scores = np.floor(scores * levels)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels.ravel() > 0, scores.ravel()), abs=1e-12)


def test_auc_skips_invalid_and_nan_and_restricts_to_mask() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random((30, 30)) < 0.1).astype(float)
    scores = rng.random((30, 30)) + 0.5 * labels
    valid = rng.random((30, 30)) < 0.8
    scores_nan = np.where(rng.random((30, 30)) < 0.1, np.nan, scores)
    keep = valid & np.isfinite(scores_nan)
    want = roc_auc_score(labels[keep], scores_nan[keep])
    assert roc_auc(scores_nan, labels, valid) == pytest.approx(want)
    mask = np.zeros((30, 30), bool)
    mask[:15] = True
    want_mask = roc_auc_score(labels[keep & mask], scores_nan[keep & mask])
    assert roc_auc_within(scores_nan, labels, mask, valid) == pytest.approx(want_mask)


def test_average_ranks_share_ties() -> None:
    np.testing.assert_array_equal(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])


def test_auc_needs_both_classes() -> None:
    with pytest.raises(MetricError, match="0 positive"):
        roc_auc(np.ones((3, 3)), np.zeros((3, 3)))


def test_success_rate_curve_is_monotone_and_ends_at_one() -> None:
    rng = np.random.default_rng(1)
    deposits = rng.poisson(0.05, (60, 60)).astype(float)
    scores = np.round(rng.random((60, 60)) + 0.2 * deposits, 2)  # many ties
    area, captured = success_rate_curve(scores, deposits)
    assert (area[0], captured[0]) == (0.0, 0.0)
    assert (area[-1], captured[-1]) == (1.0, 1.0)
    assert np.all(np.diff(area) > 0) and np.all(np.diff(captured) >= 0)


def test_capture_top_k_exact_on_hand_made_map() -> None:
    # 20 pixels; the top 2 scores hold 3 of 4 deposits, the next score level is a 4-pixel tie holding 1 deposit.
    scores = np.array([9, 8, 5, 5, 5, 5, *(-np.arange(14))], dtype=float)
    deposits = np.zeros(20)
    deposits[[0, 1]] = [2, 1]
    deposits[4] = 1
    assert capture_at(scores, deposits, 0.05) == pytest.approx(0.5)  # 1 pixel: the 2 deposits of the top pixel
    assert capture_at(scores, deposits, 0.10) == pytest.approx(0.75)  # 2 pixels
    # 3 pixels: threshold inside the tie group of 4 pixels (1 deposit): 1 of 4 tied pixels -> 1/4 of its deposit
    assert capture_at(scores, deposits, 0.15) == pytest.approx((3 + 0.25) / 4)
    assert capture_at(scores, deposits, 0.30) == pytest.approx(1.0)  # the whole tie group is in
    # the result does not depend on where in the tie group the deposit sits
    moved = deposits.copy()
    moved[[4, 5]] = moved[[5, 4]]
    assert capture_at(scores, moved, 0.15) == capture_at(scores, deposits, 0.15)


def test_contract_metrics_in_unit_interval() -> None:
    rng = np.random.default_rng(2)
    deposits = (rng.random((50, 50)) < 0.02).astype(float)
    scores = rng.random((50, 50)) + deposits
    m = prospectivity_metrics(scores, deposits, mask=scores > 0.5)
    keys = ("auc_blockcv", "auc_within_greenstone", "capture_top2pct", "capture_top5pct", "capture_top10pct")
    for key in keys:
        value = m[key]
        assert value is not None and 0.0 <= value <= 1.0
