"""Vectors as raster layers: points -> counts, lines -> distance and density, polygons -> indicator and distance;
with an attribute, polygons and points -> categories (a class layer with its legend, or one-hot layers).

Layers are computed on pixel centres window by window, so only the geometries are held in memory. ``where``
filters features by attribute (OGR SQL); distances are great-circle metres when the grid's CRS is geographic.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from geodl_hpc.archive.distance import DistanceIndex, distance_index
from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import BlockSource, Layer, layer_name, linear_units
from geodl_hpc.errors import ConfigError, InputDataError

if TYPE_CHECKING:
    from geodl_hpc.archive.categorical import Encoding
    from geodl_hpc.archive.classes import ClassLegend

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
    values: np.ndarray | None = None  # the attribute's value per geometry (per point for points)
    attribute: str | None = None


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


def _read_ogr(path: Path, attribute: str | None, where: str | None) -> tuple[str | None, np.ndarray, np.ndarray | None]:
    """CRS text, geometries and (when asked) one attribute's values of an OGR vector file, filtered by ``where``."""
    import pyogrio
    import pyogrio.raw
    import shapely

    try:
        info = pyogrio.read_info(path)
    except Exception as exc:
        raise InputDataError(
            f"{path}: unreadable vector file ({exc.__class__.__name__}); check it opens with ogrinfo"
        ) from None
    fields = [str(f) for f in info.get("fields", [])]
    if attribute is not None and attribute not in fields:
        raise InputDataError(
            f"{path}: has no attribute {attribute!r}; its attributes are {', '.join(fields) or 'none'}"
        )
    try:
        meta, _fids, wkb, values = pyogrio.raw.read(
            path, read_geometry=True, columns=[attribute] if attribute else [], where=where
        )
    except Exception as exc:
        if where:
            raise InputDataError(
                f"{path}: attribute filter {where!r} failed ({exc}); write it as an OGR SQL WHERE clause over "
                f"the attributes {', '.join(fields)}"
            ) from None
        raise InputDataError(
            f"{path}: unreadable vector file ({exc.__class__.__name__}); check it opens with ogrinfo"
        ) from None
    geoms = np.asarray(shapely.from_wkb(wkb)) if wkb is not None else np.empty(0, dtype=object)
    column = np.asarray(values[0], dtype=object) if attribute else None
    return meta.get("crs"), geoms, column


def _reprojected(geoms: np.ndarray, crs_text: str, grid: GridSpec) -> np.ndarray:
    """Geometries transformed from ``crs_text`` to the grid's CRS (always x/y order)."""
    import shapely
    from pyproj import CRS, Transformer

    transformer = Transformer.from_crs(CRS.from_user_input(crs_text), CRS.from_wkt(grid.crs_wkt), always_xy=True)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(geoms, move))


def read_vector(
    path: Path,
    grid: GridSpec,
    *,
    attribute: str | None = None,
    where: str | None = None,
    reproject: bool = False,
) -> VectorData:
    """Read a vector file (GeoJSON/Shapefile/GeoPackage via pyogrio, or a points/segments CSV) for ``grid``.

    ``attribute`` also reads that field's value per feature (``VectorData.values``); ``where`` keeps only the
    features matching an OGR SQL WHERE clause (e.g. ``"type = 'thrust'"``); ``reproject`` transforms geometries
    from the file's declared CRS to the grid's instead of failing on a CRS mismatch."""
    import shapely

    path = Path(path)
    crs_text: str | None = None
    values: np.ndarray | None = None
    if path.suffix.lower() == ".csv":
        if where:
            raise InputDataError(f"{path}: attribute filters (where) need a vector format; convert it with ogr2ogr")
        geoms = _read_csv_geometries(path)
        if attribute is not None:
            values = _csv_column(path, attribute)
    else:
        crs_text, geoms, values = _read_ogr(path, attribute, where)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms = geoms[keep]
    values = values[keep] if values is not None else None
    if geoms.size == 0:
        selected = f" matching {where!r}" if where else ""
        raise InputDataError(f"{path}: holds no geometries{selected}; check the file")
    bounds = np.asarray(shapely.total_bounds(geoms), dtype=np.float64)
    hint = "is it in another CRS? reproject it to the grid's CRS or choose --bounds/--like that cover it"
    if crs_text:
        reason = _crs_mismatch(path, crs_text, grid, bounds)
        if reason and reproject:
            geoms = _reprojected(geoms, crs_text, grid)
            bounds = np.asarray(shapely.total_bounds(geoms), dtype=np.float64)
        elif reason:
            raise InputDataError(
                f"{path}: vector {reason}; reproject it (e.g. ogr2ogr -t_srs, or reproject: true) or use a grid "
                "in its CRS"
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
    data = VectorData(path=path, kind=kind, geometries=geoms, values=values, attribute=attribute)
    if kind == "points":
        data.points = shapely.get_coordinates(geoms)
        if values is not None and len(data.points) != len(values):  # multipoints: one value per part
            counts = shapely.get_num_geometries(geoms)
            data.values = np.repeat(values, counts)
    return data


def _csv_column(path: Path, attribute: str) -> np.ndarray:
    import pandas as pd

    frame = pd.read_csv(path)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if attribute.lower() not in columns:
        raise InputDataError(
            f"{path}: has no column {attribute!r}; its columns are {', '.join(map(str, frame.columns))}"
        )
    return np.asarray(frame[columns[attribute.lower()]].to_numpy(), dtype=object)


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


def _window_distance(index: DistanceIndex, grid: GridSpec, rows: slice, cols: slice) -> np.ndarray:
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
        units = linear_units(grid)
        self._index = distance_index(segs, grid, units)
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
        # km of line per km² when the CRS is in metres; else CRS length units per squared unit.
        self._scale = 1000.0 if units == "m" else 1.0
        density_units = "km/km2" if units == "m" else f"1/{units}"
        self._norm = self._scale / (self._kernel.sum() * xres * yres)
        self.layers = [
            Layer(distance_name, f"distance to the nearest line of {source}", self._index.units, source),
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
        self._edges = distance_index(_segments(polys), grid, linear_units(grid))
        self.layers = [
            Layer(indicator_name, f"1 inside the polygons of {source}, else 0", "1", source),
            Layer(distance_name, f"distance to the polygons of {source} (0 inside)", self._edges.units, source),
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
    data: VectorData,
    grid: GridSpec,
    *,
    density_radius: float | None = None,
    stem: str | None = None,
    encoding: Encoding = "class",
    legend: ClassLegend | None = None,
) -> BlockSource:
    """The block source of a vector file, with the standard layer names ``<stem>_<what>``.

    When ``data`` carries an attribute (``read_vector(..., attribute=...)``), polygons and points give its
    categories instead: one class layer ``<stem>`` with the legend, or ``<stem>_<category>`` one-hot layers."""
    stem = stem or layer_name(data.path.stem)
    source = data.path.name
    if data.values is not None and data.attribute is not None:
        from geodl_hpc.archive.categorical import categorical_source

        return categorical_source(
            data.kind,
            data.geometries,
            data.points,
            data.values,
            grid,
            stem=stem,
            source=source,
            attribute=data.attribute,
            encoding=encoding,
            legend=legend,
        )
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
