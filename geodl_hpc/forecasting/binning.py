"""Catalog -> counts on the space-magnitude grid per time window (pure numpy after reading the table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.forecasting.grid import SpaceMagGrid, as_ms

if TYPE_CHECKING:
    import pandas as pd

MS_PER_DAY = 86_400_000


def window_edges(start: object, end: object, length_days: float) -> np.ndarray:
    """Edges (n_windows + 1,) datetime64[ms] of consecutive windows of ``length_days`` from ``start``.

    Only whole windows are kept: the last edge is the latest ``start + k * length`` not after ``end``.
    """
    t0 = as_ms(start)
    t1 = as_ms(end)
    step = round(float(length_days) * MS_PER_DAY)
    if step <= 0:
        raise ConfigError(f"window length_days: must be positive, got {length_days}")
    n = int((t1 - t0).astype(np.int64) // step)
    if n < 1:
        raise ConfigError(f"windows: [{t0}, {t1}) holds no whole window of {length_days} days; widen it")
    return t0 + np.arange(n + 1, dtype=np.int64) * np.timedelta64(step, "ms")


def event_times_ms(table: pd.DataFrame) -> np.ndarray:
    """The catalog's ``time`` column as datetime64[ms] (UTC, timezone dropped), truncated to the millisecond."""
    import pandas as pd

    times = pd.to_datetime(table["time"], utc=True)
    return times.dt.tz_convert(None).to_numpy().astype("datetime64[ms]")


def event_bins(table: pd.DataFrame, grid: SpaceMagGrid, edges: np.ndarray) -> np.ndarray:
    """Per event: window, cell and magnitude bin (n_events, 3) int64; any -1 means the event is not binned."""
    for name in ("time", "longitude", "latitude", "magnitude"):
        if name not in table.columns:
            raise InputDataError(f"catalog: no {name} column; read it with geodl_hpc.archive.catalog")
    edges = np.asarray(edges, dtype="datetime64[ms]")
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges.astype(np.int64)) <= 0):
        raise ConfigError("window edges: give at least two increasing datetime64 edges (see window_edges)")
    t = event_times_ms(table).astype(np.int64)
    e = edges.astype(np.int64)
    window = np.searchsorted(e, t, side="right") - 1
    window[(window < 0) | (window >= len(e) - 1)] = -1
    cell = grid.cell_of(table["longitude"].to_numpy(), table["latitude"].to_numpy())
    mag = grid.mag_bin(table["magnitude"].to_numpy())
    return np.column_stack([window, cell, mag]).astype(np.int64)


def bin_catalog(table: pd.DataFrame, grid: SpaceMagGrid, edges: np.ndarray) -> np.ndarray:
    """Event counts (n_windows, n_cells, n_mags) int64: window ``w`` holds events with ``edges[w] <= time <
    edges[w + 1]``; events outside the grid, the windows or below the first magnitude edge are not counted."""
    bins = event_bins(table, grid, edges)
    keep = (bins >= 0).all(axis=1)
    n_windows = len(edges) - 1
    flat = np.ravel_multi_index(tuple(bins[keep].T), (n_windows, grid.n_cells, grid.n_mags))
    counts = np.bincount(flat, minlength=n_windows * grid.n_cells * grid.n_mags)
    return counts.reshape(n_windows, grid.n_cells, grid.n_mags).astype(np.int64)
