"""Earthquake catalogs: ComCat CSV, QuakeML (or any event format ObsPy reads), CSEP ASCII and generic CSV
-> one table with the contract columns, stored as Parquet or as a Zarr v3 group along ``event``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    PARQUET_META_KEY,
    PROVENANCE_ATTR,
    checked_encoding,
    mark_complete_zarr,
    parquet_geodl_meta,
    provenance,
    require_complete,
    require_files,
    staged_output,
)
from geodl_hpc.errors import ConfigError, InputDataError

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("time", "latitude", "longitude", "depth_km", "magnitude", "magnitude_type", "event_id")
FORMATS = ("auto", "comcat", "csep", "csv", "quakeml", "obspy")
DEPTH_UNITS = ("auto", "km", "m")
_METRES_THRESHOLD = 1000.0  # auto: a CSV depth column whose max |depth| exceeds this is in metres

_CSEP_HEADER = ["lon", "lat", "m", "time_string", "depth", "catalog_id", "event_id"]
_COMCAT_COLUMNS = {"time", "latitude", "longitude", "depth", "mag", "magtype", "id"}
_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "origin_time", "origintime", "datetime", "date_time", "time_string", "otime", "date"),
    "latitude": ("latitude", "lat", "evla"),
    "longitude": ("longitude", "lon", "long", "lng", "evlo"),
    "depth": ("depth_km", "depth_m", "depth", "dep", "evdp"),
    "magnitude": ("magnitude", "mag", "m", "mw", "ml", "evmag"),
    "magnitude_type": ("magnitude_type", "magtype", "mag_type", "magnitudetype"),
    "event_id": ("event_id", "eventid", "id", "evid", "publicid", "event"),
}


def _detect_format(source: Path) -> str:
    suffix = source.suffix.lower()
    if suffix in (".xml", ".qml", ".quakeml"):
        return "quakeml"
    try:
        with source.open("r", encoding="utf-8") as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        return "obspy"  # binary: let ObsPy try its event formats
    if not first.strip():
        raise InputDataError(f"{source}: catalog is empty (no events); check the file")
    header = [h.strip().strip('"').lower() for h in first.split(",")]
    if first.lstrip().startswith("<"):
        return "quakeml"
    if len(header) < 3:
        return "obspy"  # not comma separated: ObsPy's event readers (Nordic, ...)
    if header[: len(_CSEP_HEADER)] == _CSEP_HEADER:
        return "csep"
    if set(header) >= _COMCAT_COLUMNS:
        return "comcat"
    try:
        float(header[0])
        float(header[1])
        return "csep"  # headerless CSEP ASCII starts with lon, lat
    except ValueError:
        return "csv"


def _read_csv(source: Path, **kwargs: Any) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(source, skipinitialspace=True, **kwargs)
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{source}: catalog is empty (no events); check the file") from None
    except Exception as exc:
        raise InputDataError(
            f"{source}: not a readable CSV catalog ({exc.__class__.__name__}); check the file"
        ) from None


def _column(table: pd.DataFrame, name: str, source: Path, *, required: bool) -> str | None:
    lower = {str(c).strip().lower(): c for c in table.columns}
    for alias in _ALIASES[name]:
        if alias in lower:
            return str(lower[alias])
    if required:
        raise InputDataError(
            f"{source}: no {name} column (looked for {', '.join(_ALIASES[name])}); rename the column or pass --format"
        )
    return None


def _from_csv_table(table: pd.DataFrame, source: Path, depth_unit: str) -> tuple[pd.DataFrame, str]:
    """Map a CSV table's columns onto the contract columns; depth converted to km."""
    import pandas as pd

    cols = {
        name: _column(table, name, source, required=name in ("time", "latitude", "longitude", "magnitude"))
        for name in _ALIASES
    }
    out = pd.DataFrame(index=table.index)
    out["time"] = table[cols["time"]]
    for name in ("latitude", "longitude", "magnitude"):
        out[name] = _numeric(table[cols[name]], name, source)
    depth_col = cols["depth"]
    if depth_col is None:
        out["depth_km"] = np.nan
        unit = "km"
    else:
        depth = _numeric(table[depth_col], "depth", source)
        unit = _depth_unit(depth_col, depth, depth_unit)
        out["depth_km"] = depth / 1000.0 if unit == "m" else depth
    for name in ("magnitude_type", "event_id"):
        column = cols[name]
        out[name] = table[column].fillna("").astype(str).str.strip() if column is not None else ""
    return out, unit


