"""Continuous annotation of a waveform archive by a phase picker: probability traces (Zarr) and picks.

Work items are station x time blocks of whole archive chunks. Per block: read the samples of every window that
touches the block (extended by the pick separation), cut windows on the trace's global grid, normalise each as
in training, run them in batches (no grad), stack (mean or max) into the block's probability trace, write the
block's whole output chunks, find its picks and record both in the ledger. Only one block (+ halo and one batch
of windows) is in memory per worker. Blocks run in-process, as Ray tasks, or split by ``rank``/``n_ranks``
between processes (Slurm array tasks); whoever finishes the last block writes the pick table, the QuakeML and
the completion flag (last).

Output layout (``OUT``, Zarr v3 read by ``xr.open_zarr(OUT, consolidated=False)``): ``probabilities (station,
class, time)`` float32 in [0, 1] (NaN before a block is written), chunked ``(1, K, archive time chunk)`` on the
archive's time axis (root ``starttime`` and ``sampling_rate`` as in the archive); station coordinates as in the
archive, ``class`` names; picks along ``pick`` like the archive's labels (``pick_station``, ``pick_phase``,
``pick_time_s``, ``pick_sample``, ``pick_probability``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    checked_encoding,
    provenance,
    require_complete,
)
from geodl_hpc.errors import ArchiveError, ConfigError, InputDataError
from geodl_hpc.inference.annotate_config import AnnotateJobConfig
from geodl_hpc.inference.annotate_kernels import (
    Stacker,
    TimeBlock,
    cut_windows,
    local_peaks,
    read_span,
    time_blocks,
    window_starts,
)
from geodl_hpc.inference.annotate_picker import Picker, as_picker
from geodl_hpc.inference.annotate_picks import Pick, finalise, output_files
from geodl_hpc.inference.writer import (
    RUN_ID_ATTR,
    SETTINGS_ATTR,
    Ledger,
    create_once,
    ledger_folder,
    map_id,
    read_settings,
    settings_diff,
)
from geodl_hpc.progress import progress_bar

if TYPE_CHECKING:
    pass

ANNOTATION_ATTR = "geodl_annotation"
__all__ = ["ANNOTATION_ATTR", "Pick", "Picker", "annotate", "as_picker", "finalise", "output_files"]


@dataclass(frozen=True)
class ArchiveInfo:
    """The facts of a waveform archive that annotation needs."""

    path: Path
    n_stations: int
    n_time: int
    chunk: int
    channels: tuple[str, ...]
    sampling_rate: float
    starttime: str


def archive_info(path: Path) -> ArchiveInfo:
    import zarr

    require_complete(path, "waveforms")
    group: Any = zarr.open_group(str(path), mode="r")
    data = group["data"]
    channels = tuple(str(c) for c in group["channel"][...])
    attrs = dict(group.attrs)
    s, _c, t = (int(v) for v in data.shape)
    return ArchiveInfo(
        Path(path), s, t, int(data.chunks[2]), channels, float(attrs["sampling_rate"]), str(attrs["starttime"])
    )


def check_compatible(info: ArchiveInfo, picker: Picker, phases: Sequence[str]) -> list[int]:
    """Channel indices of the archive in the picker's order; one-line errors for a rate/channel/phase mismatch."""
    if abs(info.sampling_rate - picker.sampling_rate) > 1e-6 * picker.sampling_rate:
        raise InputDataError(
            f"{info.path}: sampled at {info.sampling_rate:g} Hz but the picker expects {picker.sampling_rate:g} Hz; "
            f"re-ingest with --sampling-rate {picker.sampling_rate:g}"
        )
    missing = [c for c in picker.channels if c not in info.channels]
    if missing:
        raise InputDataError(
            f"{info.path}: has channels {list(info.channels)} but the picker needs {list(picker.channels)}"
        )
    unknown = [p for p in phases if p not in picker.output_names]
    if unknown:
        raise ConfigError(f"phases: {unknown} are not outputs of the picker {list(picker.output_names)}")
    return [info.channels.index(c) for c in picker.channels]


