"""Prospectivity metrics as pure numpy kernels: ROC AUC, the success-rate curve and capture at top-k % of area.

Conventions shared by every kernel:

- ``scores`` is a map (any shape) where higher means more prospective; ``deposits`` holds deposit counts per
  pixel on the same grid (a 0/1 label map works too). A pixel is **positive** when ``deposits > 0``.
- Only **valid** pixels count: ``valid`` (when given) and a finite score. NaN scores are nodata, never a rank.
- **Ties** are never broken by pixel order. AUC gives tied pairs half credit (average ranks, as scikit-learn).
  The success-rate curve moves through a group of tied pixels in one straight step, which is the expected curve
  under a random order of the tied pixels; capture at a threshold inside a tie group takes that group's deposits
  pro rata (the same interpolation), so results do not depend on how the raster is laid out.
- The success-rate curve counts **deposits** (a pixel with 3 deposits weighs 3); AUC counts **pixels**.
"""

from __future__ import annotations

import numpy as np

from geodl_hpc.errors import GeodlError

TOP_FRACTIONS = (0.02, 0.05, 0.10)


class MetricError(GeodlError):
    """A metric is undefined for the given maps (names what is missing and what to change)."""


def _select(scores: np.ndarray, target: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Flattened scores and targets of valid pixels with finite scores."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if s.shape != t.shape:
        raise MetricError(f"scores {s.shape} and labels {t.shape}: must be maps of the same shape")
    keep = np.isfinite(s) & np.isfinite(t)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != s.shape:
            raise MetricError(f"valid mask {v.shape} and scores {s.shape}: must be maps of the same shape")
        keep &= v
    return s[keep], t[keep]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(scores: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None) -> float:
    """ROC AUC of ``scores`` for pixels with ``labels > 0`` against all other valid pixels (Mann-Whitney U)."""
    s, t = _select(scores, labels, valid)
    pos = t > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise MetricError(
            f"ROC AUC needs positive and negative pixels; got {n_pos} positive and {n_neg} negative valid pixels"
        )
    ranks = average_ranks(s)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_within(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> float:
    """ROC AUC restricted to pixels where ``mask`` is true (e.g. within greenstone)."""
    m = np.asarray(mask, dtype=bool)
    if m.shape != np.shape(scores):
        raise MetricError(f"mask {m.shape} and scores {np.shape(scores)}: must be maps of the same shape")
    return roc_auc(scores, labels, m if valid is None else m & np.asarray(valid, dtype=bool))


def success_rate_curve(
    scores: np.ndarray, deposits: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Success-rate (capture-efficiency) curve: ``(area, captured)`` fractions, pixels ranked by falling score.

    Points sit at the ends of tie groups, starting at ``(0, 0)`` and ending at ``(1, 1)``; both coordinates are
    non-decreasing. Linear interpolation between points is exact under the tie convention of this module.
    """
    s, d = _select(scores, deposits, valid)
    d = np.clip(d, 0.0, None)
    total = float(d.sum())
    if total <= 0:
        raise MetricError(f"success-rate curve needs deposits; the {len(s)} valid pixels hold none")
    order = np.argsort(-s, kind="stable")
    s_sorted, d_sorted = s[order], d[order]
    ends = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), len(s) - 1]  # last index of each tie group
    area = np.r_[0.0, (ends + 1) / len(s)]
    captured = np.r_[0.0, np.cumsum(d_sorted)[ends] / total]
    captured[-1] = 1.0  # exact despite float summation
    return area, captured


def capture_at(scores: np.ndarray, deposits: np.ndarray, fraction: float, valid: np.ndarray | None = None) -> float:
    """Share of deposits in the top ``fraction`` of the valid area (tie groups at the threshold pro rata)."""
    if not 0.0 <= fraction <= 1.0:
        raise MetricError(f"fraction={fraction}: must lie in [0, 1] (0.05 is the top 5 % of the area)")
    area, captured = success_rate_curve(scores, deposits, valid)
    return float(np.interp(fraction, area, captured))


def success_rate_auc(area: np.ndarray, captured: np.ndarray) -> float:
    """Area under a success-rate curve (0.5 for a random ranking)."""
    return float(np.sum(np.diff(area) * (captured[1:] + captured[:-1]) / 2.0))


def prospectivity_metrics(
    scores: np.ndarray,
    deposits: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> dict[str, float | None]:
    """The contract metrics of one map: ``auc_blockcv``, ``auc_within_greenstone`` (None without ``mask``),
    ``capture_top2pct``, ``capture_top5pct``, ``capture_top10pct``, plus ``success_rate_auc``."""
    area, captured = success_rate_curve(scores, deposits, valid)
    out: dict[str, float | None] = {
        "auc_blockcv": roc_auc(scores, deposits, valid),
        "auc_within_greenstone": None if mask is None else roc_auc_within(scores, deposits, mask, valid),
    }
    for frac in TOP_FRACTIONS:
        out[f"capture_top{round(frac * 100)}pct"] = float(np.interp(frac, area, captured))
    out["success_rate_auc"] = success_rate_auc(area, captured)
    return out
