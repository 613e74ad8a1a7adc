"""Vectors as raster layers: points -> counts, lines -> distance and density, polygons -> indicator and distance.

Layers are computed on pixel centres window by window, so only the geometries are held in memory.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import BlockSource, Layer, layer_name, linear_units
from geodl_hpc.errors import ConfigError, InputDataError

VECTOR_SUFFIXES = frozenset({".geojson", ".json", ".shp", ".gpkg", ".fgb", ".gml", ".kml", ".csv"})
DEFAULT_DENSITY_RADIUS_PX = 5.0
VectorKind = Literal["points", "lines", "polygons"]


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
        units = linear_units(grid)
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
        units = linear_units(grid)
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
