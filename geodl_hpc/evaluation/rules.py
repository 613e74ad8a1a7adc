"""Untrained ranking rules: the trivial baselines every prospectivity model must beat.

A rule is a list of signed layers read lexicographically: ``["greenstone", "-dist_fault"]`` ranks every cell in
greenstone above every cell outside it and, within each group, nearer faults first. ``["-dist_greenstone"]`` is
minus the distance to greenstone. Ties stay ties (the metrics give them half credit), so a rule never borrows
order from the raster layout. Rules learn nothing, so they score the same on every fold: their out-of-fold map
is the rule's map itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from geodl_hpc.evaluation.blockcv import EvaluationError, FoldPredictor, RasterData


def _key(term: str) -> tuple[str, float]:
    term = term.strip()
    sign = -1.0 if term.startswith("-") else 1.0
    return term.lstrip("+-").strip(), sign


def dense_ranks(values: np.ndarray) -> np.ndarray:
    """0-based dense ranks of a 1-D array (equal values share a rank)."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.float64)


def rule_scores(data: RasterData, terms: Sequence[str], *, grids: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """The rule's score map: higher = more prospective, lexicographic over ``terms`` (NaN off ``data.valid``).

    Layers come from ``data.features`` (or ``grids``, extra maps on the same grid, e.g. a mask not used as a
    feature)."""
    if not terms:
        raise EvaluationError("rules: a rule needs at least one layer, e.g. ['greenstone', '-dist_fault']")
    valid = data.valid
    score = np.zeros(int(valid.sum()))
    for term in terms:
        name, sign = _key(term)
        if grids is not None and name in grids:
            layer = np.asarray(grids[name], dtype=np.float64)
        elif name in data.layers:
            layer = data.features[data.layers.index(name)]
        else:
            raise EvaluationError(f"rules: layer {name!r} of rule {list(terms)} is not among {', '.join(data.layers)}")
        ranks = dense_ranks(sign * layer[valid])
        score = score * (ranks.max() + 1.0) + ranks
        score = dense_ranks(score)  # keep numbers small and exact, whatever the number of terms
    out = np.full(data.shape, np.nan)
    out[valid] = score / max(score.max(), 1.0)
    return out


def rule_predictor(data: RasterData, terms: Sequence[str]) -> FoldPredictor:
    """A fold predictor of a rule: the same map on every fold (nothing is fitted)."""
    scores = rule_scores(data, terms)

    def predict(fold: int, train_mask: np.ndarray, test_mask: np.ndarray) -> np.ndarray:
        return scores

    return predict
