"""Raster stack building blocks: output layers, block sources, running statistics and the window writer.

Every layer of a stack is produced window by window (chunk-aligned) by a ``BlockSource``; ``write_stack`` writes
the windows into a new Zarr v3 group and accumulates per-layer statistics in float64 over valid pixels.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    PROVENANCE_ATTR,
    CodecSpec,
)
from geodl_hpc.errors import InputDataError
from geodl_hpc.progress import progress_bar


@dataclass(frozen=True)
class Layer:
    """Metadata of one output layer; ``attributes`` are extra layer attributes (e.g. a class legend)."""

    name: str
    long_name: str
    units: str
    source: str
    attributes: Mapping[str, Any] = field(default_factory=dict, compare=False)


class BlockSource(Protocol):
    """Something that yields its layers for one grid window as a ``(n_layers, rows, cols)`` float32 block."""

    layers: list[Layer]

    def read(self, rows: slice, cols: slice) -> np.ndarray: ...

    def close(self) -> None: ...


def layer_name(stem: str) -> str:
    """A safe layer name from a file stem: letters, digits and ``_`` only, not starting with a digit."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", stem).strip("_") or "layer"
    return f"l_{name}" if name[0].isdigit() else name


def linear_units(grid: GridSpec) -> str:
    """Short name of the grid CRS's length unit (``m`` for metres)."""
    crs = grid.crs
    units = (crs.linear_units or "").lower() if crs.is_projected else "degree"
    if not crs.is_projected:  # an engineering (local) CRS has linear axes too
        import pyproj

        local = pyproj.CRS.from_wkt(grid.crs_wkt)
        if local.is_engineering and local.axis_info:
            units = local.axis_info[0].unit_name.lower()
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


# --------------------------------------------------------------------------------------------------- writer


def _create_store(path: Path, grid: GridSpec, layers: Sequence[Layer], chunk: int, codec: CodecSpec) -> dict[str, Any]:
    """Write coordinates and ``spatial_ref`` with xarray, then create empty float32 layer arrays."""
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr
    import zarr

    ds = xr.Dataset(coords={"y": grid.y_centres(), "x": grid.x_centres()})
    ds = ds.rio.write_crs(grid.crs_wkt).rio.write_transform(grid.affine).rio.write_coordinate_system()
    compressors = codec.zarr_compressors()
    encoding = {name: {"compressors": compressors} for name in ("x", "y", "spatial_ref")}
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
                **dict(layer.attributes),
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
