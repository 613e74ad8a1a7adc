"""Categorical vector layers: a polygon or point attribute rasterised as a class layer with its legend, or as
one indicator layer per category (one-hot), computed on pixel centres window by window.

Typical uses: lithology units of a geology map (polygons, attribute ``unit``), land-cover labels at field points.
Where polygons overlap, the later feature in the file wins (as ``gdal_rasterize`` burns them); where several
points fall in one pixel, the last one wins and the ingest counts the conflicts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np

from geodl_hpc.archive.classes import ClassLegend
from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import Layer, layer_name
from geodl_hpc.errors import InputDataError

Encoding = Literal["class", "onehot"]


def _is_integer(value: object) -> bool:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return np.isfinite(f) and f == int(f) and not isinstance(value, bool)


def encode_categories(
    values: np.ndarray, legend: ClassLegend | None, *, where: str, attribute: str
) -> tuple[np.ndarray, ClassLegend]:
    """Class code per feature and the legend.

    With ``legend``, string values are matched to its names and integer values to its codes. Without one,
    integer values 1..254 are their own codes (names ``<attribute>_<value>``), otherwise the distinct values,
    sorted, get codes 1, 2, ... and are their own names. Missing values get code 0 (no class)."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if legend is None:
        distinct = sorted({str(v) for v in present}) if not all(_is_integer(v) for v in present) else None
        if distinct is None:
            ints = sorted({int(float(v)) for v in present})
            if ints and (ints[0] < 1 or ints[-1] > 254):
                distinct = [str(v) for v in ints]
            else:
                legend = ClassLegend.build(ints, [f"{attribute}_{v}" for v in ints])
        if legend is None:
            assert distinct is not None
            if len(distinct) > 254:
                raise InputDataError(f"{where}: attribute {attribute!r} has {len(distinct)} categories (max 254)")
            legend = ClassLegend.build(range(1, len(distinct) + 1), distinct)
    by_name = {n: v for n, v in zip(legend.names, legend.values, strict=True)}
    codes = np.zeros(len(values), np.int64)
    unknown: set[str] = set()
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if str(v) in by_name:
            codes[i] = by_name[str(v)]
        elif _is_integer(v) and int(float(v)) in legend.values:
            codes[i] = int(float(v))
        else:
            unknown.add(str(v))
    if unknown:
        raise InputDataError(
            f"{where}: attribute {attribute!r} has values {sorted(unknown)[:5]} that the legend lacks; add them "
            f"to classes or drop them with where"
        )
    return codes, legend


