"""Waveform archives: anything ObsPy reads -> one Zarr v3 group ``(station, channel, time)`` on a common time axis.

The ingest makes two passes over the sources: headers only (stations, channels, rates, time span), then each
file in turn, whose traces are written straight into their region of the archive. Only one source file is in
memory at a time; unwritten regions (gaps) keep the fill values ``data = 0`` and ``valid = False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    PROVENANCE_ATTR,
    CodecSpec,
    checked_encoding,
    mark_complete_zarr,
    provenance,
    require_complete,
    require_files,
    staged_output,
)
from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.progress import progress_bar

if TYPE_CHECKING:
    import obspy
    import xarray as xr

StationKey = tuple[str, str, str]  # network, station, location
_COMPONENT_ORDER = "ZNE123"
_RATE_TOL = 1e-6
_COORD_COLUMNS = ("latitude", "longitude", "elevation")


@dataclass
class _Head:
    """What the header pass learns about one station (or one channel of it)."""

    channels: dict[str, str] = field(default_factory=dict)  # component -> SEED channel code
    files: dict[str, str] = field(default_factory=dict)  # component -> first file that has it
    coords: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class _Pick:
    station: int
    phase: str
    time: Any  # obspy.UTCDateTime
    label: str


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _read(path: Path, *, headonly: bool) -> obspy.Stream:
    import obspy

    try:
        return obspy.read(str(path), headonly=headonly)
    except Exception as exc:  # ObsPy raises many types for a file it cannot parse
        reason = _one_line(f"{exc.__class__.__name__}: {exc}".replace(str(path), "").strip())
        raise InputDataError(
            f"{path}: not a waveform file ObsPy can read ({reason}); check the file or convert it to miniSEED"
        ) from None


def _component(channel: str) -> str:
    code = channel.strip()
    return code[-1] if code else "?"


def _key(stats: Any) -> StationKey:
    return (str(stats.network or ""), str(stats.station or ""), str(stats.location or ""))


def _sac_coords(stats: Any) -> tuple[float, float, float] | None:
    sac = stats.get("sac")
    if not sac or sac.get("stla") is None or sac.get("stlo") is None:
        return None
    elev = sac.get("stel")
    return (float(sac["stla"]), float(sac["stlo"]), float(elev) if elev is not None else math.nan)


def _channel_order(components: set[str]) -> list[str]:
    return sorted(components, key=lambda c: (_COMPONENT_ORDER.find(c) if c in _COMPONENT_ORDER else 99, c))


def _check_rates(rates: dict[float, list[Path]], sampling_rate: float | None) -> float:
    if sampling_rate is not None:
        if not (sampling_rate > 0 and math.isfinite(sampling_rate)):
            raise ConfigError(f"sampling_rate: {sampling_rate!r} is not a positive number of Hz")
        return float(sampling_rate)
    if len(rates) > 1:
        parts = []
        for rate, files in sorted(rates.items()):
            names = ", ".join(p.name for p in files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
            parts.append(f"{rate:g} Hz in {names}")
        raise InputDataError(
            f"traces have different sampling rates ({'; '.join(parts)}); pass --sampling-rate HZ to resample them"
        )
    return next(iter(rates))


def _station_table(path: Path) -> dict[StationKey, tuple[float, float, float]]:
    """Station coordinates from a CSV (network,station,location,latitude,longitude,elevation) or StationXML."""
    if path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as exc:
            raise InputDataError(f"{path}: not a readable stations CSV ({exc.__class__.__name__})") from None
        table.columns = [str(c).strip().lower() for c in table.columns]
        for column in ("station", "latitude", "longitude"):
            if column not in table.columns:
                raise InputDataError(
                    f"{path}: stations CSV has no {column!r} column; "
                    "expected network,station,location,latitude,longitude,elevation"
                )
        out: dict[StationKey, tuple[float, float, float]] = {}
        for i, row in enumerate(table.to_dict("records")):
            try:
                values = tuple(float(row[c]) if row.get(c, "") != "" else math.nan for c in _COORD_COLUMNS)
            except ValueError:
                raise InputDataError(f"{path}: row {i + 1} has a non-numeric coordinate; fix that row") from None
            key = (row.get("network", "").strip(), row["station"].strip(), row.get("location", "").strip())
            out[key] = (values[0], values[1], values[2])
        return out
    import obspy

    try:
        inventory = obspy.read_inventory(str(path))
    except Exception as exc:
        raise InputDataError(
            f"{path}: not a stations CSV or a StationXML file ObsPy can read ({exc.__class__.__name__}); "
            "give network,station,location,latitude,longitude,elevation as CSV"
        ) from None
    out = {}
    for net in inventory:
        for sta in net:
            elev = float(sta.elevation) if sta.elevation is not None else math.nan
            out.setdefault((net.code, sta.code, ""), (float(sta.latitude), float(sta.longitude), elev))
            for cha in sta:
                if cha.latitude is not None and cha.longitude is not None:
                    cha_elev = float(cha.elevation) if cha.elevation is not None else elev
                    out.setdefault(
                        (net.code, sta.code, cha.location_code or ""),
                        (float(cha.latitude), float(cha.longitude), cha_elev),
                    )
    return out


def _lookup_coords(
    key: StationKey, table: dict[StationKey, tuple[float, float, float]]
) -> tuple[float, float, float] | None:
    net, sta, loc = key
    for candidate in ((net, sta, loc), (net, sta, ""), ("", sta, loc), ("", sta, "")):
        if candidate in table:
            return table[candidate]
    return None


def _match_station(keys: list[StationKey], net: str, sta: str, loc: str | None) -> list[int]:
    hits = [i for i, k in enumerate(keys) if k[1] == sta and (not net or k[0] == net)]
    if loc is not None and len(hits) > 1:
        exact = [i for i in hits if keys[i][2] == loc]
        hits = exact or hits
    return hits


def _read_picks(path: Path, keys: list[StationKey]) -> list[_Pick]:
    """Picks from a CSV (station, phase, time) or an event file ObsPy reads (QuakeML, Nordic, ...)."""
    import obspy

    def resolve(net: str, sta: str, loc: str | None, label: str) -> int:
        hits = _match_station(keys, net, sta, loc)
        name = ".".join(p for p in (net, sta) if p)
        if not hits:
            known = ", ".join(".".join(p for p in k[:2] if p) for k in keys[:8])
            raise InputDataError(f"{path}: {label}: station {name!r} is not in the waveforms (they have {known})")
        if len(hits) > 1:
            raise InputDataError(f"{path}: {label}: station {name!r} is ambiguous; write it as NET.STA")
        return hits[0]

    picks: list[_Pick] = []
    if path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as exc:
            raise InputDataError(f"{path}: not a readable picks CSV ({exc.__class__.__name__})") from None
        table.columns = [str(c).strip().lower() for c in table.columns]
        for column in ("station", "phase", "time"):
            if column not in table.columns:
                raise InputDataError(f"{path}: picks CSV has no {column!r} column; expected station,phase,time")
        for i, row in enumerate(table.to_dict("records")):
            label = f"row {i + 1}"
            parts = row["station"].strip().split(".")
            net, sta, loc = ("", parts[0], None) if len(parts) == 1 else (parts[0], parts[1], None)
            if len(parts) >= 3:
                loc = parts[2]
            try:
                time = obspy.UTCDateTime(row["time"].strip())
            except Exception:
                raise InputDataError(f"{path}: {label}: time {row['time']!r} is not an ISO 8601 time") from None
            picks.append(_Pick(resolve(net, sta, loc, label), row["phase"].strip(), time, label))
        return picks
    try:
        catalog = obspy.read_events(str(path))
    except Exception as exc:
        raise InputDataError(
            f"{path}: not a picks CSV (station,phase,time) or an event file ObsPy can read ({exc.__class__.__name__})"
        ) from None
    for event in catalog:
        amplitude_picks = {str(a.pick_id) for a in event.amplitudes if a.pick_id is not None}
        for pick in event.picks:
            if str(pick.resource_id) in amplitude_picks or pick.waveform_id is None:
                continue  # amplitude readings (IAML, ...) are not phase arrivals
            wid = pick.waveform_id
            label = f"pick {wid.get_seed_string()} {pick.phase_hint or '?'} at {pick.time}"
            index = resolve(wid.network_code or "", wid.station_code or "", wid.location_code, label)
            picks.append(_Pick(index, pick.phase_hint or "", pick.time, label))
    return picks


def _to_grid(trace: obspy.Trace, rate: float, t0: Any) -> tuple[int, np.ndarray]:
    """The trace's first grid index and samples at ``rate``; resampled (zero-phase, anti-aliased) if needed."""
    native = float(trace.stats.sampling_rate)
    offset = (trace.stats.starttime - t0) * rate
    if abs(native - rate) <= _RATE_TOL * rate:
        return round(offset), np.asarray(trace.data)
    trace = trace.copy()
    trace.data = np.asarray(trace.data, dtype=np.float64)
    if rate < native:
        trace.resample(rate, window="hann")  # FFT resampling: spectrum truncated at the new Nyquist
        offset = (trace.stats.starttime - t0) * rate
        if abs(offset - round(offset)) < 1e-3:
            return round(offset), trace.data
    first = math.ceil(offset - 1e-6)
    start = max(t0 + first / rate, trace.stats.starttime)  # never before the data (float rounding)
    if trace.stats.npts < 2 or start > trace.stats.endtime:
        return first, np.zeros(0)
    trace.interpolate(rate, method="lanczos", a=20, starttime=start)
    return first, trace.data


