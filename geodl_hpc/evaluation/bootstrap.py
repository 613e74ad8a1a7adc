"""Spatial block bootstrap of metric differences between out-of-fold maps, as pure numpy kernels.

The valid pixels are cut into rectangular bootstrap blocks; a replicate draws as many blocks as there are, with
replacement, and weighs every pixel by how often its block was drawn. Both models of a pair are scored on the
same replicates, so the interval of their difference accounts for the spatial correlation of errors (pixels of a
block move together) and for the pairing. The fitted maps are held fixed (the test-set bootstrap).

Weighted AUC needs no per-replicate sort: with ``U[a, b]`` the (tie-halved) count of positive pixels of block
``a`` scored above negative pixels of block ``b``, a replicate with block counts ``w`` has
``AUC = w U w / ((w . P)(w . N))``. Capture at the top ``f`` of the area sorts once and takes weighted cumulative
sums per replicate, interpolating inside tie groups as :mod:`geodl_hpc.evaluation.metrics` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geodl_hpc.evaluation.blockcv import EvaluationError


def block_index(shape: tuple[int, int], blocks: tuple[int, int]) -> np.ndarray:
    """Bootstrap block id of every pixel: ``blocks[0] x blocks[1]`` near-equal rectangles."""
    rows = np.minimum(np.arange(shape[0]) * blocks[0] // shape[0], blocks[0] - 1)
    cols = np.minimum(np.arange(shape[1]) * blocks[1] // shape[1], blocks[1] - 1)
    return rows[:, None] * blocks[1] + cols[None, :]


def replicate_weights(n_blocks: int, n_replicates: int, seed: int) -> np.ndarray:
    """``(R, B)`` draw counts: each row draws ``B`` blocks with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_blocks, size=(n_replicates, n_blocks))
    w = np.zeros((n_replicates, n_blocks))
    np.add.at(w, (np.repeat(np.arange(n_replicates), n_blocks), draws.ravel()), 1.0)
    return w


@dataclass(frozen=True)
class AucParts:
    """Block-level sufficient statistics of one map's AUC."""

    u: np.ndarray  # (B, B)
    pos: np.ndarray  # (B,)
    neg: np.ndarray  # (B,)


def auc_parts(scores: np.ndarray, positive: np.ndarray, blocks: np.ndarray, n_blocks: int) -> AucParts:
    """``U``, positives and negatives per block of flat arrays (valid pixels only)."""
    pos_mask = positive.astype(bool)
    neg_sorted = [np.sort(scores[~pos_mask & (blocks == b)]) for b in range(n_blocks)]
    s_pos, b_pos = scores[pos_mask], blocks[pos_mask]
    below = np.zeros((len(s_pos), n_blocks))
    for b, neg in enumerate(neg_sorted):
        lo = np.searchsorted(neg, s_pos, side="left")
        hi = np.searchsorted(neg, s_pos, side="right")
        below[:, b] = lo + 0.5 * (hi - lo)
    u = np.zeros((n_blocks, n_blocks))
    np.add.at(u, b_pos, below)
    return AucParts(
        u, np.bincount(b_pos, minlength=n_blocks).astype(float), np.array([len(n) for n in neg_sorted], float)
    )


