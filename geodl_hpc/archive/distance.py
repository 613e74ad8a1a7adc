"""Distances from pixel centres to many straight segments: planar in a projected CRS, great-circle metres on a
geographic one (so ``*_distance`` layers are in metres on an EPSG:4326 grid too)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from geodl_hpc.archive.grid import GridSpec

#: Mean Earth radius (IUGG R1), the sphere geographic distances are measured on.
EARTH_RADIUS_M = 6_371_008.8


class DistanceIndex(Protocol):
    """Distance of points ``(x, y)`` in the grid's CRS to the nearest indexed segment, in ``units``."""

    units: str

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray: ...


def _samples(segments: np.ndarray, step: float, cap: float = 4e6) -> tuple[np.ndarray, np.ndarray, float]:
    """Points along each segment at most ``step`` apart (ends included), their segment and the step used."""
    lengths = np.hypot(*(segments[:, 1] - segments[:, 0]).T)
    step = max(step, float(lengths.sum()) / cap)  # keep the tree to a few million samples
    n = np.maximum(1, np.ceil(lengths / step)).astype(np.int64) + 1  # samples per segment, ends included
    owner = np.repeat(np.arange(len(segments)), n)
    first = np.repeat(np.cumsum(n) - n, n)
    t = (np.arange(owner.size) - first) / (n[owner] - 1)
    p0, p1 = segments[owner, 0], segments[owner, 1]
    return p0 + (p1 - p0) * t[:, None], owner, step


class SegmentIndex:
    """Planar distance from points to the nearest of many straight segments.

    A k-d tree over points sampled along the segments (at most ``step`` apart, end points included) finds
    candidate segments; the exact point-to-segment distance to the candidates is returned. The result is
    exact unless none of the ``k`` nearest samples lies on the nearest segment, and never more than
    ``step / 2`` too large.
    """

    def __init__(self, segments: np.ndarray, step: float, k: int = 4, units: str = "m") -> None:
        from scipy.spatial import cKDTree

        self.segments = segments
        self.units = units
        samples, self._owner, _ = _samples(segments, step)
        self._tree = cKDTree(samples)
        self._k = min(k, self._owner.size)

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance of each point ``(x[i], y[i])`` to the nearest segment (float64)."""
        _, idx = self._tree.query(np.column_stack([x, y]), k=self._k)
        idx = idx.reshape(len(x), self._k)
        seg = self.segments[self._owner[idx]]  # (n, k, 2, 2)
        a, b = seg[..., 0, :], seg[..., 1, :]
        p = np.stack([x, y], axis=-1)[:, None, :]
        ab = b - a
        denom = (ab * ab).sum(-1)
        t = np.where(denom > 0, ((p - a) * ab).sum(-1) / np.where(denom > 0, denom, 1.0), 0.0)
        closest = a + ab * np.clip(t, 0.0, 1.0)[..., None]
        return np.sqrt(((p - closest) ** 2).sum(-1)).min(axis=1)


def unit_vectors(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """``(n, 3)`` points on the unit sphere of longitudes and latitudes in degrees."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


class SphereSegmentIndex:
    """Great-circle distance in metres from ``(lon, lat)`` points to segments given in degrees.

    Segments are densified in longitude/latitude at most ``step`` degrees apart (a quarter pixel), and the nearest
    sample on the unit sphere (chord distance in a k-d tree) gives the arc length. The result is never more than
    half a sample spacing (an eighth of a pixel) too large; segments follow straight lines in lon/lat, as they are
    drawn on the grid.
    """

    units = "m"

    def __init__(self, segments: np.ndarray, step: float) -> None:
        from scipy.spatial import cKDTree

        samples, _, _ = _samples(segments, step)
        self._tree = cKDTree(unit_vectors(samples[:, 0], samples[:, 1]))

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        chord, _ = self._tree.query(unit_vectors(x, y), k=1)
        return 2.0 * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0)) * EARTH_RADIUS_M


def distance_index(segments: np.ndarray, grid: GridSpec, units: str) -> DistanceIndex:
    """The index for ``grid``: great-circle metres when its CRS is geographic, else planar CRS units."""
    step = min(grid.resolution) / 4.0
    if grid.crs.is_geographic:
        return SphereSegmentIndex(segments, step)
    return SegmentIndex(segments, step, units=units)
