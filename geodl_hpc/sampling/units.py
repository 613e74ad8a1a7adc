"""Read units (chunk-aligned blocks of a raster grid or a waveform record) and validity helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from geodl_hpc.errors import GeodlError

if TYPE_CHECKING:
    from geodl_hpc.archive.grid import GridSpec


class SamplingError(GeodlError):
    """A sampler or plan cannot be built from the given settings (names the setting and what to change)."""


@dataclass(frozen=True)
class UnitGrid:
    """Read units of a raster grid: blocks of ``unit_chunks x unit_chunks`` chunks of ``chunk`` pixels."""

    height: int
    width: int
    chunk: tuple[int, int]
    unit_chunks: int = 1

    def __post_init__(self) -> None:
        if self.unit_chunks < 1 or min(self.chunk) < 1:
            raise SamplingError(f"unit_chunks={self.unit_chunks}, chunk={self.chunk}: both must be positive")

    @property
    def unit_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of a full (non-edge) unit."""
        return (self.chunk[0] * self.unit_chunks, self.chunk[1] * self.unit_chunks)

    @property
    def n_units_yx(self) -> tuple[int, int]:
        """Units along y and x."""
        uy, ux = self.unit_shape
        return (math.ceil(self.height / uy), math.ceil(self.width / ux))

    @property
    def n_units(self) -> int:
        """Number of units."""
        ny, nx = self.n_units_yx
        return ny * nx

    def unit_of(self, positions: np.ndarray) -> np.ndarray:
        """Unit id of each ``(row, col)`` (the unit holding the chip's top-left pixel)."""
        pos = _positions(positions)
        uy, ux = self.unit_shape
        return (pos[:, 0] // uy) * self.n_units_yx[1] + pos[:, 1] // ux

    def window(self, unit: int) -> tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)`` of a unit (clipped at the grid edge)."""
        uy, ux = self.unit_shape
        iy, ix = divmod(int(unit), self.n_units_yx[1])
        return (iy * uy, min((iy + 1) * uy, self.height), ix * ux, min((ix + 1) * ux, self.width))

    def inside_unit(self, positions: np.ndarray, chip: int) -> np.ndarray:
        """True for chips of size ``chip`` that lie wholly inside one unit and the grid."""
        pos = _positions(positions)
        uy, ux = self.unit_shape
        r, c = pos[:, 0], pos[:, 1]
        ok = (r >= 0) & (c >= 0) & (r + chip <= self.height) & (c + chip <= self.width)
        return ok & ((r // uy) == ((r + chip - 1) // uy)) & ((c // ux) == ((c + chip - 1) // ux))


@dataclass(frozen=True)
class WaveUnits:
    """Read units of a waveform archive: ``unit_chunks`` consecutive time chunks of one station."""

    n_stations: int
    n_time: int
    chunk: int
    unit_chunks: int = 1

    @property
    def unit_len(self) -> int:
        """Samples per full unit."""
        return self.chunk * self.unit_chunks

    @property
    def units_per_station(self) -> int:
        """Units along time."""
        return math.ceil(self.n_time / self.unit_len)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return self.n_stations * self.units_per_station

    def unit_of(self, positions: np.ndarray) -> np.ndarray:
        """Unit id of each ``(station, start)``."""
        pos = _positions(positions)
        return pos[:, 0] * self.units_per_station + pos[:, 1] // self.unit_len

    def window(self, unit: int) -> tuple[int, int, int]:
        """``(station, start, stop)`` of a unit."""
        station, iu = divmod(int(unit), self.units_per_station)
        return (station, iu * self.unit_len, min((iu + 1) * self.unit_len, self.n_time))

    def inside_unit(self, positions: np.ndarray, window: int) -> np.ndarray:
        """True for windows of ``window`` samples inside one unit and the record."""
        pos = _positions(positions)
        s, t = pos[:, 0], pos[:, 1]
        ok = (s >= 0) & (s < self.n_stations) & (t >= 0) & (t + window <= self.n_time)
        return ok & ((t // self.unit_len) == ((t + window - 1) // self.unit_len))


def _positions(positions: Any) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.int64)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise SamplingError(f"positions: expected an (n, 2) integer array, got shape {pos.shape}")
    return pos


def to_pixels(length: float, grid: GridSpec | None = None, units: Literal["px", "crs"] = "px") -> int:
    """A length in pixels (``units="px"``) or CRS units (``"crs"``, needs ``grid``) as whole pixels."""
    if units == "px":
        return round(length)
    if grid is None:
        raise SamplingError(f"units='crs': a length of {length} CRS units needs the grid (GridSpec.from_archive)")
    return round(length / min(grid.resolution))


def xy_to_rowcol(grid: GridSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(row, col)`` pixel indices of CRS points (points off the grid get -1 rows)."""
    a, _, c, _, e, f = grid.transform
    cols = np.floor((np.asarray(x, dtype=np.float64) - c) / a).astype(np.int64)
    rows = np.floor((np.asarray(y, dtype=np.float64) - f) / e).astype(np.int64)
    off = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    rows[off] = -1
    return np.stack([rows, cols], axis=1)


def _integral(mask: np.ndarray) -> np.ndarray:
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=out[1:, 1:])
    return out


def _box_sum(table: np.ndarray, r: np.ndarray, c: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of the mask over boxes ``[r, r+h) x [c, c+w)`` clipped to the grid."""
    rows, cols = table.shape[0] - 1, table.shape[1] - 1
    r0, r1 = np.clip(r, 0, rows), np.clip(r + h, 0, rows)
    c0, c1 = np.clip(c, 0, cols), np.clip(c + w, 0, cols)
    out: np.ndarray = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return out


def valid_fraction(valid: np.ndarray, positions: np.ndarray, chip: int) -> np.ndarray:
    """Fraction of valid pixels in each chip, from a per-pixel boolean mask the caller loaded once."""
    pos = _positions(positions)
    table = _integral(np.asarray(valid, dtype=bool))
    return _box_sum(table, pos[:, 0], pos[:, 1], chip, chip) / float(chip * chip)
