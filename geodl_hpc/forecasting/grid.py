"""The CSEP-style space-magnitude grid: regular lon/lat cells of side ``dh`` degrees and magnitude lower edges.

Edge conventions follow pyCSEP (``csep.utils.calc.bin1d_vec``): a bin holds ``[edge, next edge)`` with a
floating-point round-off tolerance; the last magnitude bin is open-ended; points outside the grid, or below the
first magnitude edge, get index -1. Cells are ordered lon-major (latitude varies fastest), as pyCSEP's
``global_region`` orders them; ``origins`` are the lower-left corners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.evaluation.csep.forecast import GriddedForecast, bin1d

if TYPE_CHECKING:
    from collections.abc import Sequence

KM_PER_DEGREE = 111.19492664455873  # great-circle km per degree on a sphere of radius 6371 km


def as_ms(value: Any) -> np.datetime64:
    """A time (string, datetime, datetime64) as numpy datetime64[ms]."""
    return np.datetime64(value, "ms")


def bin_index(points: np.ndarray, edges: np.ndarray, *, right_continuous: bool = False) -> np.ndarray:
    """Bin index of each point for equally spaced lower ``edges`` (pyCSEP's ``bin1d_vec`` rule), -1 outside
    and for non-finite points."""
    p = np.atleast_1d(np.asarray(points, dtype=np.float64))
    idx = np.full(p.shape, -1, dtype=np.int64)
    finite = np.isfinite(p)
    idx[finite] = bin1d(p[finite], edges, right_continuous=right_continuous)
    return idx


def _steps(lo: float, hi: float, step: float, what: str) -> int:
    n = (hi - lo) / step
    rounded = round(n)
    if rounded < 1 or abs(n - rounded) > 1e-6:
        raise ConfigError(f"grid.{what}: extent {hi - lo:g} is not a positive whole number of dh={step:g} cells")
    return int(rounded)


@dataclass(frozen=True)
class SpaceMagGrid:
    """A regular lon/lat grid over ``[lon_min, lon_max) x [lat_min, lat_max)`` with cells of side ``dh`` degrees,
    and magnitude bins with lower edges ``mag_edges`` (equally spaced, the last bin open-ended)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    dh: float
    mag_edges: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.dh > 0:
            raise ConfigError(f"grid.dh: must be positive, got {self.dh}")
        _steps(self.lon_min, self.lon_max, self.dh, "lon")
        _steps(self.lat_min, self.lat_max, self.dh, "lat")
        if not -90.0 <= self.lat_min < self.lat_max <= 90.0:
            raise ConfigError(f"grid.lat: [{self.lat_min}, {self.lat_max}) is not a latitude range")
        edges = np.asarray(self.mag_edges, dtype=np.float64)
        if edges.size < 1 or (edges.size > 1 and not np.allclose(np.diff(edges), edges[1] - edges[0])):
            raise ConfigError("grid.mag_edges: give one or more equally spaced, increasing magnitude lower edges")
        if edges.size > 1 and edges[1] <= edges[0]:
            raise ConfigError("grid.mag_edges: edges must increase")

    @classmethod
    def from_bbox(
        cls, bbox: Sequence[float], dh: float, mag_min: float, mag_max: float, dm: float = 0.1
    ) -> SpaceMagGrid:
        """Grid over ``bbox = (lon_min, lat_min, lon_max, lat_max)`` with magnitude edges ``mag_min .. mag_max``
        in steps of ``dm`` (both ends included as lower edges, as ``csep.core.regions.magnitude_bins``)."""
        lon_min, lat_min, lon_max, lat_max = (float(v) for v in bbox)
        n = round((mag_max - mag_min) / dm) + 1
        edges = tuple(round(mag_min + i * dm, 10) for i in range(max(n, 1)))
        return cls(lon_min, lon_max, lat_min, lat_max, float(dh), edges)

    # ---- geometry -------------------------------------------------------------------------------------------
    @property
    def n_lon(self) -> int:
        return _steps(self.lon_min, self.lon_max, self.dh, "lon")

    @property
    def n_lat(self) -> int:
        return _steps(self.lat_min, self.lat_max, self.dh, "lat")

    @property
    def n_cells(self) -> int:
        return self.n_lon * self.n_lat

    @property
    def n_mags(self) -> int:
        return len(self.mag_edges)

    @property
    def mc(self) -> float:
        """The lowest magnitude edge: the completeness magnitude of the forecast target."""
        return float(self.mag_edges[0])

    @property
    def dm(self) -> float:
        """Magnitude bin width (0.1 when there is only one, open-ended bin)."""
        return float(self.mag_edges[1] - self.mag_edges[0]) if self.n_mags > 1 else 0.1

    @property
    def xs(self) -> np.ndarray:
        """Cell lower longitudes (n_lon,)."""
        return np.round(self.lon_min + self.dh * np.arange(self.n_lon), 10)

    @property
    def ys(self) -> np.ndarray:
        """Cell lower latitudes (n_lat,)."""
        return np.round(self.lat_min + self.dh * np.arange(self.n_lat), 10)

    @property
    def origins(self) -> np.ndarray:
        """Lower-left corners (n_cells, 2) as lon, lat; cell ``i`` is ``(i // n_lat, i % n_lat)`` in (lon, lat)."""
        lon, lat = np.meshgrid(self.xs, self.ys, indexing="ij")
        return np.column_stack([lon.ravel(), lat.ravel()])

    @property
    def centers(self) -> np.ndarray:
        """Cell centres (n_cells, 2) as lon, lat."""
        return self.origins + self.dh / 2.0

    def cell_area_km2(self) -> np.ndarray:
        """Area of each cell (n_cells,) in km² on a sphere."""
        lat0 = np.radians(self.origins[:, 1])
        lat1 = np.radians(self.origins[:, 1] + self.dh)
        r = KM_PER_DEGREE * 180.0 / math.pi
        return r * r * np.radians(self.dh) * (np.sin(lat1) - np.sin(lat0))

    def cell_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Cell index of each point (int64), -1 outside the grid."""
        ix = bin_index(np.asarray(lon, dtype=np.float64), self.xs)
        iy = bin_index(np.asarray(lat, dtype=np.float64), self.ys)
        return np.where((ix >= 0) & (iy >= 0), ix * self.n_lat + iy, -1).astype(np.int64)

    def mag_bin(self, magnitude: np.ndarray) -> np.ndarray:
        """Magnitude bin of each value (int64); the last bin is open-ended, below the first edge is -1."""
        return bin_index(np.asarray(magnitude, dtype=np.float64), np.asarray(self.mag_edges), right_continuous=True)

    def cell_xy(self) -> np.ndarray:
        """Integer (ix, iy) position of each cell (n_cells, 2)."""
        i = np.arange(self.n_cells)
        return np.column_stack([i // self.n_lat, i % self.n_lat])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (provenance, checkpoints)."""
        return {
            "lon_min": self.lon_min,
            "lon_max": self.lon_max,
            "lat_min": self.lat_min,
            "lat_max": self.lat_max,
            "dh": self.dh,
            "mag_edges": list(self.mag_edges),
        }

    def to_forecast(self, rates: np.ndarray, start: np.datetime64, end: np.datetime64, name: str) -> GriddedForecast:
        """A CSEP ``GriddedForecast`` of expected counts ``rates`` (n_cells, n_mags) on this grid."""
        rates = np.asarray(rates, dtype=np.float64)
        if rates.shape != (self.n_cells, self.n_mags):
            raise ConfigError(f"rates: shape {rates.shape} does not match the grid ({self.n_cells}, {self.n_mags})")
        return GriddedForecast(
            rates=rates,
            origins=self.origins,
            dh=self.dh,
            mag_edges=np.asarray(self.mag_edges, dtype=np.float64),
            start=as_ms(start),
            end=as_ms(end),
            name=name,
        )