# ------------------------------------------------------------------------------------------------ output


def _create_output(out: Path, info: ArchiveInfo, classes: Sequence[str], settings: dict[str, Any], codec: Any) -> bool:
    """Create the empty output at ``out`` unless it exists (private temp name, then rename); True if created."""
    import xarray as xr
    import zarr

    def build(tmp: Path) -> None:
        src = xr.open_zarr(str(info.path), consolidated=False)
        coords = {k: src[k].load() for k in ("station", "network", "location", "latitude", "longitude", "elevation")}
        ds = xr.Dataset(coords={**coords, "class": ("class", np.array(list(classes), dtype=object))})
        ds.to_zarr(str(tmp), zarr_format=3, consolidated=False, mode="w-", encoding=checked_encoding(ds))
        group: Any = zarr.open_group(str(tmp), mode="r+")
        arr = group.create_array(
            "probabilities",
            shape=(info.n_stations, len(classes), info.n_time),
            chunks=(1, len(classes), info.chunk),
            dtype="float32",
            fill_value=np.nan,
            compressors=codec.zarr_compressors(),
            dimension_names=("station", "class", "time"),
        )
        arr.attrs.update(
            {
                "long_name": "phase probability stacked over overlapping windows",
                "units": "1",
                "valid_range": [0.0, 1.0],
                "coordinates": "network location latitude longitude elevation",
            }
        )
        group.attrs.update(
            {
                SETTINGS_ATTR: settings,
                RUN_ID_ATTR: uuid.uuid4().hex[:16],
                COMPLETE_ATTR: False,
                "geodl_annotation_of": str(info.path.resolve()),
                "sampling_rate": info.sampling_rate,
                "starttime": info.starttime,
                "time_axis": "sample i is at starttime + i / sampling_rate (the archive's time axis)",
                "Conventions": "CF-1.10",
            }
        )

    return create_once(out, build)


# ------------------------------------------------------------------------------------------------ blocks


@dataclass(frozen=True)
class BlockJob:
    """Everything a worker needs to annotate blocks (picklable: sent to Ray tasks as is)."""

    archive: Path
    out: Path
    run_id: str
    info: ArchiveInfo
    channel_index: tuple[int, ...]
    stride: int
    stacking: str
    phases: tuple[str, ...]
    thresholds: tuple[float, ...]
    distance: int
    batch_size: int


@dataclass(frozen=True)
class BlockInput:
    """What one block needs from the archive: samples ``x (C, r1 - r0)`` from ``r0``, the window starts, and
    ``recorded`` over the block + pick margin ``[lo, hi)`` (False where every channel is in a gap)."""

    x: np.ndarray
    r0: int
    starts: np.ndarray
    lo: int
    recorded: np.ndarray


def read_block(data: Any, valid: Any, job: BlockJob, window: int, block: TimeBlock) -> BlockInput:
    """Read the samples of every window touching ``block`` (+ pick margin) and the gap mask of the margin."""
    n = job.info.n_time
    lo, hi = max(0, block.t0 - job.distance), min(n, block.t1 + job.distance)
    starts = window_starts(n, window, job.stride, lo, hi)
    r0, r1 = read_span(n, window, starts)
    channels = list(job.channel_index)
    x = np.asarray(data[block.station, :, r0:r1], dtype=np.float32)[channels]
    recorded = np.asarray(np.asarray(valid[block.station, :, lo:hi], dtype=bool)[channels].any(axis=0))
    return BlockInput(x, r0, starts, lo, recorded)


