"""``geodl inspect``: what an archive holds, as a dict (the documented JSON contract) or as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    PROVENANCE_ATTR,
    archive_kind,
    parquet_geodl_meta,
)
from geodl_hpc.errors import ArchiveError

CONTRACT_KEYS = (
    "path",
    "kind",
    "complete",
    "variables",
    "dims",
    "shape",
    "chunks",
    "codecs",
    "dtype",
    "crs_epsg",
    "crs_wkt",
    "bounds",
    "resolution",
    "sampling_rate",
    "n_events",
    "statistics",
    "provenance",
)


def _codec_name(codec: Any) -> str:
    data: dict[str, Any] = codec.to_dict() if hasattr(codec, "to_dict") else {"name": type(codec).__name__}
    name = str(data.get("name", type(codec).__name__))
    level = (data.get("configuration") or {}).get("level")
    return f"{name}(level={level})" if level is not None else name


def _describe_zarr(path: Path) -> dict[str, Any]:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    info: dict[str, Any] = {"dims": {}, "shape": {}, "chunks": {}, "codecs": {}, "dtype": {}, "variables": []}
    coords: set[str] = set()
    statistics: dict[str, Any] = {}
    for name, array in sorted(group.arrays()):
        dims = getattr(array.metadata, "dimension_names", None) or ()
        for dim, size in zip(dims, array.shape, strict=False):
            if dim:
                info["dims"][dim] = int(size)
        if array.ndim == 1 and dims and dims[0] == name:
            coords.add(name)
        coords.update(str(array.attrs.get("coordinates", "")).split())
        info["shape"][name] = list(array.shape)
        info["chunks"][name] = list(array.chunks)
        info["codecs"][name] = [_codec_name(c) for c in array.compressors]
        info["dtype"][name] = str(array.dtype)
        if "statistics" in array.attrs:
            statistics[name] = array.attrs["statistics"]
    data_vars = [n for n in info["shape"] if n not in coords and n != "spatial_ref"]
    info["variables"] = attrs.get("layers") or data_vars
    info.update(
        crs_epsg=attrs.get("crs_epsg"),
        crs_wkt=attrs.get("crs_wkt"),
        bounds=attrs.get("bounds"),
        resolution=attrs.get("resolution"),
        sampling_rate=attrs.get("sampling_rate"),
        n_events=attrs.get("n_events"),
        statistics=statistics or attrs.get("statistics"),
        provenance=attrs.get(PROVENANCE_ATTR),
    )
    if attrs.get(KIND_ATTR) == "waveforms":
        info["statistics"] = {
            "starttime": attrs.get("starttime"),
            "n_stations": info["dims"].get("station"),
            "n_samples": info["dims"].get("time"),
        }
    return info


def _catalog_statistics(frame: Any) -> dict[str, Any]:
    if len(frame) == 0:
        return {}
    return {
        "time_min": str(frame["time"].min()),
        "time_max": str(frame["time"].max()),
        "magnitude_min": float(frame["magnitude"].min()),
        "magnitude_max": float(frame["magnitude"].max()),
        "depth_km_min": float(frame["depth_km"].min()),
        "depth_km_max": float(frame["depth_km"].max()),
    }


def _describe_parquet(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    meta = parquet_geodl_meta(path) or {}
    table = pq.read_table(path)
    frame = table.to_pandas()
    parquet_meta = pq.ParquetFile(path).metadata
    codecs = sorted({parquet_meta.row_group(0).column(i).compression for i in range(parquet_meta.num_columns)})
    return {
        "variables": table.column_names,
        "dims": {"event": table.num_rows},
        "shape": {name: [table.num_rows] for name in table.column_names},
        "chunks": {"row_groups": parquet_meta.num_row_groups},
        "codecs": {"parquet": codecs},
        "dtype": {f.name: str(f.type) for f in table.schema},
        "crs_epsg": None,
        "crs_wkt": None,
        "bounds": None,
        "resolution": None,
        "sampling_rate": None,
        "n_events": table.num_rows,
        "statistics": _catalog_statistics(frame),
        "provenance": meta.get(PROVENANCE_ATTR),
    }


def describe(path: Path) -> dict[str, Any]:
    """Everything ``geodl inspect --json`` reports, with every contract key present (null where n/a)."""
    path = Path(path)
    kind, complete = archive_kind(path)
    if path.suffix == ".parquet":
        info = _describe_parquet(path)
    else:
        info = _describe_zarr(path)
        if kind == "catalog":
            from geodl_hpc.archive.catalog import open_catalog

            info["n_events"] = info["dims"].get("event", 0)
            if complete:
                info["statistics"] = _catalog_statistics(open_catalog(path))
    info.update(path=str(path), kind=kind, complete=complete)
    return {key: info.get(key) for key in CONTRACT_KEYS}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def render_text(info: dict[str, Any]) -> str:
    """A human-readable summary of ``describe``'s result."""
    state = "complete" if info["complete"] else "INCOMPLETE (re-run the ingest)"
    lines = [f"{info['path']}: {info['kind']} archive, {state}"]
    lines.append("  dims:       " + ", ".join(f"{k}={v}" for k, v in (info["dims"] or {}).items()))
    if info["crs_epsg"] is not None or info["crs_wkt"]:
        crs = f"EPSG:{info['crs_epsg']}" if info["crs_epsg"] is not None else (info["crs_wkt"] or "")[:60]
        lines.append(f"  crs:        {crs}")
    for key in ("bounds", "resolution", "sampling_rate", "n_events"):
        if info[key] is not None:
            lines.append(f"  {key + ':':<11} {_fmt(info[key])}")
    lines.append("  variables:")
    stats = info["statistics"] or {}
    for name in info["variables"]:
        shape = info["shape"].get(name, [])
        chunks = info["chunks"].get(name) if isinstance(info["chunks"], dict) else None
        codecs = info["codecs"].get(name) if isinstance(info["codecs"], dict) else None
        dtype = info["dtype"].get(name, "")
        line = f"    {name:<18} {dtype:<8} shape={_fmt(shape)}"
        if chunks:
            line += f" chunks={_fmt(chunks)}"
        if codecs:
            line += f" codecs={','.join(codecs)}"
        lines.append(line)
        layer_stats = stats.get(name) if isinstance(stats.get(name), dict) else None
        if layer_stats:
            summary = " ".join(f"{k}={_fmt(v)}" for k, v in layer_stats.items())
            lines.append(f"      stats: {summary}")
    flat_stats = {k: v for k, v in stats.items() if not isinstance(v, dict)}
    if flat_stats:
        lines.append("  statistics: " + " ".join(f"{k}={_fmt(v)}" for k, v in flat_stats.items()))
    prov = info["provenance"] or {}
    if prov:
        lines.append(f"  provenance: {prov.get('tool')} at {prov.get('created')}")
        lines.append(f"    command:  {prov.get('command')}")
        for source in prov.get("sources", []):
            lines.append(f"    source:   {source['path']} sha256={source['sha256'][:16]}…")
    return "\n".join(lines)


def describe_json(path: Path) -> str:
    """``describe`` as indented JSON."""
    try:
        return json.dumps(describe(path), indent=2, default=str)
    except (KeyError, TypeError) as exc:
        raise ArchiveError(f"{path}: archive metadata is damaged ({exc}); re-run the ingest") from None


__all__ = ["COMPLETE_ATTR", "CONTRACT_KEYS", "describe", "describe_json", "render_text"]
