"""Weights of evidence (Bonham-Carter 1994): binary evidence patterns, W+ / W- and the posterior log-odds.

Each layer becomes one binary pattern ``layer <= t`` or ``layer >= t``: on the training pixels only, the
threshold and direction with the largest studentised contrast ``C / s(C)`` among the layer's deciles (and 0.5 for
0/1 indicator layers). With ``D`` the deposit pixels and ``B`` the pattern,
``W+ = ln P(B|D)/P(B|~D)``, ``W- = ln P(~B|D)/P(~B|~D)`` (counts + 0.5), and the posterior log-odds of a pixel is
the prior log-odds plus ``W+`` or ``W-`` of every layer (conditional independence assumed, as in the method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUANTILES = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


@dataclass(frozen=True)
class Pattern:
    """One layer's binary pattern and its weights."""

    layer: int
    threshold: float
    below: bool  # pattern present where value <= threshold (else >=)
    w_plus: float
    w_minus: float
    studentised: float


def _weights(present: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    d = y > 0
    n_bd, n_b = float((present & d).sum()), float(present.sum())
    n_d, n = float(d.sum()), float(len(y))
    a, b = n_bd + 0.5, n_b - n_bd + 0.5  # B&D, B&~D
    c, e = n_d - n_bd + 0.5, n - n_b - (n_d - n_bd) + 0.5  # ~B&D, ~B&~D
    w_plus = np.log((a / (a + c)) / (b / (b + e)))
    w_minus = np.log((c / (a + c)) / (e / (b + e)))
    s = np.sqrt(1 / a + 1 / b + 1 / c + 1 / e)
    return float(w_plus), float(w_minus), float((w_plus - w_minus) / s)


def fit_patterns(x: np.ndarray, y: np.ndarray) -> list[Pattern]:
    """The best pattern of every column of ``x`` (training rows) for labels ``y``."""
    patterns = []
    for j in range(x.shape[1]):
        col = x[:, j]
        values = np.unique(col)
        candidates = [0.5] if len(values) <= 2 else sorted(set(np.quantile(col, QUANTILES).tolist()))
        best: Pattern | None = None
        for t in candidates:
            for below in (True, False):
                present = col <= t if below else col >= t
                if present.all() or not present.any():
                    continue
                wp, wm, st = _weights(present, y)
                if best is None or st > best.studentised:
                    best = Pattern(j, float(t), below, wp, wm, st)
        if best is not None:
            patterns.append(best)
    return patterns


def posterior(x: np.ndarray, patterns: list[Pattern], prior: float) -> np.ndarray:
    """Posterior probability per row of ``x``."""
    logit = np.full(len(x), np.log(prior / (1 - prior)))
    for p in patterns:
        col = x[:, p.layer]
        present = col <= p.threshold if p.below else col >= p.threshold
        logit += np.where(present, p.w_plus, p.w_minus)
    return 1.0 / (1.0 + np.exp(-logit))


def woe_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Weights of evidence as a ``fit_predict`` (see :func:`geodl_hpc.evaluation.blockcv.pixel_predictor`)."""
    prior = (float((y_train > 0).sum()) + 0.5) / (len(y_train) + 1.0)
    return posterior(x_test, fit_patterns(x_train, y_train), prior)