def annotate_block(picker: Picker, job: BlockJob, block: TimeBlock, inp: BlockInput) -> tuple[np.ndarray, list[Pick]]:
    """Stacked probabilities ``(K, block.samples)`` (NaN in gaps) and the picks whose sample lies in the block."""
    lo, hi = inp.lo, inp.lo + len(inp.recorded)
    stacker = Stacker(len(picker.output_names), lo, hi, job.stacking)  # type: ignore[arg-type]
    for b in range(0, len(inp.starts), job.batch_size):
        s = inp.starts[b : b + job.batch_size]
        stacker.add(picker.probabilities(cut_windows(inp.x, inp.r0, s, picker.window)), s)
    stacked = stacker.result()
    stacked[:, ~inp.recorded] = np.nan  # gaps (zeros in the archive) get no probability and no picks
    picks: list[Pick] = []
    for phase, threshold in zip(job.phases, job.thresholds, strict=True):
        k = picker.output_names.index(phase)
        for i in local_peaks(stacked[k], threshold, job.distance):
            sample = lo + int(i)
            if block.t0 <= sample < block.t1:
                picks.append((block.station, phase, sample, float(stacked[k, i])))
    return stacked[:, block.t0 - lo : block.t1 - lo], picks


def run_blocks(
    picker: Picker,
    job: BlockJob,
    blocks: Sequence[TimeBlock],
    *,
    threads: int = 0,
    progress: bool = False,
    on_block: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Annotate ``blocks`` in order (the next block is read while this one runs); each is written and recorded."""
    import zarr

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    archive: Any = zarr.open_group(str(job.archive), mode="r")
    data, valid = archive["data"], archive["valid"]
    probs_out: Any = zarr.open_group(str(job.out), mode="r+")["probabilities"]
    ledger = Ledger(ledger_folder(job.out), job.run_id)
    rate = job.info.sampling_rate
    t0 = time.perf_counter()
    samples = 0
    bar = progress_bar(blocks, total=len(blocks), enabled=progress, unit="block", desc=f"annotate {job.out.name}")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodl-annotate-read") as pool:

        def load(k: int) -> BlockInput:
            return read_block(data, valid, job, picker.window, blocks[k])

        pending: Future[BlockInput] | None = pool.submit(load, 0) if blocks else None
        for k, block in enumerate(bar):
            assert pending is not None  # one read is always in flight for the current block
            inp = pending.result()
            pending = pool.submit(load, k + 1) if k + 1 < len(blocks) else None
            stacked, picks = annotate_block(picker, job, block, inp)
            probs_out[block.station, :, block.t0 : block.t1] = stacked
            ledger.record(
                block.index,
                {"block": block.index, "station": block.station, "t0": block.t0, "t1": block.t1, "picks": picks},
            )
            samples += block.samples
            elapsed = time.perf_counter() - t0
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{samples / rate / 3600 / max(elapsed, 1e-9):.2f} station-h/s", refresh=False)
            if on_block is not None:
                on_block(block.index)
    return {"samples": float(samples), "seconds": time.perf_counter() - t0}


def _ray_run(picker: Picker, job: BlockJob, blocks: list[TimeBlock]) -> dict[str, float]:
    return run_blocks(picker, job, blocks, threads=1)


def run_blocks_ray(picker: Picker, job: BlockJob, blocks: Sequence[TimeBlock], workers: int) -> dict[str, float]:
    """Annotate ``blocks`` as ``workers`` Ray tasks (one CPU and one torch thread each), strided over the blocks."""
    from geodl_hpc.pipeline.loader import ensure_ray

    ray = ensure_ray(workers)
    workers = max(1, min(workers, len(blocks)))
    remote = ray.remote(num_cpus=1)(_ray_run)
    picker_ref = ray.put(picker)
    t0 = time.perf_counter()
    refs = [remote.remote(picker_ref, job, list(blocks[w::workers])) for w in range(workers)]
    results = ray.get(refs)
    return {"samples": float(sum(r["samples"] for r in results)), "seconds": time.perf_counter() - t0}


def annotate(model: Any, config: AnnotateJobConfig, *, on_block: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Annotate this rank's missing blocks of ``config.archive`` into ``config.output_path()``; finalise if last.

    ``model``: a picker path, a ``LoadedPicker`` or a :class:`Picker`. A finished output is a no-op; a killed
    run leaves its finished blocks in the ledger and the next run computes only the missing ones."""
    archive = Path(config.archive)
    out = config.output_path()
    info = archive_info(archive)
    picker = as_picker(model)
    channel_index = check_compatible(info, picker, config.phases)
    stride = config.stride or max(1, picker.window // 2)
    if stride > picker.window:
        raise ConfigError(f"stride: {stride} samples leaves gaps between windows of {picker.window}; lower it")
    settings = {
        **config.settings(),
        "archive": str(archive.resolve()),
        "stride": stride,
        "model_digest": picker.digest,
        "window": picker.window,
        "classes": list(picker.output_names),
    }
    settings.pop("model", None)
    if config.overwrite and out.exists() and config.rank == 0:
        shutil.rmtree(out)
        shutil.rmtree(ledger_folder(out), ignore_errors=True)
    if out.exists():
        old, complete = read_settings(out)
        if old is None:
            raise ArchiveError(f"{out}: exists and is not an annotation; remove it or choose another output")
        diff = settings_diff(old, settings)
        if diff:
            raise ArchiveError(f"{out}: was annotated with other settings ({', '.join(diff)}); pass overwrite=true")
        blocks = time_blocks(info.n_stations, info.n_time, info.chunk, config.block_chunks)
        if complete:
            return _result("noop", out, config, len(blocks), [], 0, 0.0, info)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not _create_output(out, info, picker.output_names, settings, _codec(config)):
            old, _ = read_settings(out)
            if old is None or settings_diff(old, settings):
                raise ArchiveError(f"{out}: another run created this output with other settings")
    blocks = time_blocks(info.n_stations, info.n_time, info.chunk, config.block_chunks)
    run_id = map_id(out)
    done = Ledger(ledger_folder(out), run_id).done()
    todo = [b for b in blocks if b.index % config.n_ranks == config.rank and b.index not in done]
    job = BlockJob(
        archive=archive,
        out=out,
        run_id=run_id,
        info=info,
        channel_index=tuple(channel_index),
        stride=stride,
        stacking=config.stacking,
        phases=tuple(config.phases),
        thresholds=tuple(config.threshold_of(p) for p in config.phases),
        distance=max(1, round(config.min_separation_s * info.sampling_rate)),
        batch_size=config.batch_size,
    )
    t0 = time.perf_counter()
    if todo and config.executor == "ray":
        run_blocks_ray(picker, job, todo, config.workers or (os.cpu_count() or 1))
    elif todo:
        run_blocks(picker, job, todo, threads=config.threads, progress=config.progress, on_block=on_block)
    seconds = time.perf_counter() - t0
    record = provenance(
        [picker.source] if picker.source and picker.source.is_file() else [],
        chunks={"station": 1, "class": len(picker.output_names), "time": info.chunk},
        codec=_codec(config),
        extra={"archive": str(archive.resolve()), "annotation": settings},
    )
    complete = finalise(out, len(blocks), config, record)
    samples = sum(b.samples for b in todo)
    return _result("complete" if complete else "partial", out, config, len(blocks), todo, samples, seconds, info)


def _codec(config: AnnotateJobConfig) -> Any:
    from geodl_hpc.archive.store import CodecSpec

    return CodecSpec(config.codec)


def _result(
    status: str,
    out: Path,
    config: AnnotateJobConfig,
    n_blocks: int,
    todo: Sequence[TimeBlock],
    samples: int,
    seconds: float,
    info: ArchiveInfo,
) -> dict[str, Any]:
    complete = status in ("complete", "noop")
    files = {k: str(v) for k, v in output_files(out, config.picks_format).items() if v.exists()} if complete else {}
    hours = samples / info.sampling_rate / 3600
    n_picks = None
    if complete:
        attrs = json.loads((out / "zarr.json").read_text()).get("attributes", {})
        n_picks = attrs.get("n_picks")
    return {
        "status": status,
        "output": str(out),
        "complete": complete,
        "blocks_total": n_blocks,
        "blocks_computed": len(todo),
        "computed": [b.index for b in todo],
        "station_hours": hours,
        "seconds": seconds,
        "station_hours_s": hours / seconds if seconds > 0 else 0.0,
        "n_picks": n_picks,
        "files": files,
    }
