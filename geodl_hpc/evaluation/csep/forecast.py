"""Gridded earthquake forecasts: CSEP ASCII and Zarr I/O, and binning of events onto the forecast grid.

A forecast is expected counts per (spatial cell, magnitude bin) over a time window. Cells are the
lon/lat squares of side ``dh`` given by their lower-left corners; magnitude bins are given by their
lower edges, the last bin open-ended. Binning reproduces pyCSEP's ``CartesianGrid2D`` and ``bin1d_vec``
conventions (lower edge inclusive, upper exclusive, a floating-point tolerance at the edges), so
that counts agree with pyCSEP event for event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    PROVENANCE_ATTR,
    checked_compressors,
    mark_complete_zarr,
    staged_output,
)
from geodl_hpc.errors import ArchiveError, InputDataError

FORECAST_KIND = "forecast"
_ASCII_COLUMNS = 10  # lon0 lon1 lat0 lat1 z0 z1 m0 m1 rate flag


@dataclass(frozen=True, eq=False)
class GriddedForecast:
    """Expected event counts ``rates`` (n_cells, n_mags) in [start, end) on a regular lon/lat grid.

    ``origins`` (n_cells, 2) are the lower-left lon/lat of each cell, ``dh`` the cell size in degrees,
    ``mag_edges`` (n_mags,) the lower magnitude bin edges (last bin open-ended). ``mask`` marks the
    cells that belong to the testing region (CSEP's flag column; None: all do).
    """

    rates: np.ndarray
    origins: np.ndarray
    dh: float
    mag_edges: np.ndarray
    start: np.datetime64 | None = None
    end: np.datetime64 | None = None
    name: str = "forecast"
    mask: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        rates = np.asarray(self.rates, dtype=np.float64)
        origins = np.asarray(self.origins, dtype=np.float64)
        mags = np.asarray(self.mag_edges, dtype=np.float64)
        if rates.ndim != 2 or origins.shape != (rates.shape[0], 2) or mags.shape != (rates.shape[1],):
            raise InputDataError(
                f"forecast {self.name!r}: rates {rates.shape}, origins {origins.shape} and mag_edges {mags.shape} "
                "do not fit (need (n_cells, n_mags), (n_cells, 2), (n_mags,))"
            )
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise InputDataError(f"forecast {self.name!r}: rates must be finite and >= 0; fix the forecast file")
        if not self.dh > 0:
            raise InputDataError(f"forecast {self.name!r}: cell size dh={self.dh} must be > 0")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "origins", origins)
        object.__setattr__(self, "mag_edges", mags)
        object.__setattr__(self, "dh", float(self.dh))
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_ms(value))
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.shape != (rates.shape[0],):
                raise InputDataError(f"forecast {self.name!r}: mask {mask.shape} must be (n_cells,)")
            object.__setattr__(self, "mask", mask)

    @property
    def n_cells(self) -> int:
        return int(self.rates.shape[0])

    @property
    def n_mags(self) -> int:
        return int(self.rates.shape[1])

    @property
    def event_count(self) -> float:
        """Expected number of events in the whole forecast."""
        return float(self.rates.sum())


def to_ms(value: Any) -> np.datetime64:
    """A time (datetime64, ISO string, datetime) as numpy datetime64[ms] (naive UTC)."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputDataError(f"time {value!r} is not an ISO 8601 time; write e.g. 2019-07-06T00:00:00") from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    out: np.datetime64 = np.datetime64(stamp.to_datetime64(), "ms")
    return out


# --- pyCSEP's binning conventions (csep/utils/calc.py: bin1d_vec, cleaner_range), ported exactly -----------------


def _tolerance(values: np.ndarray) -> np.ndarray | float:
    if issubclass(values.dtype.type, np.floating):
        return np.abs(values) * np.finfo(values.dtype).eps
    return 0.0


def bin1d(points: np.ndarray, edges: np.ndarray, *, right_continuous: bool = False) -> np.ndarray:
    """Index of the bin [edge_i, edge_i + h) holding each point, -1 outside (pyCSEP's ``bin1d_vec``)."""
    edges = np.asarray(edges, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    a0 = edges[0]
    if edges.size == 1:
        right_continuous, h = True, 1.0
    else:
        h = float(edges[1] - edges[0])
    a0_tol = _tolerance(np.asarray(a0))
    idx = np.floor((points - a0 + _tolerance(points) + a0_tol) / (h - a0_tol))
    idx = np.atleast_1d(idx)
    if right_continuous:
        idx[idx < 0] = -1
        idx[idx >= len(edges) - 1] = len(edges) - 1
    else:
        idx[(idx < 0) | (idx >= len(edges))] = -1
    return idx.astype(np.int64)


def cleaner_range(start: float, end: float, h: float) -> np.ndarray:
    """Regular edges from start to end (inclusive) on an integer grid, free of floating-point wander."""
    decimals = len(str(float(start)).split(".")[1])
    scale = max(10**decimals, 1 / h)
    first = np.round(scale * start)
    last = np.round(scale * end)
    step = scale * h
    return np.asarray(np.arange(first, last + step / 2, step) / scale)


@dataclass(frozen=True)
class RegionGrid:
    """pyCSEP's bounding-box lookup: cell lower edges ``xs``/``ys`` and the cell index of each box (-1: none)."""

    xs: np.ndarray
    ys: np.ndarray
    index: np.ndarray  # (len(ys), len(xs)) cell index, -1 where no valid cell


def region_grid(fc: GriddedForecast) -> RegionGrid:
    """The bounding-box lookup table pyCSEP's CartesianGrid2D builds (cells found by their midpoints)."""
    lons, lats = fc.origins[:, 0], fc.origins[:, 1]
    xs = cleaner_range(float(lons.min()), float(lons.max()), fc.dh)
    ys = cleaner_range(float(lats.min()), float(lats.max()), fc.dh)
    ix = bin1d(lons + fc.dh / 2, xs)
    iy = bin1d(lats + fc.dh / 2, ys)
    index = np.full((len(ys), len(xs)), -1, dtype=np.int64)
    ok = (ix >= 0) & (iy >= 0)
    if fc.mask is not None:
        ok &= fc.mask
    cells = np.arange(fc.n_cells)
    index[iy[ok], ix[ok]] = cells[ok]
    return RegionGrid(xs, ys, index)


def cell_index(lon: np.ndarray, lat: np.ndarray, fc: GriddedForecast) -> np.ndarray:
    """Forecast cell of each point, -1 outside the testing region (masked cells count as outside)."""
    grid = region_grid(fc)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    ix = bin1d(lon, grid.xs)
    iy = bin1d(lat, grid.ys)
    if len(grid.xs) == 1:  # pyCSEP lets a one-column grid run to +inf; we keep the cell's own width
        ix[lon >= grid.xs[0] + fc.dh] = -1
    if len(grid.ys) == 1:
        iy[lat >= grid.ys[0] + fc.dh] = -1
    inside = (ix >= 0) & (iy >= 0)
    out = np.full(lon.shape, -1, dtype=np.int64)
    out[inside] = grid.index[iy[inside], ix[inside]]
    return out


def bin_events(lon: np.ndarray, lat: np.ndarray, mag: np.ndarray, fc: GriddedForecast) -> np.ndarray:
    """Counts (n_cells, n_mags) of events on the forecast grid; events outside it or below its lowest bin dropped."""
    lon, lat, mag = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (lon, lat, mag))
    if not (lon.shape == lat.shape == mag.shape):
        raise InputDataError(f"bin_events: lon {lon.shape}, lat {lat.shape} and mag {mag.shape} differ in length")
    counts = np.zeros((fc.n_cells, fc.n_mags), dtype=np.float64)
    if lon.size == 0:
        return counts
    cells = cell_index(lon, lat, fc)
    mbin = bin1d(mag, fc.mag_edges, right_continuous=True)
    keep = (cells >= 0) & (mbin >= 0) & np.isfinite(mag)
    np.add.at(counts, (cells[keep], mbin[keep]), 1.0)
    return counts


# --- CSEP ASCII ---------------------------------------------------------------------------------------------------


def load_csep_ascii(
    path: Path,
    *,
    start: np.datetime64 | str | None = None,
    end: np.datetime64 | str | None = None,
    name: str | None = None,
) -> GriddedForecast:
    """Read a CSEP1 ASCII gridded forecast (``lon0 lon1 lat0 lat1 z0 z1 m0 m1 rate flag`` rows, magnitudes fastest).

    Same result as ``csep.load_gridded_forecast`` (rates parsed round-trip exact, cells in file order).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such forecast file; check the path")
    try:
        # pandas 3 parses floats exactly by default; before that, only with round_trip
        exact: dict[str, Any] = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
        table = pd.read_csv(path, sep=r"\s+", header=None, comment="#", dtype=float, **exact)
    except Exception as exc:
        raise InputDataError(
            f"{path}: not a CSEP ASCII gridded forecast ({exc.__class__.__name__}); "
            "expected rows of lon0 lon1 lat0 lat1 z0 z1 m0 m1 rate flag"
        ) from None
    data = table.to_numpy(dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != _ASCII_COLUMNS or data.shape[0] == 0:
        raise InputDataError(
            f"{path}: expected {_ASCII_COLUMNS} columns (lon0 lon1 lat0 lat1 z0 z1 m0 m1 rate flag), "
            f"found {data.shape[1] if data.ndim == 2 else 0}; is this a CSEP gridded forecast?"
        )
    m0 = data[:, 6]
    _, first = np.unique(m0, return_index=True)
    mags = m0[np.sort(first)]
    n_mags = len(mags)
    if data.shape[0] % n_mags:
        raise InputDataError(f"{path}: {data.shape[0]} rows is not a whole number of cells x {n_mags} magnitude bins")
    blocks = data.reshape(-1, n_mags, _ASCII_COLUMNS)
    if not (np.all(blocks[:, :, :4] == blocks[:, :1, :4]) and np.all(blocks[:, :, 6] == mags)):
        raise InputDataError(
            f"{path}: rows are not grouped by cell with magnitude bins {mags[0]}..{mags[-1]} fastest; "
            "sort the file by cell, then magnitude"
        )
    cells = blocks[:, 0, :]
    dh = float(cells[0, 3] - cells[0, 2])
    return GriddedForecast(
        rates=blocks[:, :, 8].copy(),
        origins=np.column_stack([cells[:, 0], cells[:, 2]]),
        dh=dh,
        mag_edges=mags,
        start=None if start is None else to_ms(start),
        end=None if end is None else to_ms(end),
        name=name or path.name.rsplit(".", 1)[0],
        mask=cells[:, 9] == 1,
    )


# --- Zarr ---------------------------------------------------------------------------------------------------------


def _time_attr(value: np.datetime64 | None) -> str | None:
    return None if value is None else str(to_ms(value))


def write_forecast_zarr(fc: GriddedForecast, path: Path, *, overwrite: bool = False) -> Path:
    """Write a forecast as a Zarr v3 group (arrays + attrs), staged and flagged complete last."""
    import zarr

    from geodl_hpc.archive.store import provenance

    path = Path(path)
    with staged_output(path, overwrite=overwrite) as tmp:
        group = zarr.open_group(str(tmp), mode="w-", zarr_format=3)
        chunk_cells = max(1, min(fc.n_cells, (1 << 20) // max(1, fc.n_mags)))
        arrays: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {
            "rates": (fc.rates, (chunk_cells, fc.n_mags)),
            "origins": (fc.origins, (chunk_cells, 2)),
            "mag_edges": (fc.mag_edges, (fc.n_mags,)),
            "mask": (np.ones(fc.n_cells, dtype=bool) if fc.mask is None else fc.mask, (chunk_cells,)),
        }
        for name, (values, chunks) in arrays.items():
            array = group.create_array(
                name, shape=values.shape, dtype=values.dtype, chunks=chunks, compressors=checked_compressors()
            )
            array[...] = values
        group.attrs.update(
            {
                KIND_ATTR: FORECAST_KIND,
                COMPLETE_ATTR: False,
                "dh": fc.dh,
                "start": _time_attr(fc.start),
                "end": _time_attr(fc.end),
                "name": fc.name,
                PROVENANCE_ATTR: provenance([], extra={"forecast": fc.name}),
            }
        )
        mark_complete_zarr(tmp)
    return path


def _read_zarr(path: Path) -> GriddedForecast:
    import zarr

    group: Any
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise ArchiveError(f"{path}: not a readable Zarr forecast ({exc.__class__.__name__})") from None
    attrs: dict[str, Any] = dict(group.attrs)
    if attrs.get(KIND_ATTR) != FORECAST_KIND:
        raise ArchiveError(f"{path}: a Zarr store but not a geodl forecast (no {KIND_ATTR}={FORECAST_KIND!r})")
    if not attrs.get(COMPLETE_ATTR, False) or ".partial-" in path.name:
        raise ArchiveError(f"{path}: forecast archive is incomplete (a write was interrupted); write it again")
    mask = np.asarray(group["mask"][...], dtype=bool)
    return GriddedForecast(
        rates=np.asarray(group["rates"][...]),
        origins=np.asarray(group["origins"][...]),
        dh=float(attrs["dh"]),
        mag_edges=np.asarray(group["mag_edges"][...]),
        start=None if attrs.get("start") is None else to_ms(attrs["start"]),
        end=None if attrs.get("end") is None else to_ms(attrs["end"]),
        name=str(attrs.get("name", path.name)),
        mask=None if mask.all() else mask,
    )


def read_forecast(path: Path) -> GriddedForecast:
    """Read a forecast: our Zarr forecast archive (a folder) or a CSEP ASCII gridded forecast (a file)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: no such forecast; give a CSEP ASCII .dat file or a forecast .zarr folder")
    if path.is_dir():
        if not ((path / "zarr.json").exists() or (path / ".zgroup").exists()):
            raise InputDataError(f"{path}: a folder but not a Zarr forecast; give a .dat file or a forecast .zarr")
        return _read_zarr(path)
    return load_csep_ascii(path)


# --- pyCSEP interop (tests) ---------------------------------------------------------------------------------------


def _to_datetime(value: np.datetime64 | None) -> dt.datetime | None:
    if value is None:
        return None
    seconds = value.astype("datetime64[ms]").astype(np.int64) / 1000.0
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def to_pycsep(fc: GriddedForecast) -> Any:
    """The same forecast as a ``csep.core.forecasts.GriddedForecast`` (pyCSEP needed; used by tests and benchmarks)."""
    from csep.core.forecasts import GriddedForecast as CsepForecast
    from csep.core.regions import CartesianGrid2D, compute_vertices
    from csep.models import Polygon

    polygons = [Polygon(bbox) for bbox in compute_vertices(fc.origins, fc.dh)]
    mask = None if fc.mask is None else fc.mask.astype(int)
    region = CartesianGrid2D(polygons, fc.dh, mask=mask, magnitudes=fc.mag_edges)
    return CsepForecast(
        start_time=_to_datetime(fc.start),
        end_time=_to_datetime(fc.end),
        data=fc.rates,
        region=region,
        magnitudes=fc.mag_edges,
        name=fc.name,
    )
