"""Gutenberg-Richter statistics: Aki-Utsu b-value estimates and magnitude-bin fractions (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LOG10_E = float(np.log10(np.e))
DEFAULT_B = 1.0  # used when too few events constrain b


def b_value(magnitudes: np.ndarray, mc: float, dm: float = 0.0) -> float:
    """Aki (1965) maximum-likelihood b of magnitudes ``>= mc``, with Utsu's (1966) correction ``mc - dm/2`` for
    magnitudes rounded to ``dm`` (``dm=0``: continuous magnitudes). NaN when fewer than 2 events."""
    m = np.asarray(magnitudes, dtype=np.float64)
    m = m[m >= mc - 1e-9]
    if m.size < 2:
        return float("nan")
    excess = float(m.mean()) - (mc - dm / 2.0)
    return LOG10_E / excess if excess > 0 else float("nan")


def b_value_from_counts(mag_counts: np.ndarray, mag_edges: np.ndarray, *, min_events: int = 10) -> float:
    """Aki-Utsu b from counts per magnitude bin (lower ``mag_edges``, last open): each event sits at its bin
    centre, the completeness level is the first lower edge. :data:`DEFAULT_B` with fewer than ``min_events``."""
    counts = np.asarray(mag_counts, dtype=np.float64)
    edges = np.asarray(mag_edges, dtype=np.float64)
    n = float(counts.sum())
    if n < min_events:
        return DEFAULT_B
    dm = float(edges[1] - edges[0]) if edges.size > 1 else 0.1
    mean = float((counts * (edges + dm / 2.0)).sum() / n)
    excess = mean - float(edges[0])
    return LOG10_E / excess if excess > 0 else DEFAULT_B


def gr_fractions(b: float, mag_edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """Fraction of events ``>= mag_edges[0]`` in each magnitude bin under GR with ``b`` (sums to 1)."""
    edges = np.asarray(mag_edges, dtype=np.float64)
    survival = 10.0 ** (-b * (edges - edges[0]))
    return np.append(survival[:-1] - survival[1:], survival[-1])
