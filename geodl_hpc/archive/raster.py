"""Ingest rasters and vectors into a Zarr v3 raster stack (``geodl_kind = "raster"``), window by window.

Rasters (anything GDAL reads) are resampled onto the target grid through a ``WarpedVRT`` one chunk-aligned
window at a time, or read directly when they already lie on it, so a raster larger than memory is ingested
out-of-core. Vectors become layers computed on pixel centres, window by window:

* points -> ``<stem>_count`` (points per pixel, the usual label layer);
* lines -> ``<stem>_distance`` (to the nearest line) and ``<stem>_density`` (line length per area within a radius);
* polygons -> ``<stem>_indicator`` (1 inside or on the boundary, else 0) and ``<stem>_distance`` (0 inside).

Raster bands become ``<stem>`` (single band) or ``<stem>_b<i>`` (1-based). Layer statistics are accumulated in
float64 over the valid (non-NaN) pixels while writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from geodl_hpc.archive.grid import GridSpec, parse_crs
from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    PROVENANCE_ATTR,
    CodecSpec,
    mark_complete_zarr,
    provenance,
    require_files,
    staged_output,
)
from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.progress import progress_bar

VECTOR_SUFFIXES = frozenset({".geojson", ".json", ".shp", ".gpkg", ".fgb", ".gml", ".kml", ".csv"})
RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "min", "max", "med")
DEFAULT_DENSITY_RADIUS_PX = 5.0
VectorKind = Literal["points", "lines", "polygons"]


@dataclass(frozen=True)
class Layer:
    """Metadata of one output layer."""

    name: str
    long_name: str
    units: str
    source: str


class BlockSource(Protocol):
    """Something that yields its layers for one grid window as a ``(n_layers, rows, cols)`` float32 block."""

    layers: list[Layer]

    def read(self, rows: slice, cols: slice) -> np.ndarray: ...

    def close(self) -> None: ...


def layer_name(stem: str) -> str:
    """A safe layer name from a file stem: letters, digits and ``_`` only, not starting with a digit."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", stem).strip("_") or "layer"
    return f"l_{name}" if name[0].isdigit() else name


def _linear_units(grid: GridSpec) -> str:
    """Short name of the grid CRS's length unit (``m`` for metres)."""
    crs = grid.crs
    units = (crs.linear_units or "").lower() if crs.is_projected else "degree"
    return "m" if units in ("metre", "meter", "m") else (units or "unknown")


# ----------------------------------------------------------------------------------------------- statistics


