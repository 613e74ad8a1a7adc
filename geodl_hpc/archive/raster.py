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

import contextlib
import dataclasses
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geodl_hpc.archive.classes import ClassLegend
from geodl_hpc.archive.grid import GridSpec, parse_crs
from geodl_hpc.archive.stack import BlockSource, Layer, layer_name, write_stack
from geodl_hpc.archive.store import (
    CodecSpec,
    mark_complete_zarr,
    provenance,
    require_files,
    staged_output,
)
from geodl_hpc.archive.vector import VECTOR_SUFFIXES, read_vector, vector_sources
from geodl_hpc.errors import ConfigError, InputDataError

RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "min", "max", "med")


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


@dataclass(frozen=True)
class SourceSpec:
    """One input of a raster stack with its own options (a plain path takes the defaults).

    ``name``: the layer name (stem) instead of the file's. Rasters: ``resampling`` overrides the ingest's, and
    ``classes`` makes a single-band raster a class layer (nearest resampling; codes outside the legend become
    NaN; the legend travels in the layer's attributes). Vectors: ``attribute`` rasterises that polygon or point
    attribute as categories (``encoding`` ``class``: one class layer with the legend ``classes`` or one derived
    from the values; ``onehot``: one layer per category), ``where`` filters features (OGR SQL), ``reproject``
    transforms them from their CRS to the grid's.
    """

    path: Path
    name: str | None = None
    resampling: str | None = None
    classes: ClassLegend | None = None
    attribute: str | None = None
    where: str | None = None
    encoding: Literal["class", "onehot"] = "class"
    reproject: bool = False


class ClassRasterSource:
    """A single-band class-code raster as a class layer: codes outside the legend become NaN."""

    def __init__(self, path: Path, grid: GridSpec, legend: ClassLegend, *, name: str | None, src_crs: str | None):
        self._raster = RasterSource(path, grid, src_crs=src_crs, resampling="nearest")
        if len(self._raster.layers) != 1:
            self._raster.close()
            raise InputDataError(f"{path}: a class map must have one band, it has {len(self._raster.layers)}")
        self.legend = legend
        stem = name or self._raster.layers[0].name
        self.layers = [Layer(stem, f"class of {Path(path).name} (NaN: none)", "1", Path(path).name, legend.attrs())]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        block = self._raster.read(rows, cols)
        block[0][self.legend.index_of(block[0]) < 0] = np.nan
        return block

    def close(self) -> None:
        self._raster.close()


def _spec_record(spec: SourceSpec) -> dict[str, Any]:
    """A source's non-default options, for the provenance record."""
    record: dict[str, Any] = {"path": str(spec.path)}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name != "path" and value != f.default:
            record[f.name] = value.attrs()["classes"] if isinstance(value, ClassLegend) else value
    return record


def _source(item: Path | SourceSpec, grid: GridSpec, src_crs: str | None, resampling: str, radius: Any) -> Any:
    """The block source of one ingest input."""
    spec = item if isinstance(item, SourceSpec) else SourceSpec(Path(item))
    path = Path(spec.path)
    if path.suffix.lower() in VECTOR_SUFFIXES:
        data = read_vector(path, grid, attribute=spec.attribute, where=spec.where, reproject=spec.reproject)
        return vector_sources(
            data, grid, density_radius=radius, stem=spec.name, encoding=spec.encoding, legend=spec.classes
        )
    if spec.attribute or spec.where:
        raise ConfigError(f"{path}: attribute/where apply to vector files, not rasters")
    if spec.classes is not None:
        return ClassRasterSource(path, grid, spec.classes, name=spec.name, src_crs=src_crs)
    method = spec.resampling or resampling
    if method not in RESAMPLING:
        raise ConfigError(f"resampling: unknown method {method!r}; use one of {', '.join(RESAMPLING)}")
    source = RasterSource(path, grid, src_crs=src_crs, resampling=method)
    if spec.name and len(source.layers) == 1:
        source.layers = [dataclasses.replace(source.layers[0], name=spec.name)]
    elif spec.name:
        source.layers = [dataclasses.replace(la, name=f"{spec.name}_b{i}") for i, la in enumerate(source.layers, 1)]
    return source


def ingest_raster(
    out: Path,
    sources: Sequence[Path | SourceSpec],
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
    raster's grid; returns ``out``. ``density_radius`` (CRS units) defaults to 5 pixels. A :class:`SourceSpec`
    gives one input its own options (class layers, attributes, filters, resampling)."""
    out = Path(out)
    items = [s if isinstance(s, SourceSpec) else Path(s) for s in sources]
    paths = require_files([Path(s.path) if isinstance(s, SourceSpec) else s for s in items])
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
        for item in items:
            block: BlockSource = _source(item, target, src_crs, resampling, density_radius)
            stack.callback(block.close)
            blocks.append(block)
        options = {
            "kind": "raster",
            "resampling": resampling,
            "src_crs": src_crs,
            "like": str(Path(like).resolve()) if like is not None else None,
            "density_radius": density_radius,
            "grid": target.root_attrs(),
            "source_options": [_spec_record(s) for s in items if isinstance(s, SourceSpec)],
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
