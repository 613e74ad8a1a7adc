"""Trivial rules, weights of evidence and the Poisson point-process model, on small maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_hpc.evaluation.blockcv import EvaluationError, RasterData, pixel_predictor, train_mask_for
from geodl_hpc.evaluation.metrics import roc_auc
from geodl_hpc.evaluation.pointprocess import fit_poisson, intensity, ppm_predictor
from geodl_hpc.evaluation.rules import rule_predictor, rule_scores
from geodl_hpc.evaluation.woe import fit_patterns, woe_fit_predict


def _data(features: dict[str, np.ndarray], deposits: np.ndarray) -> RasterData:
    names = tuple(features)
    stack = np.stack([features[n] for n in names]).astype(np.float64)
    return RasterData(stack, names, deposits.astype(np.float64), np.ones(deposits.shape, bool))


def test_rule_is_lexicographic_and_keeps_ties() -> None:
    green = np.array([[1, 1, 0, 0]], float)
    dist = np.array([[5.0, 1.0, 0.0, 0.0]])
    data = _data({"greenstone": green, "dist_fault": dist}, np.zeros((1, 4)))
    s = rule_scores(data, ["greenstone", "-dist_fault"])
    # inside greenstone first (nearer fault first), then outside; the two outside cells tie
    assert s[0, 1] > s[0, 0] > s[0, 2] and s[0, 2] == s[0, 3]
    predict = rule_predictor(data, ["-dist_fault"])
    np.testing.assert_array_equal(
        predict(0, np.ones((1, 4), bool), np.ones((1, 4), bool)), -rule_scores(data, ["dist_fault"]) + 1
    )
    with pytest.raises(EvaluationError, match="layer 'nope'"):
        rule_scores(data, ["nope"])


def test_weights_of_evidence_matches_hand_counts() -> None:
    # 100 pixels, pattern B on 20 of them; 10 deposits, 8 of them on B
    x = np.zeros((100, 1))
    x[:20, 0] = 1.0
    y = np.zeros(100, np.int8)
    y[:8] = 1
    y[20:22] = 1
    (p,) = fit_patterns(x, y)
    assert p.threshold == 0.5 and not p.below  # indicator layer: present where >= 0.5
    a, b, c, e = 8.5, 12.5, 2.5, 78.5
    assert p.w_plus == pytest.approx(np.log((a / (a + c)) / (b / (b + e))))
    assert p.w_minus == pytest.approx(np.log((c / (a + c)) / (e / (b + e))))
    prob = woe_fit_predict(x, y, np.array([[1.0], [0.0]]))
    assert prob[0] > 0.3 > 0.05 > prob[1]


def test_poisson_fit_recovers_known_intensity() -> None:
    """Counts drawn from log lambda = -3 + 1.2 z on 40,000 pixels: the ML fit finds the coefficients."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40_000, 1))
    counts = rng.poisson(np.exp(-3 + 1.2 * z[:, 0]))
    fit = fit_poisson(z, counts)
    slope = fit.coef[1] / fit.std[0]
    intercept = fit.coef[0] - slope * fit.mean[0]
    assert slope == pytest.approx(1.2, abs=0.05) and intercept == pytest.approx(-3.0, abs=0.05)
    lam = intensity(fit, z)
    assert lam.sum() == pytest.approx(counts.sum(), rel=1e-6)  # ML with an intercept matches the total count
    with pytest.raises(EvaluationError, match="no deposits"):
        fit_poisson(z, np.zeros(len(z)))


def test_ppm_and_woe_rank_a_real_signal_in_block_cv() -> None:
    rng = np.random.default_rng(2)
    h = w = 60
    dist = rng.uniform(0, 10, size=(h, w))
    deposits = rng.poisson(0.2 * np.exp(-dist)).astype(float)
    data = _data({"dist": dist, "noise": rng.normal(size=(h, w))}, deposits)
    folds = (np.arange(w)[None, :] // 30).repeat(h, axis=0)
    train, test = train_mask_for(folds, data.valid, [1]), folds == 1
    for predict in (ppm_predictor(data), pixel_predictor(data, woe_fit_predict)):
        p = np.full((h, w), np.nan)
        p[test] = predict(1, train, test)
        assert roc_auc(p, deposits, test) > 0.8


def test_buffered_training_mask_leaves_a_gap() -> None:
    folds = np.repeat(np.arange(4)[None, :], 3, axis=0).repeat(5, axis=1)  # (3, 20): 4 vertical strips
    valid = np.ones(folds.shape, bool)
    plain = train_mask_for(folds, valid, [1])
    gapped = train_mask_for(folds, valid, [1], gap=2)
    assert plain.sum() == 45 and not plain[:, 5:10].any()
    assert not gapped[:, 3:12].any() and gapped[:, :3].all() and gapped[:, 12:].all()
