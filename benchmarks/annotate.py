"""Benchmark: continuous annotation throughput (station-hours/s) of our path vs a naive window-by-window loop.

    python benchmarks/annotate.py [--stations S] [--hours H] [--rate HZ] [--window W] [--stride N]
                                  [--width W] [--depth D] [--batch B] [--workers N] [--rss-hours H] [--json]

Archive: SYNTHETIC white Gaussian noise, N(0, 1000^2) counts, 3 components, ``--stations`` x ``--hours`` at
``--rate`` Hz (throughput does not depend on the values; labelled synthetic in the archive's provenance).
Model: the PhaseNet picker of configs/seismic_picker.yaml (width 8, depth 4, kernel 7; random weights, seed 0).

- ours: ``annotate`` (blocks of archive chunks, windows batched ``--batch`` at a time, stacked, written to Zarr
  with the ledger and the picks table; QuakeML timed apart as ``ratio_with_quakeml``), in-process with all torch
  threads, and as ``--workers`` Ray tasks (one thread each); the faster one is ``ours_station_hours_s``.
- naive: the same model, one window at a time (same stride, same normalisation, all torch threads), each window
  read from the archive and mean-stacked into an in-memory trace per station; no output written.
- ``max_abs_diff_vs_naive``: ours and naive give the same probabilities (float tolerance).
- memory: peak RSS of ``annotate`` in a fresh subprocess for one station of ``--rss-hours`` and 4x that
  (``rss_ratio``; bounded memory means ~1).
Both paths run in the same process, one after the other, after a warm-up (imports, first torch calls); Ray
start-up is not timed. This machine is shared (load averages are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_archive(out: Path, stations: int, hours: float, rate: float, seed: int = 0) -> Path:
    """A waveform archive of white Gaussian noise written with the real ingest (via miniSEED, one file/station)."""
    import obspy

    from geodl_hpc.archive.waveforms import ingest_waveforms

    rng = np.random.default_rng(seed)
    n = round(hours * 3600 * rate)
    files = []
    for s in range(stations):
        stream = obspy.Stream()
        for comp in "ZNE":
            header = {"network": "SY", "station": f"S{s:03d}", "channel": f"HH{comp}", "sampling_rate": rate,
                      "starttime": obspy.UTCDateTime(2024, 1, 1)}  # fmt: skip
            stream.append(obspy.Trace((rng.normal(size=n) * 1000).astype(np.float32), header=header))
        path = out.parent / f"{out.stem}-{s}.mseed"
        stream.write(str(path), format="MSEED", encoding="FLOAT32")
        files.append(path)
    return ingest_waveforms(
        out, files, chunk_samples=65536, progress=False,
        extra_provenance={"label": "synthetic white Gaussian noise (benchmark)"},
    )  # fmt: skip


def make_picker(window: int, rate: float, width: int, depth: int) -> Any:
    import torch

    from geodl_hpc.inference.annotate import as_picker
    from geodl_hpc.models.picker import LoadedPicker, PhaseNet

    torch.manual_seed(0)
    module = PhaseNet(3, width=width, depth=depth, kernel=7).eval()
    return as_picker(LoadedPicker(module, window, rate, ("Z", "N", "E")))


def naive(archive: Path, picker: Any, stride: int) -> tuple[np.ndarray, float]:
    """One window at a time: read it, normalise, forward (batch of 1), mean-stack; returns traces and seconds."""
    import zarr

    from geodl_hpc.inference.annotate_kernels import window_starts

    group: Any = zarr.open_group(str(archive), mode="r")
    data = group["data"]
    s_n, _c, n = data.shape
    out = np.zeros((s_n, len(picker.output_names), n), dtype=np.float64)
    t0 = time.perf_counter()
    for s in range(s_n):
        count = np.zeros(n)
        for start in window_starts(n, picker.window, stride):
            x = np.asarray(data[s, :, start : start + picker.window], dtype=np.float32)[None]
            out[s, :, start : start + picker.window] += picker.probabilities(x)[0]
            count[start : start + picker.window] += 1
        out[s] /= count
    return out, time.perf_counter() - t0


def ours(archive: Path, picker: Any, out: Path, stride: int, **kw: Any) -> tuple[dict[str, Any], float]:
    from geodl_hpc.inference.annotate import annotate
    from geodl_hpc.inference.annotate_config import AnnotateJobConfig

    config = AnnotateJobConfig(archive=str(archive), output=str(out), stride=stride, progress=False, **kw)
    t0 = time.perf_counter()
    result = annotate(picker, config)
    return result, time.perf_counter() - t0


def _rss_child(args: argparse.Namespace, hours: float, folder: Path) -> int:
    """Peak RSS (VmHWM, KiB) of one annotate run in a fresh process (the archive is built here first).

    ``ru_maxrss`` would not do: Linux carries it across exec, so a child would report this process's peak."""
    archive = make_archive(folder / f"rss-{hours:g}.zarr", 1, hours, args.rate)
    command = [sys.executable, __file__, "--rss-child", str(archive), str(folder / f"rss-{hours:g}.ann.zarr")]
    for key in ("rate", "window", "stride", "width", "depth", "batch"):
        command += [f"--{key}", str(getattr(args, key))]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