def _depth_unit(column: str, depth: pd.Series, requested: str) -> str:
    if requested != "auto":
        return requested
    name = column.strip().lower()
    if name.endswith("_m"):
        return "m"
    if name.endswith("_km"):
        return "km"
    biggest = float(np.nanmax(np.abs(depth.to_numpy()))) if depth.notna().any() else 0.0
    return "m" if biggest > _METRES_THRESHOLD else "km"


def _numeric(values: pd.Series, name: str, source: Path) -> pd.Series:
    import pandas as pd

    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputDataError(f"{source}: row {row + 1}: {name} {values.iloc[row]!r} is not a number; fix that row")
    return converted.astype(np.float64)


def _read_csep(source: Path) -> pd.DataFrame:
    """pyCSEP's ASCII catalog: ``lon, lat, M, time_string, depth, catalog_id, event_id`` (depth in km)."""
    import pandas as pd

    with source.open("r", encoding="utf-8") as handle:
        first = handle.readline()
    has_header = first.strip().lower().startswith("lon")
    table = _read_csv(
        source, header=None, skiprows=1 if has_header else 0, names=_CSEP_HEADER, dtype={6: str}, usecols=range(7)
    )
    return pd.DataFrame(
        {
            "time": table["time_string"],
            "latitude": _numeric(table["lat"], "latitude", source),
            "longitude": _numeric(table["lon"], "longitude", source),
            "depth_km": _numeric(table["depth"], "depth", source),
            "magnitude": _numeric(table["m"], "magnitude", source),
            "magnitude_type": "",
            "event_id": table["event_id"].fillna("").astype(str).str.strip(),
        }
    )