@dataclass
class RunningStats:
    """Count, mean, M2 (Chan's parallel update), min and max over valid pixels, in float64."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    total: int = 0

    @classmethod
    def of_block(cls, block: np.ndarray) -> RunningStats:
        """Statistics of one block of float32 values (NaN = nodata)."""
        stats = cls(total=block.size)
        finite = np.isfinite(block)
        n = int(np.count_nonzero(finite))
        if n == 0:
            return stats
        values = (block if n == block.size else block[finite]).ravel()
        # float64 accumulation without a float64 copy of the block; shifting by the first value keeps
        # sum-of-squares numerically safe for data with a large offset (elevations, northings).
        shift = np.float32(values[0])
        centred = values - shift
        total = float(centred.sum(dtype=np.float64))
        squares = float(np.einsum("i,i->", centred, centred, dtype=np.float64))
        mean_c = total / n
        stats.count, stats.mean = n, float(shift) + mean_c
        stats.m2 = max(squares - n * mean_c * mean_c, 0.0)
        stats.minimum, stats.maximum = float(values.min()), float(values.max())
        return stats

    def merge(self, other: RunningStats) -> None:
        """Add the statistics of another set of pixels (Chan et al.'s pairwise update)."""
        self.total += other.total
        if other.count == 0:
            return
        delta = other.mean - self.mean
        total = self.count + other.count
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def update(self, block: np.ndarray) -> None:
        """Add a block of float32 values (NaN = nodata)."""
        self.merge(RunningStats.of_block(block))

    def as_dict(self) -> dict[str, float | int | None]:
        """The ``statistics`` attribute of a layer (None where there is no valid pixel)."""
        if self.count == 0:
            return {"mean": None, "std": None, "min": None, "max": None, "valid_fraction": 0.0, "count": 0}
        return {
            "mean": self.mean,
            "std": math.sqrt(self.m2 / self.count),
            "min": self.minimum,
            "max": self.maximum,
            "valid_fraction": self.count / self.total if self.total else 0.0,
            "count": self.count,
        }


# ------------------------------------------------------------------------------------------------- rasters


def _open_raster(path: Path) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError:
        raise InputDataError(
            f"{path}: GDAL cannot read it as a raster and it is not a vector file (.geojson, .shp, .gpkg, .csv); "
            "check the file or convert it to GeoTIFF"
        ) from None


def _raster_crs(src: Any, path: Path, src_crs: str | None) -> Any:
    from rasterio.crs import CRS

    if src.crs is not None:
        return src.crs
    if src_crs:
        return CRS.from_wkt(parse_crs(src_crs)[0])
    raise InputDataError(f"{path}: raster has no CRS; pass --src-crs EPSG:NNNN (or fix it with gdal_edit.py -a_srs)")


def grid_of_raster(path: Path, src_crs: str | None = None) -> GridSpec:
    """The grid of a raster file (north-up; a rotated or south-up raster gets GDAL's default north-up grid)."""
    from rasterio.warp import calculate_default_transform

    with _open_raster(path) as src:
        crs = _raster_crs(src, path, src_crs)
        t = src.transform
        if t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0:
            return GridSpec.from_rasterio(crs, t, src.width, src.height)
        transform, width, height = calculate_default_transform(crs, crs, src.width, src.height, *src.bounds)
        return GridSpec.from_rasterio(crs, transform, width, height)


class RasterSource:
    """Bands of one GDAL raster on the target grid, read window by window (direct or through a WarpedVRT)."""

    def __init__(self, path: Path, grid: GridSpec, *, src_crs: str | None = None, resampling: str = "bilinear") -> None:
        from rasterio.enums import MaskFlags, Resampling
        from rasterio.vrt import WarpedVRT
        from rasterio.warp import transform_bounds

        self.path = Path(path)
        self._src = _open_raster(self.path)
        self._vrt_options: dict[str, Any] | None = None
        self._local = threading.local()
        self._handles: list[Any] = []
        self._lock = threading.Lock()
        try:
            src = self._src
            crs = _raster_crs(src, self.path, src_crs)
            try:
                left, bottom, right, top = transform_bounds(crs, grid.crs, *src.bounds, densify_pts=21)
            except Exception:
                left = bottom = right = top = math.nan
            g_left, g_bottom, g_right, g_top = grid.bounds
            if not (left < g_right and right > g_left and bottom < g_top and top > g_bottom):
                raise InputDataError(
                    f"{self.path}: does not overlap the target grid (bounds {grid.bounds} in EPSG:{grid.crs_epsg}); "
                    "check its CRS (--src-crs) or choose a grid that covers it"
                )
            self._nodata = src.nodata
            self._masked = any(
                MaskFlags.per_dataset in flags or MaskFlags.alpha in flags for flags in src.mask_flag_enums
            )
            own = None
            t = src.transform
            if t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0:
                own = GridSpec.from_rasterio(crs, t, src.width, src.height)
            self._direct = own is not None and own.same_as(grid)
            if not self._direct:
                self._vrt_options = dict(
                    src_crs=crs if src.crs is None else None,
                    crs=grid.crs,
                    transform=grid.affine,
                    width=grid.width,
                    height=grid.height,
                    resampling=Resampling[resampling],
                    nodata=np.nan,
                    dtype="float32",
                )
                WarpedVRT(src, **self._vrt_options).close()  # fail here, not in a worker, if GDAL cannot warp it
            stem = layer_name(self.path.stem)
            n = src.count
            self.layers = [
                Layer(
                    name=stem if n == 1 else f"{stem}_b{i}",
                    long_name=(src.descriptions[i - 1] or (stem if n == 1 else f"{stem} band {i}")),
                    units=src.units[i - 1] or "",
                    source=self.path.name,
                )
                for i in range(1, n + 1)
            ]
        except BaseException:
            self.close()
            raise

    def _reader(self) -> Any:
        """This thread's own dataset handle (GDAL handles must not be shared between threads)."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            from rasterio.vrt import WarpedVRT

            with self._lock:
                src = _open_raster(self.path)
                self._handles.append(src)
                if self._vrt_options is not None:
                    src = WarpedVRT(src, **self._vrt_options)
                    self._handles.append(src)
            reader = self._local.reader = src
        return reader

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        from rasterio.windows import Window

        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        reader = self._reader()
        if self._masked:
            masked = reader.read(window=window, masked=True, out_dtype="float32")
            return np.ma.filled(masked, np.nan)
        block = reader.read(window=window, out_dtype="float32")
        if self._direct and self._nodata is not None and not math.isnan(self._nodata):
            block[block == np.float32(self._nodata)] = np.nan
        return block

    def close(self) -> None:
        with self._lock:
            for handle in reversed(self._handles):
                handle.close()
            self._handles.clear()
        self._src.close()


# ------------------------------------------------------------------------------------------------- vectors


@dataclass
class VectorData:
    """Geometries of one vector file, all of one kind, in the grid's CRS."""

    path: Path
    kind: VectorKind
    geometries: np.ndarray  # shapely geometries
    points: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))  # (n, 2) for points