def _vm_hwm_kib() -> int:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=2)
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=256)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rss-hours", type=float, default=0.5, help="0 skips the memory measurement")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rss-child", nargs=2, metavar=("ARCHIVE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        picker = make_picker(args.window, args.rate, args.width, args.depth)
        ours(Path(args.rss_child[0]), picker, Path(args.rss_child[1]), args.stride, batch_size=args.batch,
             threads=1, quakeml=False)  # fmt: skip
        print(_vm_hwm_kib())
        return {}

    import torch

    with tempfile.TemporaryDirectory(prefix="geodl-bench-annotate-") as tmp:
        folder = Path(tmp)
        archive = make_archive(folder / "noise.zarr", args.stations, args.hours, args.rate)
        picker = make_picker(args.window, args.rate, args.width, args.depth)
        station_hours = args.stations * args.hours
        # Warm-up outside the timings: one-time imports and torch's first calls at both batch sizes.
        import obspy.core.event  # noqa: F401 - imported for its one-time cost
        import xarray  # noqa: F401

        for b in (1, args.batch):
            picker.probabilities(np.zeros((b, 3, args.window), np.float32))
        load_before = os.getloadavg()

        naive_probs, naive_s = naive(archive, picker, args.stride)
        # QuakeML is timed apart: building ObsPy Pick objects costs ~0.3 ms a pick, and an untrained picker at
        # threshold 0.3 picks every few seconds (thousands of picks an hour, far beyond a trained one).
        local, local_s = ours(archive, picker, folder / "local.zarr", args.stride, batch_size=args.batch, quakeml=False)
        _q, quakeml_s = ours(archive, picker, folder / "quakeml.zarr", args.stride, batch_size=args.batch)
        import xarray as xr

        probs = xr.open_zarr(local["output"], consolidated=False)["probabilities"].values
        diff = float(np.abs(probs - naive_probs).max())
        timings = {"local": local_s}
        if not args.no_ray:
            from geodl_hpc.pipeline.loader import ensure_ray

            ensure_ray(args.workers)  # Ray start-up is not annotation time
            _r, ray_s = ours(
                archive, picker, folder / "ray.zarr", args.stride, batch_size=args.batch, executor="ray",
                workers=args.workers, quakeml=False,
            )  # fmt: skip
            timings["ray"] = ray_s
        best = min(timings, key=lambda k: timings[k])
        rss = {}
        if args.rss_hours > 0:
            short, long_ = _rss_child(args, args.rss_hours, folder), _rss_child(args, 4 * args.rss_hours, folder)
            rss = {"rss_hours": [args.rss_hours, 4 * args.rss_hours], "rss_peak_kib": [short, long_],
                   "rss_ratio": long_ / short}  # fmt: skip
        result = {
            "ours_station_hours_s": station_hours / timings[best],
            "naive_station_hours_s": station_hours / naive_s,
            "ratio": naive_s / timings[best],
            "ours_path": best,
            "ours_local_station_hours_s": station_hours / timings["local"],
            "ours_ray_station_hours_s": station_hours / timings["ray"] if "ray" in timings else None,
            "ratio_with_quakeml": naive_s / quakeml_s,
            "quakeml_ms_per_pick": 1e3 * max(quakeml_s - local_s, 0.0) / max(local["n_picks"], 1),
            "seconds": {"naive": naive_s, **timings, "local_with_quakeml": quakeml_s},
            "max_abs_diff_vs_naive": diff,
            "station_hours": station_hours,
            "n_picks": local["n_picks"],
            "settings": {**vars(args), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count()},
            "data": "synthetic white Gaussian noise (3-C), real waveform ingest; PhaseNet with random weights",
            "loadavg_before_after": [list(load_before), list(os.getloadavg())],
            "peak_rss_kib_this_process": _vm_hwm_kib(),
            **rss,
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