def _write_trace(trace: obspy.Trace, index: tuple[int, int], rate: float, t0: Any, data: Any, valid: Any) -> None:
    first, values = _to_grid(trace, rate, t0)
    ntime = data.shape[2]
    lo, hi = max(first, 0), min(first + len(values), ntime)
    if hi <= lo:
        return
    si, ci = index
    data[si, ci, lo:hi] = np.asarray(values[lo - first : hi - first], dtype=np.float32)
    valid[si, ci, lo:hi] = True


def ingest_waveforms(
    out: Path,
    sources: Sequence[Path],
    *,
    sampling_rate: float | None = None,
    picks: Path | None = None,
    stations: Path | None = None,
    chunk_samples: int = 65536,
    codec: CodecSpec = CodecSpec(),  # noqa: B008 - frozen dataclass, safe as a default
    overwrite: bool = False,
    progress: bool = True,
    extra_provenance: dict[str, Any] | None = None,
) -> Path:
    """Ingest waveform files (any format ObsPy reads) into a waveform archive at ``out``; returns ``out``."""
    import xarray as xr
    import zarr

    out = Path(out)
    files = require_files(list(sources))
    if chunk_samples < 1:
        raise ConfigError(f"storage.chunk: {chunk_samples} samples per chunk; use a positive number")
    codec.zarr_compressors()  # validate the codec name before any work

    # Pass 1: headers only.
    heads: dict[StationKey, _Head] = {}
    rates: dict[float, list[Path]] = {}
    t_start: Any = None
    t_end: Any = None
    for path in progress_bar(files, desc="scan", unit="file", enabled=progress):
        for tr in _read(path, headonly=True):
            if tr.stats.npts == 0:
                continue
            rate = round(float(tr.stats.sampling_rate), 6)
            rates.setdefault(rate, [])
            if path not in rates[rate]:
                rates[rate].append(path)
            key, comp = _key(tr.stats), _component(tr.stats.channel)
            head = heads.setdefault(key, _Head())
            if comp in head.channels and head.channels[comp] != tr.stats.channel:
                raise InputDataError(
                    f"{path}: {tr.id} and channel {head.channels[comp]!r} in {head.files[comp]} are both component "
                    f"{comp!r} of {'.'.join(key)}; give only one band/instrument per station"
                )
            head.channels[comp] = tr.stats.channel
            head.files.setdefault(comp, str(path))
            head.coords = head.coords or _sac_coords(tr.stats)
            t_start = tr.stats.starttime if t_start is None else min(t_start, tr.stats.starttime)
            t_end = tr.stats.endtime if t_end is None else max(t_end, tr.stats.endtime)
    if not heads:
        names = ", ".join(p.name for p in files[:3])
        raise InputDataError(f"{names}: no waveform samples in these files; check that they hold traces")
    rate = _check_rates(rates, sampling_rate)
    ntime = round((t_end - t_start) * rate) + 1

    keys = sorted(heads)
    channels = _channel_order({c for h in heads.values() for c in h.channels})
    coord_table = _station_table(Path(stations)) if stations is not None else {}
    coords = np.full((len(keys), 3), np.nan)
    for i, key in enumerate(keys):
        found = _lookup_coords(key, coord_table) or heads[key].coords
        if found:
            coords[i] = found
    codes = np.array([[heads[k].channels.get(c, "") for c in channels] for k in keys], dtype=object)

    pick_list: list[_Pick] = []
    extra_sources: list[Path] = []
    if picks is not None:
        picks_path = require_files([Path(picks)])[0]
        pick_list = sorted(_read_picks(picks_path, keys), key=lambda p: (p.time, p.station))
        extra_sources.append(picks_path)
        t_last = t_start + (ntime - 1) / rate
        for p in pick_list:
            if not 0 <= round((p.time - t_start) * rate) < ntime:
                raise InputDataError(
                    f"{picks_path}: {p.label} is outside the waveforms' time span {t_start} - {t_last}; "
                    "remove it or add waveforms covering it"
                )
    if stations is not None:
        extra_sources.append(Path(stations))

    chunks = {"station": 1, "channel": len(channels), "time": min(chunk_samples, ntime)}
    options = {
        "sampling_rate": rate,
        "resampled": sampling_rate is not None,
        "picks": str(picks) if picks is not None else None,
        "stations": str(stations) if stations is not None else None,
    }
    record = provenance([*files, *extra_sources], chunks=chunks, codec=codec, extra={"options": options})
    if extra_provenance:
        record.update(extra_provenance)

    ds = xr.Dataset(
        coords={
            "station": ("station", np.array([k[1] for k in keys], dtype=object)),
            "network": ("station", np.array([k[0] for k in keys], dtype=object)),
            "location": ("station", np.array([k[2] for k in keys], dtype=object)),
            "latitude": ("station", coords[:, 0], {"units": "degrees_north"}),
            "longitude": ("station", coords[:, 1], {"units": "degrees_east"}),
            "elevation": ("station", coords[:, 2], {"units": "m"}),
            "channel": ("channel", np.array(channels, dtype=object)),
        },
        data_vars={"channel_code": (("station", "channel"), codes)},
    )
    if picks is not None:
        times = np.array([p.time - t_start for p in pick_list], dtype=np.float64)
        ds["pick_station"] = ("pick", np.array([p.station for p in pick_list], dtype=np.int64))
        ds["pick_phase"] = ("pick", np.array([p.phase for p in pick_list], dtype=object))
        ds["pick_time_s"] = ("pick", times, {"units": "s after starttime"})
        ds["pick_sample"] = ("pick", np.array([round(t * rate) for t in times], dtype=np.int64))

    with staged_output(out, overwrite=overwrite) as tmp:
        ds.to_zarr(str(tmp), zarr_format=3, consolidated=False, mode="w-", encoding=checked_encoding(ds))
        group = zarr.open_group(str(tmp), mode="r+")
        shape = (len(keys), len(channels), ntime)
        chunk_shape = (1, len(channels), chunks["time"])
        common: dict[str, Any] = {"shape": shape, "chunks": chunk_shape, "compressors": codec.zarr_compressors()}
        dims = ("station", "channel", "time")
        data = group.create_array("data", dtype="float32", fill_value=0.0, dimension_names=dims, **common)
        data.attrs.update({"long_name": "ground motion", "units": "counts"})
        valid = group.create_array("valid", dtype="bool", fill_value=False, dimension_names=dims, **common)
        valid.attrs["long_name"] = "True where a sample was recorded (False in gaps)"
        group.attrs.update(
            {
                KIND_ATTR: "waveforms",
                COMPLETE_ATTR: False,
                PROVENANCE_ATTR: record,
                "sampling_rate": rate,
                "starttime": t_start.isoformat() + "Z",
            }
        )
        index = {k: i for i, k in enumerate(keys)}
        cindex = {c: i for i, c in enumerate(channels)}
        # Pass 2: one file in memory at a time, each trace written into its region.
        for path in progress_bar(files, desc="write", unit="file", enabled=progress):
            stream = _read(path, headonly=False).split()  # masked (gappy) traces -> contiguous pieces
            for tr in stream:
                if tr.stats.npts == 0:
                    continue
                where = (index[_key(tr.stats)], cindex[_component(tr.stats.channel)])
                _write_trace(tr, where, rate, t_start, data, valid)
            del stream
        mark_complete_zarr(tmp)
    return out