def _window_points(grid: GridSpec, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    xx, yy = np.meshgrid(grid.x_centres()[cols], grid.y_centres()[rows])
    return xx.ravel(), yy.ravel()


def _legend_layers(
    stem: str, legend: ClassLegend, encoding: Encoding, source: str, what: str
) -> tuple[list[Layer], list[str]]:
    if encoding == "class":
        long_name = f"class of {what} of {source} (NaN: none)"
        return [Layer(stem, long_name, "1", source, legend.attrs())], [stem]
    names = [f"{stem}_{layer_name(n)}" for n in legend.names]
    if len(set(names)) != len(names):
        raise InputDataError(f"{source}: category names {list(legend.names)} collide as layer names; rename them")
    layers = [
        Layer(n, f"1 where {what} of {source} is {c}, else 0", "1", source)
        for n, c in zip(names, legend.names, strict=True)
    ]
    return layers, names


class PolygonClassSource:
    """Polygons' category at each pixel centre: one class layer (codes, NaN outside) or one-hot indicators."""

    def __init__(
        self,
        geometries: np.ndarray,
        codes: np.ndarray,
        legend: ClassLegend,
        grid: GridSpec,
        *,
        stem: str,
        source: str,
        attribute: str,
        encoding: Encoding = "class",
    ) -> None:
        import shapely

        self.grid, self.legend, self.encoding = grid, legend, encoding
        keep = codes > 0
        self._geoms = np.asarray(shapely.make_valid(geometries[keep]))
        self._codes = codes[keep]
        self._tree = shapely.STRtree(self._geoms)
        self._lock = threading.Lock()  # GEOS prepares geometries lazily on query: not thread-safe
        self.layers, _ = _legend_layers(stem, legend, encoding, source, f"polygon attribute {attribute}")

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        import shapely

        h, w = rows.stop - rows.start, cols.stop - cols.start
        xx, yy = _window_points(self.grid, rows, cols)
        with self._lock:
            pt, geom = self._tree.query(shapely.points(xx, yy), predicate="intersects")
        winner = np.full(xx.size, -1, np.int64)
        np.maximum.at(winner, pt, geom)  # the later feature in the file wins
        code = np.where(winner >= 0, self._codes[np.maximum(winner, 0)], 0)
        return class_planes(code.reshape(h, w), self.legend, self.encoding)

    def close(self) -> None:
        return None


def class_planes(code: np.ndarray, legend: ClassLegend, encoding: Encoding) -> np.ndarray:
    """``(1, h, w)`` class codes (NaN where 0) or ``(n_classes, h, w)`` one-hot planes of a code block."""
    if encoding == "class":
        return np.where(code > 0, code, np.nan).astype(np.float32)[None]
    return np.stack([(code == v) for v in legend.values]).astype(np.float32)


class PointClassSource:
    """Labelled points as a class layer: the point's class in its pixel, NaN elsewhere (sparse labels)."""

    def __init__(
        self,
        points: np.ndarray,
        codes: np.ndarray,
        legend: ClassLegend,
        grid: GridSpec,
        *,
        stem: str,
        source: str,
        attribute: str,
        encoding: Encoding = "class",
    ) -> None:
        a, _, c, _, e, f = grid.transform
        col = np.floor((points[:, 0] - c) / a).astype(np.int64)
        row = np.floor((points[:, 1] - f) / e).astype(np.int64)
        inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height) & (codes > 0)
        self._row, self._col, self._code = row[inside], col[inside], codes[inside]
        self.n_outside = int((~inside).sum())
        flat = self._row * grid.width + self._col
        _, first, counts = np.unique(flat, return_index=True, return_counts=True)
        clash = counts > 1
        self.n_conflicts = int(sum(len(set(self._code[flat == flat[i]].tolist())) > 1 for i in first[clash]))
        self.legend, self.encoding = legend, encoding
        self.layers, _ = _legend_layers(stem, legend, encoding, source, f"point attribute {attribute}")

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        h, w = rows.stop - rows.start, cols.stop - cols.start
        sel = (self._row >= rows.start) & (self._row < rows.stop) & (self._col >= cols.start) & (self._col < cols.stop)
        code = np.zeros((h, w), np.int64)
        code[self._row[sel] - rows.start, self._col[sel] - cols.start] = self._code[sel]  # the last point wins
        planes = class_planes(code, self.legend, self.encoding)
        if self.encoding == "onehot":  # no label is not "not this class" for sparse points
            planes[:, code == 0] = np.nan
        return planes

    def close(self) -> None:
        return None


def categorical_source(
    kind: str,
    geometries: np.ndarray,
    points: np.ndarray,
    values: np.ndarray,
    grid: GridSpec,
    *,
    stem: str,
    source: str,
    attribute: str,
    encoding: Encoding = "class",
    legend: ClassLegend | None = None,
) -> PolygonClassSource | PointClassSource:
    """The categorical block source of a polygon or point file's ``attribute``."""
    codes, legend = encode_categories(values, legend, where=source, attribute=attribute)
    if kind == "polygons":
        return PolygonClassSource(
            geometries, codes, legend, grid, stem=stem, source=source, attribute=attribute, encoding=encoding
        )
    if kind == "points":
        return PointClassSource(
            points, codes, legend, grid, stem=stem, source=source, attribute=attribute, encoding=encoding
        )
    raise InputDataError(
        f"{source}: categories are rasterised from polygons or points; for lines, filter with where and use distances"
    )


__all__: Sequence[str] = ("PointClassSource", "PolygonClassSource", "categorical_source", "encode_categories")