def _read_obspy_events(source: Path) -> pd.DataFrame:
    """QuakeML, Nordic or any event format ObsPy reads; preferred origin and magnitude per event."""
    import obspy
    import pandas as pd

    try:
        catalog = obspy.read_events(str(source))
    except Exception as exc:
        raise InputDataError(
            f"{source}: not a catalog format this tool reads ({exc.__class__.__name__}); "
            "give ComCat CSV, CSEP ASCII, a CSV with time/latitude/longitude/depth/mag columns, or QuakeML"
        ) from None
    rows = []
    for i, event in enumerate(catalog):
        origin = event.preferred_origin() or (event.origins[0] if event.origins else None)
        if origin is None or origin.time is None:
            raise InputDataError(f"{source}: event {i + 1} ({event.resource_id}) has no origin time; remove it")
        magnitude = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes else None)
        rows.append(
            {
                "time": origin.time.isoformat() + "Z",
                "latitude": origin.latitude if origin.latitude is not None else np.nan,
                "longitude": origin.longitude if origin.longitude is not None else np.nan,
                "depth_km": origin.depth / 1000.0 if origin.depth is not None else np.nan,  # QuakeML: metres
                "magnitude": magnitude.mag if magnitude is not None and magnitude.mag is not None else np.nan,
                "magnitude_type": (magnitude.magnitude_type or "") if magnitude is not None else "",
                "event_id": str(event.resource_id),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _finish(table: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Parse times, check ranges (naming the row), wrap longitudes to [-180, 180], sort by time."""
    import pandas as pd

    if table.empty:
        raise InputDataError(f"{source}: catalog is empty (no events); check the file")
    raw = table["time"]
    try:
        times = pd.to_datetime(raw.astype(str).str.strip(), utc=True, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):
        times = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InputDataError(f"{source}: row {row + 1}: time {raw.iloc[row]!r} is not an ISO 8601 time; fix that row")
    table = table.copy()
    table["time"] = times.dt.as_unit("ns")
    for name, limit in (("latitude", 90.0), ("longitude", 360.0)):
        values = table[name].to_numpy()
        bad = ~(np.abs(values) <= limit) if name == "latitude" else ~((values >= -180.0) & (values <= limit))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                f"{source}: row {row + 1}: {name} {values[row]!r} is missing or out of range; fix that row"
            )
    lon = table["longitude"].to_numpy()
    table["longitude"] = np.where(lon > 180.0, lon - 360.0, lon)  # 0..360 east -> -180..180, exact otherwise
    table = table.sort_values("time", kind="stable").reset_index(drop=True)
    for name in ("latitude", "longitude", "depth_km", "magnitude"):
        table[name] = table[name].astype(np.float64)
    for name in ("magnitude_type", "event_id"):
        table[name] = table[name].astype(object)
    return table[list(COLUMNS)]


def read_catalog_table(source: Path, fmt: str = "auto", *, depth_unit: str = "auto") -> pd.DataFrame:
    """Read a catalog into the contract columns, sorted by time.

    ``fmt``: auto, comcat, csep, csv, quakeml or obspy (any event format ObsPy reads, e.g. Nordic).
    ``depth_unit`` applies to CSV depths (auto: a column named ``*_m`` or a max |depth| above 1000 means
    metres). The resolved format and depth unit are in ``table.attrs``.
    """
    source = require_files([Path(source)])[0]
    if fmt not in FORMATS:
        raise ConfigError(f"catalog format {fmt!r}: use one of {', '.join(FORMATS)}")
    if depth_unit not in DEPTH_UNITS:
        raise ConfigError(f"catalog depth unit {depth_unit!r}: use one of {', '.join(DEPTH_UNITS)}")
    resolved = _detect_format(source) if fmt == "auto" else fmt
    if resolved in ("quakeml", "obspy"):
        table, unit = _read_obspy_events(source), "m"
    elif resolved == "csep":
        table = _read_csep(source)
        unit = "km"
        if depth_unit == "m":
            table["depth_km"] = table["depth_km"] / 1000.0
            unit = "m"
    else:  # comcat and generic CSV share the column mapping (ComCat's depth is km)
        table, unit = _from_csv_table(_read_csv(source, dtype={"id": str}), source, depth_unit)
    table = _finish(table, source)
    table.attrs.update({"format": resolved, "depth_unit": unit})
    return table


def ingest_catalog(
    out: Path,
    source: Path,
    *,
    fmt: str = "auto",
    depth_unit: str = "auto",
    overwrite: bool = False,
    extra_provenance: dict[str, Any] | None = None,
) -> Path:
    """Ingest a catalog into Parquet (``out`` ends in ``.parquet``) or a Zarr v3 group; returns ``out``."""
    out = Path(out)
    table = read_catalog_table(Path(source), fmt, depth_unit=depth_unit)
    options = {
        "format": table.attrs["format"],
        "depth_unit": table.attrs["depth_unit"],
        "requested_depth_unit": depth_unit,
    }
    record = provenance([Path(source)], chunks={"event": len(table)}, extra={"options": options})
    if extra_provenance:
        record.update(extra_provenance)
    if out.suffix == ".parquet":
        _write_parquet(out, table, record, overwrite)
    else:
        _write_zarr(out, table, record, overwrite)
    return out


def _write_parquet(out: Path, table: pd.DataFrame, record: dict[str, Any], overwrite: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = {KIND_ATTR: "catalog", COMPLETE_ATTR: True, PROVENANCE_ATTR: record}
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), PARQUET_META_KEY: json.dumps(meta)})
    with staged_output(out, overwrite=overwrite) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")


def _write_zarr(out: Path, table: pd.DataFrame, record: dict[str, Any], overwrite: bool) -> None:
    import xarray as xr
    import zarr

    data = {name: ("event", table[name].to_numpy()) for name in COLUMNS if name != "time"}
    times = table["time"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]")
    ds = xr.Dataset({"time": ("event", times), **data})
    encoding = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64", "calendar": "proleptic_gregorian"}}
    with staged_output(out, overwrite=overwrite) as tmp:
        ds.to_zarr(str(tmp), zarr_format=3, consolidated=False, mode="w-", encoding=checked_encoding(ds, encoding))
        group = zarr.open_group(str(tmp), mode="r+")
        group.attrs.update({KIND_ATTR: "catalog", COMPLETE_ATTR: False, PROVENANCE_ATTR: record})
        mark_complete_zarr(tmp)


def open_catalog(path: Path) -> pd.DataFrame:
    """Read a complete catalog archive (Parquet or Zarr) as a DataFrame; provenance is in ``attrs``."""
    import pandas as pd
    import xarray as xr

    path = Path(path)
    require_complete(path, "catalog")
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
        meta = parquet_geodl_meta(path) or {}
    else:
        ds = xr.open_zarr(str(path), consolidated=False)
        table = pd.DataFrame({name: ds[name].values for name in COLUMNS})
        table["time"] = pd.to_datetime(table["time"], utc=True).dt.as_unit("ns")
        meta = dict(ds.attrs)
    for name in ("magnitude_type", "event_id"):
        table[name] = table[name].astype(str).astype(object)
    table.attrs[PROVENANCE_ATTR] = meta.get(PROVENANCE_ATTR)
    return table[list(COLUMNS)]