def _select_stations(ds: xr.Dataset, station: str | int | None, path: Path) -> list[int]:
    n = ds.sizes["station"]
    if station is None:
        return list(range(n))
    if isinstance(station, int):
        if not 0 <= station < n:
            raise InputDataError(f"{path}: station index {station} out of range (archive has {n} stations)")
        return [station]
    nets = [str(v) for v in ds["network"].values]
    codes = [str(v) for v in ds["station"].values]
    parts = station.split(".")
    net, sta = ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    hits = [i for i in range(n) if codes[i] == sta and (not net or nets[i] == net)]
    if not hits:
        raise InputDataError(f"{path}: no station {station!r} in this archive (it has {', '.join(codes[:8])})")
    return hits


def to_obspy_stream(path: Path, station: str | int | None = None) -> obspy.Stream:
    """Read a waveform archive (or one station: code, ``NET.STA`` or index) back as an ObsPy Stream.

    Every contiguous run of valid samples becomes one Trace, so gaps stay gaps.
    """
    import obspy
    import xarray as xr

    path = Path(path)
    require_complete(path, "waveforms")
    ds = xr.open_zarr(str(path), consolidated=False)
    rate = float(ds.attrs["sampling_rate"])
    t0 = obspy.UTCDateTime(ds.attrs["starttime"])
    stream = obspy.Stream()
    for si in _select_stations(ds, station, path):
        block = ds.isel(station=si)
        values = block["data"].values
        mask = block["valid"].values
        for ci, comp in enumerate(str(c) for c in ds["channel"].values):
            code = str(block["channel_code"].values[ci])
            if not code:
                continue
            edges = np.flatnonzero(np.diff(np.concatenate(([0], mask[ci].astype(np.int8), [0]))))
            for lo, hi in zip(edges[::2], edges[1::2], strict=True):
                header = {
                    "network": str(block["network"].values),
                    "station": str(block["station"].values),
                    "location": str(block["location"].values),
                    "channel": code or comp,
                    "sampling_rate": rate,
                    "starttime": t0 + int(lo) / rate,
                }
                stream.append(obspy.Trace(data=np.ascontiguousarray(values[ci, lo:hi]), header=header))
    return stream
