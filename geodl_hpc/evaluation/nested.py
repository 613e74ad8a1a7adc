"""Nested spatial block CV as pure numpy kernels: inner out-of-fold maps, model selection, outer scores, spread.

The inner CV of outer fold ``k`` runs on the other folds' blocks only: for each inner fold ``j != k`` a model is
trained without folds ``{k, j}`` and scored on fold ``j``. A model trained without ``{k, j}`` serves both outer
``k`` (scored on ``j``) and outer ``j`` (scored on ``k``), so ``n`` folds need ``n (n - 1) / 2`` inner models per
candidate, not ``n (n - 1)``. Fold ``k`` itself never takes part in the choice made for it: the selected candidate
is then retrained without fold ``k`` only and scored on fold ``k`` (the outer, honest estimate).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from geodl_hpc.evaluation.blockcv import EvaluationError
from geodl_hpc.evaluation.metrics import prospectivity_metrics

SELECTION_KEYS = ("capture_top5pct", "auc_within_greenstone")
"""The inner score is the mean of these metrics: the two that issue 6 sets targets on (AUC alone saturates)."""


def held_out_pairs(n_folds: int) -> list[frozenset[int]]:
    """The ``{k, j}`` fold pairs whose models the inner CVs of all outer folds need, in a fixed order."""
    if n_folds < 3:
        raise EvaluationError(f"folds={n_folds}: nested CV needs at least 3 folds (2 inner folds per outer fold)")
    return [frozenset(p) for p in itertools.combinations(range(n_folds), 2)]


def inner_map(folds_map: np.ndarray, outer: int, pair_maps: Mapping[frozenset[int], np.ndarray]) -> np.ndarray:
    """Inner out-of-fold map of outer fold ``outer``: fold ``j`` predicted by the model trained without
    ``{outer, j}``; NaN on the outer fold (it takes no part in the inner CV)."""
    out = np.full(folds_map.shape, np.nan)
    for j in range(int(folds_map.max()) + 1):
        if j == outer:
            continue
        key = frozenset((outer, j))
        if key not in pair_maps:
            raise EvaluationError(f"nested CV: no inner model trained without folds {sorted(key)}")
        held = folds_map == j
        out[held] = np.asarray(pair_maps[key])[held]
    return out


def selection_score(metrics: Mapping[str, Any], keys: Sequence[str] = SELECTION_KEYS) -> float:
    """Mean of the selection ``keys`` of a metrics dict (NaN when one is missing)."""
    values = [metrics.get(k) for k in keys]
    if any(v is None for v in values):
        return math.nan
    return float(np.mean([float(v) for v in values]))  # type: ignore[arg-type]


def inner_scores(
    folds_map: np.ndarray,
    outer: int,
    pair_maps: Mapping[frozenset[int], np.ndarray],
    deposits: np.ndarray,
    valid: np.ndarray,
    mask: np.ndarray | None,
) -> dict[str, Any]:
    """Contract metrics of the inner out-of-fold map of ``outer``, on the other folds' valid pixels only."""
    scores = inner_map(folds_map, outer, pair_maps)
    metrics: dict[str, Any] = dict(
        prospectivity_metrics(scores, deposits, valid=valid & (folds_map != outer), mask=mask)
    )
    metrics["score"] = selection_score(metrics)
    return metrics


def select(scores: Sequence[float]) -> int:
    """Index of the best finite score; ties go to the earliest candidate (list simpler candidates first)."""
    finite = [(s, -i) for i, s in enumerate(scores) if math.isfinite(s)]
    if not finite:
        raise EvaluationError("nested CV: no candidate has a finite inner score; check the fold deposits")
    return -max(finite)[1]


def nested_map(folds_map: np.ndarray, chosen: Sequence[int], outer_maps: Sequence[np.ndarray]) -> np.ndarray:
    """The nested out-of-fold map: fold ``k`` predicted by candidate ``chosen[k]``'s model trained without ``k``."""
    out = np.full(folds_map.shape, np.nan)
    for k, c in enumerate(chosen):
        held = folds_map == k
        out[held] = np.asarray(outer_maps[c])[held]
    return out


def nested_selection(
    folds_map: np.ndarray,
    candidates: Sequence[str],
    fit_map: Callable[[int, frozenset[int]], np.ndarray],
    deposits: np.ndarray,
    valid: np.ndarray,
    mask: np.ndarray | None,
) -> dict[str, Any]:
    """Run nested block CV over ``candidates``; ``fit_map(c, held_out)`` trains candidate ``c`` without the
    folds ``held_out`` and returns its full probability map (cache it: each is asked for once).

    Returns the inner metrics per outer fold and candidate, the chosen candidate per outer fold, the nested
    out-of-fold map and each candidate's plain (non-nested) out-of-fold map."""
    n = int(folds_map.max()) + 1
    pairs = held_out_pairs(n)
    inner: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    outer_maps: list[np.ndarray] = []
    for c in range(len(candidates)):
        pair_maps = {p: fit_map(c, p) for p in pairs}
        for k in range(n):
            inner[k].append(inner_scores(folds_map, k, pair_maps, deposits, valid, mask))
        own = [fit_map(c, frozenset((k,))) for k in range(n)]
        outer_maps.append(_own_oof(folds_map, own))
    chosen = [select([m["score"] for m in inner[k]]) for k in range(n)]
    return {
        "inner": inner,
        "chosen": chosen,
        "nested": nested_map(folds_map, chosen, outer_maps),
        "plain": outer_maps,
    }


def _own_oof(folds_map: np.ndarray, maps: Sequence[np.ndarray]) -> np.ndarray:
    """Out-of-fold map from one full map per fold (fold ``k`` taken from ``maps[k]``)."""
    return nested_map(folds_map, list(range(len(maps))), maps)


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample std (ddof=1; 0 for one value), min, max and n of the finite values."""
    v = np.array([float(x) for x in values if x is not None and math.isfinite(float(x))])
    if len(v) == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "min": float(v.min()), "max": float(v.max()), "n": len(v)}
