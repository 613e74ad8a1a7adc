"""Pure grid geometry of raster stacks: a north-up CRS grid, its pixel centres and its chunk windows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.errors import ArchiveError, ConfigError

Transform = tuple[float, float, float, float, float, float]

# Relative tolerance used when snapping bounds to whole pixels and comparing grids.
_EPS = 1e-9


def as_transform(values: Any) -> Transform:
    """Six floats ``(a, b, c, d, e, f)`` from an affine transform or sequence."""
    v = [float(x) for x in tuple(values)[:6]]
    if len(v) != 6:
        raise ConfigError(f"grid: transform needs 6 numbers (a, b, c, d, e, f), got {values!r}")
    return (v[0], v[1], v[2], v[3], v[4], v[5])


def parse_crs(crs: Any) -> tuple[str, int | None]:
    """WKT and EPSG code (or None) of a CRS given as ``EPSG:n``, an int, WKT, PROJ string or rasterio CRS."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if crs is None or (isinstance(crs, str) and not crs.strip()):
        raise ConfigError("crs: no CRS given; pass --crs EPSG:NNNN (e.g. EPSG:32750)")
    try:
        parsed = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    except CRSError:
        raise ConfigError(f"crs: unknown CRS {crs!r}; use an EPSG code such as EPSG:32750 or a WKT string") from None
    return parsed.to_wkt(), parsed.to_epsg()


@dataclass(frozen=True)
class GridSpec:
    """A north-up raster grid: CRS, affine transform ``(a, b, c, d, e, f)`` with ``b = d = 0``, ``e < 0``, and size."""

    crs_wkt: str
    crs_epsg: int | None
    transform: Transform
    width: int
    height: int

    def __post_init__(self) -> None:
        a, b, _c, d, e, _f = self.transform
        if b != 0 or d != 0 or not a > 0 or not e < 0:
            raise ConfigError(f"grid: transform {self.transform} is not north-up (need a > 0, b = d = 0, e < 0)")
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"grid: empty grid {self.width} x {self.height}; widen --bounds or lower --res")

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def resolution(self) -> tuple[float, float]:
        """``(xres, yres)``, both positive."""
        return (self.transform[0], -self.transform[4])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the pixel edges."""
        a, _, c, _, e, f = self.transform
        return (c, f + e * self.height, c + a * self.width, f)

    @property
    def crs(self) -> Any:
        """The grid's CRS as a ``rasterio.crs.CRS``."""
        from rasterio.crs import CRS

        return CRS.from_wkt(self.crs_wkt)

    @property
    def affine(self) -> Any:
        """The transform as an ``affine.Affine``."""
        from affine import Affine

        return Affine(*self.transform)

    def x_centres(self) -> np.ndarray:
        """x of the pixel centres, west to east (float64)."""
        a, _, c, _, _, _ = self.transform
        return c + a * (np.arange(self.width, dtype=np.float64) + 0.5)

    def y_centres(self) -> np.ndarray:
        """y of the pixel centres, north to south (descending, float64)."""
        _, _, _, _, e, f = self.transform
        return f + e * (np.arange(self.height, dtype=np.float64) + 0.5)

    def same_as(self, other: GridSpec) -> bool:
        """True when both grids have the same CRS, size and (within rounding) transform."""
        if (self.width, self.height) != (other.width, other.height):
            return False
        tol = _EPS * max(abs(v) for v in (*self.transform, *other.transform, 1.0))
        if any(abs(p - q) > tol for p, q in zip(self.transform, other.transform, strict=True)):
            return False
        return bool(self.crs == other.crs)

    def chunk_windows(self, chunk: int) -> Iterator[tuple[slice, slice]]:
        """Chunk-aligned ``(rows, cols)`` windows covering the grid, row by row."""
        if chunk <= 0:
            raise ConfigError(f"storage.chunk: must be a positive number of pixels, got {chunk}")
        for r0 in range(0, self.height, chunk):
            for c0 in range(0, self.width, chunk):
                yield slice(r0, min(r0 + chunk, self.height)), slice(c0, min(c0 + chunk, self.width))

    def n_windows(self, chunk: int) -> int:
        """Number of windows ``chunk_windows(chunk)`` yields."""
        return math.ceil(self.height / chunk) * math.ceil(self.width / chunk)

    def root_attrs(self) -> dict[str, Any]:
        """The grid part of a raster archive's root attributes (see docs/archives.md)."""
        return {
            "crs_epsg": self.crs_epsg,
            "crs_wkt": self.crs_wkt,
            "transform": list(self.transform),
            "resolution": list(self.resolution),
            "bounds": list(self.bounds),
            "shape": [self.height, self.width],
        }

    @classmethod
    def from_bounds(
        cls,
        crs: Any,
        res: float | tuple[float, float],
        bounds: tuple[float, float, float, float],
    ) -> GridSpec:
        """Grid in ``crs`` with pixel size ``res`` covering ``bounds`` (left, bottom, right, top), snapped outward
        to whole multiples of the resolution."""
        xres, yres = (res, res) if isinstance(res, int | float) else res
        if not (xres > 0 and yres > 0 and math.isfinite(xres) and math.isfinite(yres)):
            raise ConfigError(f"res: resolution must be positive, got {res!r}; pass --res in CRS units (e.g. 500)")
        if len(bounds) != 4 or not all(math.isfinite(v) for v in bounds):
            raise ConfigError(f"bounds: need four finite numbers left,bottom,right,top, got {bounds!r}")
        left, bottom, right, top = (float(v) for v in bounds)
        if not (right > left and top > bottom):
            raise ConfigError(f"bounds: empty box {bounds!r}; need left < right and bottom < top")
        wkt, epsg = parse_crs(crs)

        def snap_down(v: float, r: float) -> float:
            return math.floor(v / r + _EPS) * r

        def snap_up(v: float, r: float) -> float:
            return math.ceil(v / r - _EPS) * r

        x0, x1 = snap_down(left, xres), snap_up(right, xres)
        y0, y1 = snap_down(bottom, yres), snap_up(top, yres)
        width = round((x1 - x0) / xres)
        height = round((y1 - y0) / yres)
        return cls(wkt, epsg, (float(xres), 0.0, x0, 0.0, -float(yres), y1), width, height)

    @classmethod
    def from_archive(cls, path: Path) -> GridSpec:
        """The grid of an existing complete raster archive (for "on the same grid as that one")."""
        import zarr

        from geodl_hpc.archive.store import require_complete

        path = Path(path)
        require_complete(path, "raster")
        attrs: dict[str, Any] = dict(zarr.open_group(str(path), mode="r").attrs)
        try:
            height, width = (int(v) for v in attrs["shape"])
            transform = as_transform(attrs["transform"])
            wkt = str(attrs["crs_wkt"])
            epsg = attrs.get("crs_epsg")
        except (KeyError, TypeError, ValueError):
            raise ArchiveError(
                f"{path}: raster archive lacks shape/transform/crs_wkt root attributes; re-ingest it"
            ) from None
        except ConfigError:
            raise ArchiveError(f"{path}: root attribute transform must have 6 numbers; re-ingest it") from None
        return cls(wkt, int(epsg) if epsg is not None else None, transform, width, height)

    @classmethod
    def from_rasterio(cls, crs: Any, transform: Any, width: int, height: int) -> GridSpec:
        """Grid from a rasterio CRS and affine transform."""
        wkt, epsg = parse_crs(crs)
        return cls(wkt, epsg, as_transform(transform), int(width), int(height))
