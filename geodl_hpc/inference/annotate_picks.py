"""The last step of an annotation: every block's picks into the store, the pick table (CSV/Parquet) and QuakeML,
then the completion flag (last)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import COMPLETE_ATTR, PROVENANCE_ATTR, checked_compressors
from geodl_hpc.inference.annotate_config import AnnotateJobConfig
from geodl_hpc.inference.writer import Ledger, finalise_once

if TYPE_CHECKING:
    import pandas as pd

Pick = tuple[int, str, int, float]  # station index, phase, sample, probability


# ------------------------------------------------------------------------------------------------ finalise


def picks_frame(picks: Sequence[Pick], out: Path) -> pd.DataFrame:
    """The pick table: station, network, location, phase, time (UTC ISO), time_s, sample, probability."""
    import pandas as pd
    import zarr

    group: Any = zarr.open_group(str(out), mode="r")
    attrs = dict(group.attrs)
    rate = float(attrs["sampling_rate"])
    start = np.datetime64(str(attrs["starttime"]).removesuffix("Z"), "ns")
    codes = [str(v) for v in group["station"][...]]
    nets = [str(v) for v in group["network"][...]]
    locs = [str(v) for v in group["location"][...]]
    rows = sorted(picks, key=lambda p: (p[2], p[0], p[1]))
    sample = np.array([p[2] for p in rows], dtype=np.int64)
    offset_ns = np.round(sample * (1e9 / rate)).astype(np.int64)
    times = start + offset_ns.astype("timedelta64[ns]")
    return pd.DataFrame(
        {
            "network": [nets[p[0]] for p in rows],
            "station": [codes[p[0]] for p in rows],
            "location": [locs[p[0]] for p in rows],
            "station_index": np.array([p[0] for p in rows], dtype=np.int64),
            "phase": [p[1] for p in rows],
            "time": [np.datetime_as_string(t, unit="ms") + "Z" for t in times],
            "time_s": sample / rate,
            "sample": sample,
            "probability": np.array([p[3] for p in rows], dtype=np.float64),
        }
    )


def write_quakeml(table: pd.DataFrame, path: Path, channel_codes: dict[str, str] | None = None) -> Path:
    """The picks as QuakeML (one Event holding every pick) through ObsPy."""
    from obspy import UTCDateTime
    from obspy.core.event import Catalog, Comment, Event, Pick, WaveformStreamID

    event = Event()
    event.comments.append(Comment(text="automatic picks of geodl annotate (one event holds all picks)"))
    for row in table.itertuples(index=False):
        channel = (channel_codes or {}).get(f"{row.network}.{row.station}", "")
        wid = WaveformStreamID(
            network_code=row.network or None,
            station_code=row.station,
            location_code=row.location or None,
            channel_code=channel or None,
        )
        pick = Pick(time=UTCDateTime(str(row.time)), waveform_id=wid, phase_hint=str(row.phase),
                    evaluation_mode="automatic")  # fmt: skip
        pick.comments.append(Comment(text=f"probability={float(row.probability):.4f}"))
        event.picks.append(pick)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Catalog(events=[event]).write(str(tmp), format="QUAKEML")
    os.replace(tmp, path)
    return path


def output_files(out: Path, picks_format: str) -> dict[str, Path]:
    base = out.with_name(out.name.removesuffix(".zarr"))
    return {
        "picks": base.with_name(f"{base.name}.picks.{picks_format}"),
        "quakeml": base.with_name(f"{base.name}.picks.xml"),
    }


def finalise(out: Path, n_blocks: int, config: AnnotateJobConfig, record: dict[str, Any]) -> bool:
    """Once every block is in the ledger: picks into the store, the table and QuakeML, then the flag (last)."""
    import zarr

    def write(ledger: Ledger) -> None:
        picks: list[Pick] = []
        for index in range(n_blocks):
            picks.extend((int(p[0]), str(p[1]), int(p[2]), float(p[3])) for p in ledger.read(index)["picks"])
        table = picks_frame(picks, out)
        group: Any = zarr.open_group(str(out), mode="r+")
        n = len(table)
        columns = {
            "pick_station": (table["station_index"].to_numpy(np.int64), "index into station"),
            "pick_time_s": (table["time_s"].to_numpy(np.float64), "s after starttime"),
            "pick_sample": (table["sample"].to_numpy(np.int64), "sample index"),
            "pick_probability": (table["probability"].to_numpy(np.float32), "1"),
        }
        for name, (values, units) in columns.items():
            arr = group.create_array(
                name,
                shape=(n,),
                dtype=values.dtype,
                dimension_names=("pick",),
                overwrite=True,
                chunks=(max(n, 1),),
                compressors=checked_compressors(),
            )
            if n:
                arr[...] = values
            arr.attrs["units"] = units
        phase = group.create_array(
            "pick_phase",
            shape=(n,),
            dtype=str,
            dimension_names=("pick",),
            overwrite=True,
            chunks=(max(n, 1),),
            compressors=checked_compressors(),
        )
        if n:
            phase[...] = table["phase"].to_numpy(dtype=str)
        files = output_files(out, config.picks_format)
        tmp = files["picks"].with_name(f".{files['picks'].name}.{os.getpid()}.tmp")
        if config.picks_format == "parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
        os.replace(tmp, files["picks"])
        if config.quakeml:
            write_quakeml(table, files["quakeml"], _channel_codes(Path(config.archive)))
        group.attrs.update({PROVENANCE_ATTR: record, "n_picks": n})
        group.attrs[COMPLETE_ATTR] = True  # the last write: the annotation is complete from here on

    return finalise_once(out, n_blocks, write)


def _channel_codes(archive: Path) -> dict[str, str]:
    """``NET.STA`` -> a SEED channel code of the station's first channel with the band letters (e.g. ``HHZ``)."""
    import zarr

    group: Any = zarr.open_group(str(archive), mode="r")
    codes = group["channel_code"][...]
    out = {}
    for net, sta, row in zip(group["network"][...], group["station"][...], codes, strict=True):
        first = next((str(c) for c in row if str(c)), "")
        out[f"{net}.{sta}"] = first
    return out


# ------------------------------------------------------------------------------------------------ entry