_KIND_OF_TYPE: dict[int, VectorKind] = {
    0: "points",
    4: "points",
    1: "lines",
    2: "lines",
    5: "lines",
    3: "polygons",
    6: "polygons",
}


def _read_csv_geometries(path: Path) -> np.ndarray:
    import pandas as pd
    import shapely

    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise InputDataError(f"{path}: unreadable CSV ({exc.__class__.__name__}); check the file") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if {"x0", "y0", "x1", "y1"} <= set(frame.columns):
        coords = frame[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
        kind = "segments"
    elif {"x", "y"} <= set(frame.columns):
        coords = frame[["x", "y"]].to_numpy(dtype=np.float64)
        kind = "points"
    else:
        raise InputDataError(f"{path}: CSV needs columns x,y (points) or x0,y0,x1,y1 (line segments); rename them")
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise InputDataError(f"{path}: {int(bad.sum())} rows have missing or non-numeric coordinates; fix or drop them")
    if kind == "points":
        return np.asarray(shapely.points(coords))
    return np.asarray(shapely.linestrings(coords.reshape(-1, 2, 2)))


def _crs_mismatch(path: Path, crs_text: str, grid: GridSpec, bounds: np.ndarray) -> str | None:
    """A reason the vector's declared CRS differs from the grid's, or None when it matches or is unusable."""
    from rasterio.crs import CRS

    try:
        crs = CRS.from_user_input(crs_text)
    except Exception:
        return None
    if crs == grid.crs:
        return None
    # GeoJSON without a "crs" member is reported as EPSG:4326 by OGR: ignore that label when the numbers
    # cannot be degrees (projected coordinates written without a CRS, e.g. the built-in Murchison data).
    if crs.is_geographic and (np.abs(bounds[[0, 2]]).max() > 360 or np.abs(bounds[[1, 3]]).max() > 90):
        return None
    return f"is in {crs.to_string()}, the grid in {grid.crs.to_string()}"


def read_vector(path: Path, grid: GridSpec) -> VectorData:
    """Read a vector file (GeoJSON/Shapefile/GeoPackage via pyogrio, or a points/segments CSV) for ``grid``."""
    import shapely

    path = Path(path)
    crs_text: str | None = None
    if path.suffix.lower() == ".csv":
        geoms = _read_csv_geometries(path)
    else:
        import pyogrio
        import pyogrio.raw

        try:
            meta, _fids, wkb, _fields = pyogrio.raw.read(path, read_geometry=True, columns=[])
        except Exception as exc:
            raise InputDataError(
                f"{path}: unreadable vector file ({exc.__class__.__name__}); check it opens with ogrinfo"
            ) from None
        crs_text = meta.get("crs")
        geoms = np.asarray(shapely.from_wkb(wkb)) if wkb is not None else np.empty(0, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if geoms.size == 0:
        raise InputDataError(f"{path}: holds no geometries; check the file")
    bounds = np.asarray(shapely.total_bounds(geoms), dtype=np.float64)
    hint = "is it in another CRS? reproject it to the grid's CRS or choose --bounds/--like that cover it"
    if crs_text:
        reason = _crs_mismatch(path, crs_text, grid, bounds)
        if reason:
            raise InputDataError(
                f"{path}: vector {reason}; reproject it (e.g. ogr2ogr -t_srs) or use a grid in its CRS"
            )
    g_left, g_bottom, g_right, g_top = grid.bounds
    if not (bounds[0] <= g_right and bounds[2] >= g_left and bounds[1] <= g_top and bounds[3] >= g_bottom):
        raise InputDataError(
            f"{path}: its bounds {tuple(bounds.round(3))} do not intersect the grid {grid.bounds}; {hint}"
        )
    type_ids = np.unique(shapely.get_type_id(geoms))
    kinds = {_KIND_OF_TYPE.get(int(t)) for t in type_ids}
    if None in kinds:
        raise InputDataError(f"{path}: holds geometry collections; explode them into points, lines or polygons")
    if len(kinds) > 1:
        raise InputDataError(f"{path}: mixes {', '.join(sorted(str(k) for k in kinds))}; split it by geometry type")
    kind: VectorKind = kinds.pop()  # type: ignore[assignment]
    data = VectorData(path=path, kind=kind, geometries=geoms)
    if kind == "points":
        data.points = shapely.get_coordinates(geoms)
    return data


def _segments(geoms: np.ndarray) -> np.ndarray:
    """(n, 2, 2) straight segments of lines or polygon boundaries."""
    import shapely

    lines = shapely.get_parts(geoms)
    lines = np.where(shapely.get_type_id(lines) >= 3, shapely.boundary(lines), lines)
    lines = shapely.get_parts(lines)
    coords, index = shapely.get_coordinates(lines, return_index=True)
    same = index[1:] == index[:-1]
    return np.stack([coords[:-1][same], coords[1:][same]], axis=1)


def _window_points(grid: GridSpec, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    xs = grid.x_centres()[cols]
    ys = grid.y_centres()[rows]
    xx, yy = np.meshgrid(xs, ys)
    return xx.ravel(), yy.ravel()


class SegmentIndex:
    """Distance from points to the nearest of many straight segments.

    A k-d tree over points sampled along the segments (at most ``step`` apart, end points included) finds
    candidate segments; the exact point-to-segment distance to the candidates is returned. The result is
    exact unless none of the ``k`` nearest samples lies on the nearest segment, and never more than
    ``step / 2`` too large.
    """

    def __init__(self, segments: np.ndarray, step: float, k: int = 4) -> None:
        from scipy.spatial import cKDTree

        self.segments = segments
        lengths = np.hypot(*(segments[:, 1] - segments[:, 0]).T)
        step = max(step, float(lengths.sum()) / 4e6)  # keep the tree to a few million samples
        n = np.maximum(1, np.ceil(lengths / step)).astype(np.int64) + 1  # samples per segment, ends included
        owner = np.repeat(np.arange(len(segments)), n)
        first = np.repeat(np.cumsum(n) - n, n)
        t = (np.arange(owner.size) - first) / (n[owner] - 1)
        p0, p1 = segments[owner, 0], segments[owner, 1]
        self._owner = owner
        self._tree = cKDTree(p0 + (p1 - p0) * t[:, None])
        self._k = min(k, owner.size)

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


def _window_distance(index: SegmentIndex, grid: GridSpec, rows: slice, cols: slice) -> np.ndarray:
    xx, yy = _window_points(grid, rows, cols)
    return index.distance(xx, yy).reshape(rows.stop - rows.start, cols.stop - cols.start)


class PointCountSource:
    """Number of points per pixel (points outside the grid are ignored)."""

    def __init__(self, points: np.ndarray, grid: GridSpec, *, name: str, source: str, long_name: str = "") -> None:
        a, _, c, _, e, f = grid.transform
        col = np.floor((points[:, 0] - c) / a).astype(np.int64)
        row = np.floor((points[:, 1] - f) / e).astype(np.int64)
        _, bottom, right, _ = grid.bounds
        col[(points[:, 0] == right)] = grid.width - 1  # on the east / south edge: still inside
        row[(points[:, 1] == bottom)] = grid.height - 1
        inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
        self._row, self._col = row[inside], col[inside]
        self.n_outside = int((~inside).sum())
        self.layers = [Layer(name, long_name or f"number of {source} points per pixel", "count", source)]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        h, w = rows.stop - rows.start, cols.stop - cols.start
        sel = (self._row >= rows.start) & (self._row < rows.stop) & (self._col >= cols.start) & (self._col < cols.stop)
        block = np.zeros((1, h, w), dtype=np.float32)
        np.add.at(block[0], (self._row[sel] - rows.start, self._col[sel] - cols.start), 1.0)
        return block

    def close(self) -> None:
        return None


class LineSource:
    """Distance to the nearest line and line density (length per area within ``radius``, a disk kernel)."""

    def __init__(
        self,
        geometries: np.ndarray,
        grid: GridSpec,
        *,
        distance_name: str,
        density_name: str,
        source: str,
        radius: float | None = None,
    ) -> None:

        self.grid = grid
        segs = _segments(geometries)
        xres, yres = grid.resolution
        self._index = SegmentIndex(segs, min(xres, yres) / 4.0)
        self.radius = float(radius) if radius is not None else DEFAULT_DENSITY_RADIUS_PX * max(xres, yres)
        if not self.radius > 0:
            raise ConfigError(f"density radius must be positive, got {radius!r}")
        # Sample each segment at <= 1/4 pixel steps; each sample carries its share of the segment length.
        lengths = np.hypot(segs[:, 1, 0] - segs[:, 0, 0], segs[:, 1, 1] - segs[:, 0, 1])
        n = np.maximum(1, np.ceil(lengths / (min(xres, yres) / 4.0))).astype(np.int64)
        seg_of = np.repeat(np.arange(len(segs)), n)
        first = np.repeat(np.cumsum(n) - n, n)
        t = (np.arange(seg_of.size) - first + 0.5) / n[seg_of]
        p0, p1 = segs[seg_of, 0], segs[seg_of, 1]
        samples = p0 + (p1 - p0) * t[:, None]
        a, _, c, _, e, f = grid.transform
        self._col = np.floor((samples[:, 0] - c) / a).astype(np.int64)
        self._row = np.floor((samples[:, 1] - f) / e).astype(np.int64)
        self._weight = lengths[seg_of] / n[seg_of]
        self._halo_x = math.floor(self.radius / xres)
        self._halo_y = math.floor(self.radius / yres)
        dy = np.arange(-self._halo_y, self._halo_y + 1)[:, None] * yres
        dx = np.arange(-self._halo_x, self._halo_x + 1)[None, :] * xres
        self._kernel = (np.hypot(dx, dy) <= self.radius).astype(np.float64)
        units = _linear_units(grid)
        # km of line per km² when the CRS is in metres; else CRS length units per squared unit.
        self._scale = 1000.0 if units == "m" else 1.0
        density_units = "km/km2" if units == "m" else f"1/{units}"
        self._norm = self._scale / (self._kernel.sum() * xres * yres)
        self.layers = [
            Layer(distance_name, f"distance to the nearest line of {source}", units, source),
            Layer(
                density_name, f"line length per area of {source} within {self.radius:g} {units}", density_units, source
            ),
        ]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        from scipy.signal import convolve

        dist = _window_distance(self._index, self.grid, rows, cols)
        hy, hx = self._halo_y, self._halo_x
        r0, r1, c0, c1 = rows.start - hy, rows.stop + hy, cols.start - hx, cols.stop + hx
        sel = (self._row >= r0) & (self._row < r1) & (self._col >= c0) & (self._col < c1)
        length = np.zeros((r1 - r0, c1 - c0), dtype=np.float64)
        np.add.at(length, (self._row[sel] - r0, self._col[sel] - c0), self._weight[sel])
        density = np.maximum(convolve(length, self._kernel, mode="valid"), 0.0) * self._norm
        return np.stack([dist, density]).astype(np.float32)

    def close(self) -> None:
        return None


class PolygonSource:
    """Indicator (1 inside or on the boundary) and distance to the polygons (0 inside)."""

    def __init__(
        self, geometries: np.ndarray, grid: GridSpec, *, indicator_name: str, distance_name: str, source: str
    ) -> None:
        import shapely

        self.grid = grid
        polys = shapely.get_parts(geometries)
        self._region = shapely.union_all(shapely.make_valid(polys))
        shapely.prepare(self._region)
        self._lock = threading.Lock()  # GEOS builds a prepared geometry's index lazily: not thread-safe
        self._edges = SegmentIndex(_segments(polys), min(grid.resolution) / 4.0)
        units = _linear_units(grid)
        self.layers = [
            Layer(indicator_name, f"1 inside the polygons of {source}, else 0", "1", source),
            Layer(distance_name, f"distance to the polygons of {source} (0 inside)", units, source),
        ]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        import shapely

        h, w = rows.stop - rows.start, cols.stop - cols.start
        xx, yy = _window_points(self.grid, rows, cols)
        with self._lock:
            inside = shapely.intersects_xy(self._region, xx, yy)
        dist = self._edges.distance(xx, yy)
        dist[inside] = 0.0
        return np.stack([inside.reshape(h, w), dist.reshape(h, w)]).astype(np.float32)

    def close(self) -> None:
        return None


def vector_sources(
    data: VectorData, grid: GridSpec, *, density_radius: float | None = None, stem: str | None = None
) -> BlockSource:
    """The block source of a vector file, with the standard layer names ``<stem>_<what>``."""
    stem = stem or layer_name(data.path.stem)
    source = data.path.name
    if data.kind == "points":
        return PointCountSource(data.points, grid, name=f"{stem}_count", source=source)
    if data.kind == "lines":
        return LineSource(
            data.geometries,
            grid,
            distance_name=f"{stem}_distance",
            density_name=f"{stem}_density",
            source=source,
            radius=density_radius,
        )
    return PolygonSource(
        data.geometries, grid, indicator_name=f"{stem}_indicator", distance_name=f"{stem}_distance", source=source
    )


# --------------------------------------------------------------------------------------------------- writer


def _create_store(path: Path, grid: GridSpec, layers: Sequence[Layer], chunk: int, codec: CodecSpec) -> dict[str, Any]:
    """Write coordinates and ``spatial_ref`` with xarray, then create empty float32 layer arrays."""
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr
    import zarr

    ds = xr.Dataset(coords={"y": grid.y_centres(), "x": grid.x_centres()})
    ds = ds.rio.write_crs(grid.crs_wkt).rio.write_transform(grid.affine).rio.write_coordinate_system()
    compressors = codec.zarr_compressors()
    encoding = {name: {"compressors": compressors} for name in ("x", "y")}
    ds.to_zarr(str(path), mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs.update({KIND_ATTR: "raster", COMPLETE_ATTR: False})
    arrays = {}
    for layer in layers:
        arrays[layer.name] = group.create_array(
            name=layer.name,
            shape=grid.shape,
            chunks=(min(chunk, grid.height), min(chunk, grid.width)),
            dtype="float32",
            fill_value=np.nan,
            compressors=compressors,
            dimension_names=("y", "x"),
            attributes={
                "grid_mapping": "spatial_ref",
                "coordinates": "spatial_ref",
                "_CRS": {"wkt": grid.crs_wkt},  # GDAL's Zarr driver reads the CRS from here
                "long_name": layer.long_name,
                "units": layer.units,
                "source": layer.source,
            },
        )
    return arrays


def _write_planes(arrays: Sequence[Any], selection: tuple[slice, slice], planes: Sequence[np.ndarray]) -> None:
    """Write one window of every layer at once, so zarr encodes the chunks concurrently."""
    from zarr.core.sync import sync

    async def write_all() -> None:
        await asyncio.gather(*(a.async_array.setitem(selection, p) for a, p in zip(arrays, planes, strict=True)))

    sync(write_all())


def run_windows(
    windows: Iterable[tuple[slice, slice]],
    process: Callable[[tuple[slice, slice]], list[RunningStats]],
    merge: Callable[[list[RunningStats]], None],
    *,
    workers: int | None = None,
) -> None:
    """``merge(process(w))`` for every window, in order; ``process`` runs on a few threads at a time."""
    n = workers if workers is not None else min(4, os.cpu_count() or 1)
    if n <= 1:
        for window in windows:
            merge(process(window))
        return
    pending: deque[Future[list[RunningStats]]] = deque()
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="geodl-ingest") as pool:
        try:
            for window in windows:
                pending.append(pool.submit(process, window))
                if len(pending) >= 2 * n:
                    merge(pending.popleft().result())
            while pending:
                merge(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()


def write_stack(
    path: Path,
    grid: GridSpec,
    sources: Sequence[BlockSource],
    *,
    chunk: int,
    codec: CodecSpec,
    provenance_record: dict[str, Any] | Future[dict[str, Any]],
    progress: bool = True,
    workers: int | None = None,
) -> None:
    """Write all layers of ``sources`` into a new raster stack at ``path`` (not marked complete).

    Windows are processed by ``workers`` threads (default: up to 4, one per CPU); statistics are merged
    in window order, so the result does not depend on the number of threads."""
    import zarr

    layers = [layer for src in sources for layer in src.layers]
    names = [layer.name for layer in layers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputDataError(f"layer names {dupes} come from more than one source; rename one of the files")
    arrays = _create_store(path, grid, layers, chunk, codec)
    stats = {name: RunningStats() for name in names}
    windows = progress_bar(
        grid.chunk_windows(chunk),
        total=grid.n_windows(chunk),
        enabled=progress,
        unit="window",
        desc=f"ingest {Path(path).name.split('.partial-')[0].lstrip('.')}",
    )

    def process(window: tuple[slice, slice]) -> list[RunningStats]:
        rows, cols = window
        blocks = [src.read(rows, cols) for src in sources]
        planes = [block[i] for block, src in zip(blocks, sources, strict=True) for i in range(len(src.layers))]
        _write_planes([arrays[name] for name in names], (rows, cols), planes)
        return [RunningStats.of_block(plane) for plane in planes]

    def merge(partial: list[RunningStats]) -> None:
        for name, part in zip(names, partial, strict=True):
            stats[name].merge(part)

    run_windows(windows, process, merge, workers=workers)
    for layer in layers:
        if stats[layer.name].count == 0:
            raise InputDataError(
                f"{layer.source}: layer {layer.name!r} is all nodata on the target grid; check the file's nodata "
                "value and that it overlaps the grid"
            )
        arrays[layer.name].attrs["statistics"] = stats[layer.name].as_dict()
    record = provenance_record.result() if isinstance(provenance_record, Future) else provenance_record
    group = zarr.open_group(str(path), mode="r+")
    group.attrs.update({"layers": names, **grid.root_attrs(), PROVENANCE_ATTR: record})


def ingest_raster(
    out: Path,
    sources: Sequence[Path],
    *,
    grid: GridSpec | None = None,
    like: Path | None = None,
    src_crs: str | None = None,
    resampling: str = "bilinear",
    chunk: int = 512,
    codec: CodecSpec = CodecSpec(),  # noqa: B008 - frozen dataclass, safe default
    overwrite: bool = False,
    progress: bool = True,
    extra_provenance: dict[str, Any] | None = None,
    density_radius: float | None = None,
    workers: int | None = None,
) -> Path:
    """Ingest rasters and vectors into a raster stack at ``out`` on ``grid``, the grid of ``like`` or the first
    raster's grid; returns ``out``. ``density_radius`` (CRS units) defaults to 5 pixels."""
    out = Path(out)
    paths = require_files([Path(p) for p in sources])
    if resampling not in RESAMPLING:
        raise ConfigError(f"resampling: unknown method {resampling!r}; use one of {', '.join(RESAMPLING)}")
    if chunk <= 0:
        raise ConfigError(f"storage.chunk: must be a positive number of pixels, got {chunk}")
    codec.zarr_compressors()
    if grid is not None and like is not None:
        raise ConfigError("grid: pass either --crs/--res/--bounds or --like, not both")
    rasters = [p for p in paths if p.suffix.lower() not in VECTOR_SUFFIXES]
    if grid is None and like is not None:
        grid = GridSpec.from_archive(Path(like))
    if grid is None:
        if not rasters:
            raise ConfigError(
                "grid: only vector sources given, so there is no grid to use; pass --crs/--res/--bounds or --like"
            )
        grid = grid_of_raster(rasters[0], src_crs)
    target = grid
    with staged_output(out, overwrite=overwrite) as tmp, contextlib.ExitStack() as stack:
        blocks: list[BlockSource] = []
        for path in paths:
            if path.suffix.lower() in VECTOR_SUFFIXES:
                block: BlockSource = vector_sources(read_vector(path, target), target, density_radius=density_radius)
            else:
                block = RasterSource(path, target, src_crs=src_crs, resampling=resampling)
            stack.callback(block.close)
            blocks.append(block)
        options = {
            "kind": "raster",
            "resampling": resampling,
            "src_crs": src_crs,
            "like": str(Path(like).resolve()) if like is not None else None,
            "density_radius": density_radius,
            "grid": target.root_attrs(),
        }
        # Hash the sources (for provenance) on a side thread while the windows are written.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodl-sha256") as hasher:
            record = hasher.submit(
                provenance,
                paths,
                chunks={"y": chunk, "x": chunk},
                codec=codec,
                extra={"options": options, **(extra_provenance or {})},
            )
            write_stack(
                tmp,
                target,
                blocks,
                chunk=chunk,
                codec=codec,
                provenance_record=record,
                progress=progress,
                workers=workers,
            )
        mark_complete_zarr(tmp)
    return out