def weighted_auc(parts: AucParts, w: np.ndarray) -> np.ndarray:
    """AUC per replicate row of ``w`` ((R, B)); all-ones weights give the plain AUC."""
    num = np.einsum("ra,ab,rb->r", w, parts.u, w)
    den = (w @ parts.pos) * (w @ parts.neg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def weighted_capture(
    scores: np.ndarray, deposits: np.ndarray, blocks: np.ndarray, w: np.ndarray, fractions: Sequence[float]
) -> np.ndarray:
    """``(R, len(fractions))`` share of (weighted) deposits in the top fraction of the (weighted) area."""
    order = np.argsort(-scores, kind="stable")
    s, d, b = scores[order], deposits[order], blocks[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
    out = np.empty((len(w), len(fractions)))
    for r, wr in enumerate(w):
        pw = wr[b]
        area = np.r_[0.0, np.cumsum(pw)[ends]]
        cap = np.r_[0.0, np.cumsum(pw * d)[ends]]
        if area[-1] <= 0 or cap[-1] <= 0:
            out[r] = np.nan
            continue
        out[r] = np.interp(np.asarray(fractions) * area[-1], area, cap) / cap[-1]
    return out


def metric_replicates(
    scores: np.ndarray,
    deposits: np.ndarray,
    valid: np.ndarray,
    blocks: np.ndarray,
    w: np.ndarray,
    *,
    masks: Mapping[str, np.ndarray] | None = None,
    fractions: Sequence[float] = (0.02, 0.05, 0.10),
) -> dict[str, np.ndarray]:
    """Every metric on every replicate (row 0 of ``w`` may be all ones for the observed value).

    Keys: ``auc_blockcv``, ``auc_within_<mask>`` for each mask, ``capture_top<k>pct``."""
    keep = valid & np.isfinite(scores)
    n_blocks = w.shape[1]
    s, d, bl = scores[keep], deposits[keep], blocks[keep]
    out = {"auc_blockcv": weighted_auc(auc_parts(s, d > 0, bl, n_blocks), w)}
    for name, mask in (masks or {}).items():
        m = mask[keep]
        out[f"auc_within_{name}"] = weighted_auc(auc_parts(s[m], d[m] > 0, bl[m], n_blocks), w)
    caps = weighted_capture(s, d, bl, w, fractions)
    for i, f in enumerate(fractions):
        out[f"capture_top{round(f * 100)}pct"] = caps[:, i]
    return out


def paired_differences(
    maps: Mapping[str, np.ndarray],
    reference: str,
    deposits: np.ndarray,
    valid: np.ndarray,
    blocks: np.ndarray,
    *,
    n_replicates: int = 1000,
    seed: int = 0,
    masks: Mapping[str, np.ndarray] | None = None,
    level: float = 0.95,
) -> dict[str, Any]:
    """Each model's metrics with block-bootstrap intervals, and its paired difference to ``reference``.

    Returns ``{"models": {name: {metric: {value, low, high}}}, "minus_<reference>": {name: {metric: {diff,
    low, high, p_le_0}}}}``; the observed values are the all-pixel ones (every block weighed once)."""
    if reference not in maps:
        raise EvaluationError(f"bootstrap: reference model {reference!r} is not among {', '.join(maps)}")
    n_blocks = int(blocks.max()) + 1
    w = np.vstack([np.ones((1, n_blocks)), replicate_weights(n_blocks, n_replicates, seed)])
    reps = {n: metric_replicates(m, deposits, valid, blocks, w, masks=masks) for n, m in maps.items()}
    alpha = (1 - level) / 2
    models: dict[str, Any] = {}
    diffs: dict[str, Any] = {}
    for name, metrics in reps.items():
        models[name] = {
            k: {"value": float(v[0]), "low": float(np.nanquantile(v[1:], alpha)),
                "high": float(np.nanquantile(v[1:], 1 - alpha))}
            for k, v in metrics.items()
        }  # fmt: skip
        if name == reference:
            continue
        diffs[name] = {}
        for k, v in metrics.items():
            delta = v - reps[reference][k]
            diffs[name][k] = {
                "diff": float(delta[0]),
                "low": float(np.nanquantile(delta[1:], alpha)),
                "high": float(np.nanquantile(delta[1:], 1 - alpha)),
                "p_le_0": float(np.nanmean(delta[1:] <= 0)),
            }
    return {
        "models": models,
        f"minus_{reference}": diffs,
        "bootstrap": {"blocks": n_blocks, "replicates": n_replicates, "seed": seed, "level": level},
    }
