"""Per cell and window features from history only: row ``w`` of :func:`history_features` is computed from
windows ``< w`` (the window being forecast and everything after it are never read)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.gr import b_value_from_counts
from geodl_hpc.forecasting.grid import SpaceMagGrid

DEFAULT_LOOKBACKS = (1, 3, 12, 36)


def feature_names(lookbacks: Sequence[int] = DEFAULT_LOOKBACKS) -> tuple[str, ...]:
    """Column names of :func:`history_features` for ``lookbacks`` (in windows)."""
    longest = max(lookbacks)
    return (
        *(f"log_count_{k}" for k in lookbacks),
        "log_mean_count_all",
        "log_windows_since_last",
        f"max_mag_excess_{longest}",
        f"log_neighbour_count_{min(lookbacks)}",
        f"log_neighbour_count_{longest}",
        f"log_region_count_{min(lookbacks)}",
        f"log_region_count_{longest}",
        "b_value_region",
    )


FEATURE_NAMES = feature_names(DEFAULT_LOOKBACKS)


def _past_sums(per_window: np.ndarray, k: int) -> np.ndarray:
    """``out[w] = per_window[max(w - k, 0):w].sum(0)`` for every w (so ``out[0]`` is zero)."""
    cum = np.concatenate([np.zeros((1, *per_window.shape[1:]), per_window.dtype), np.cumsum(per_window, axis=0)])
    w = np.arange(per_window.shape[0])
    return cum[w] - cum[np.maximum(w - k, 0)]


def _neighbour_sum(values: np.ndarray, grid: SpaceMagGrid) -> np.ndarray:
    """Sum over the 8 neighbouring cells (outside the grid counts zero) of (n_windows, n_cells) values."""
    v = values.reshape(values.shape[0], grid.n_lon, grid.n_lat)
    padded = np.pad(v, ((0, 0), (1, 1), (1, 1)))
    total = np.zeros_like(v)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                total += padded[:, 1 + dx : 1 + dx + grid.n_lon, 1 + dy : 1 + dy + grid.n_lat]
    return total.reshape(values.shape)


def history_features(
    counts: np.ndarray, grid: SpaceMagGrid, lookbacks: Sequence[int] = DEFAULT_LOOKBACKS
) -> np.ndarray:
    """Features X float32 (n_windows, n_cells, n_features) named by :func:`feature_names`.

    ``counts`` (n_windows, n_cells, n_mags) from :func:`~geodl_hpc.forecasting.binning.bin_catalog`. Per cell:
    log1p counts over each look-back, log1p mean count per window so far, log1p windows since the last event,
    the largest magnitude bin seen over the longest look-back (edge above Mc plus one bin width; 0 if none),
    log1p counts in the 8 neighbouring cells and in the whole region over the shortest and longest look-backs,
    and the regional Aki-Utsu b-value of all past windows (1.0 until 10 events).
    """
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[1:] != (grid.n_cells, grid.n_mags):
        raise ConfigError(f"counts: shape {counts.shape} is not (n_windows, {grid.n_cells}, {grid.n_mags})")
    lookbacks = tuple(int(k) for k in lookbacks)
    if not lookbacks or min(lookbacks) < 1:
        raise ConfigError(f"features.lookbacks: {lookbacks} must be one or more positive window counts")
    n_w = counts.shape[0]
    total = counts.sum(axis=2).astype(np.float64)  # (W, C)
    shortest, longest = min(lookbacks), max(lookbacks)
    cols: list[np.ndarray] = []
    windowed = {k: _past_sums(total, k) for k in {*lookbacks, n_w}}
    cols += [np.log1p(windowed[k]) for k in lookbacks]
    w_idx = np.arange(n_w, dtype=np.float64)[:, None]
    cols.append(np.log1p(windowed[n_w] / np.maximum(w_idx, 1.0)))

    # windows since the last event: w - (last window < w with an event), w + 1 if none yet
    has = np.where(total > 0, np.arange(n_w)[:, None], -1)
    last = np.maximum.accumulate(has, axis=0)
    last_before = np.concatenate([np.full((1, grid.n_cells), -1), last[:-1]])
    cols.append(np.log1p(w_idx - last_before))

    # largest magnitude bin over the longest look-back
    occupied = counts > 0
    top = np.where(occupied.any(axis=2), grid.n_mags - 1 - np.argmax(occupied[:, :, ::-1], axis=2), -1)
    best = np.full((n_w, grid.n_cells), -1, dtype=np.int64)
    for k in range(1, longest + 1):
        best[k:] = np.maximum(best[k:], top[:-k]) if k < n_w else best[k:]
    cols.append(np.where(best >= 0, (best + 1) * grid.dm, 0.0))

    for k in (shortest, longest):
        cols.append(np.log1p(_neighbour_sum(windowed[k], grid)))
    for k in (shortest, longest):
        cols.append(np.broadcast_to(np.log1p(windowed[k].sum(axis=1, keepdims=True)), (n_w, grid.n_cells)))

    mag_hist = _past_sums(counts.sum(axis=1), n_w)  # (W, M) counts per magnitude bin in windows < w
    edges = np.asarray(grid.mag_edges)
    b = np.array([b_value_from_counts(mag_hist[w], edges) for w in range(n_w)])
    cols.append(np.broadcast_to(b[:, None], (n_w, grid.n_cells)))
    return np.stack(cols, axis=-1).astype(np.float32)
