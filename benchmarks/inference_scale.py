"""Benchmark: tiled inference at continental scale over a lazily generated 40,000² x 8 synthetic raster stack.

    python benchmarks/inference_scale.py [--size 40000] [--layers 8] [--chunk 512] [--region-chunks 2]
                                         [--regions 48] [--small 1024] [--tile 256] [--width 16] [--json]

Input (synthetic, never stored): per layer a zero-mean, unit-variance Gaussian random field with squared-exponential
covariance (length 64 px) from random Fourier features (``geodl_hpc.inference.synthetic.GaussianFields``); only
the archive's metadata is on disk (about 1 MB) and a read-only zarr store generates each chunk when read
(``lazy_stack``). The real ``infer`` path (chunk cache, normalise, tiles, stitch, writer thread, ledger) runs rank 0
of N over a real Zarr output created for the whole map, where N is chosen so that rank 0 owns about ``--regions``
regions (a contiguous row-major block). Unwritten output chunks cost nothing on disk.

Reported: Mpx/s in successive windows of regions (``mpx_s_windows``: does throughput hold?), peak RSS of this
run vs whole ``--small``² maps with the same settings (``rss_ratio`` vs the first: bounded?), resident memory at
the end of each window (``rss_mb_now_windows``: growing or flat?), disk use of input and output, stage busy
seconds, and the projected wall time of the whole map on this machine. The per-GPU figure is a projection from
the measured host-side stages (read + write), not a GPU measurement. Each run is a fresh process
(``ru_maxrss`` is per process) with ``OPENBLAS_NUM_THREADS=1`` (the generator's small matrix products run in
zarr's I/O thread; multi-threaded BLAS only adds contention there).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CHILD = """
import json, resource, sys, time
from pathlib import Path
import torch
from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.runner import infer
from geodl_hpc.inference.synthetic import GaussianFields, lazy_stack
from geodl_hpc.models import build_model
from geodl_hpc.training.config import ModelConfig

a = json.loads(sys.argv[1])
work = Path(a["workdir"])
fields = GaussianFields(a["layers"], seed=0)
archive, store = lazy_stack(work / f"input_{a['size']}.zarr", a["size"], a["size"], fields, chunk=a["chunk"])
if a["threads"]:
    torch.set_num_threads(a["threads"])
torch.manual_seed(0)
model = build_model("prospectivity_cnn", a["layers"], width=a["width"], depth=3).eval()
cfg = InferJobConfig(model=ModelConfig(width=a["width"]), tile=a["tile"], region_chunks=a["region_chunks"],
                     batch_size=a["batch"], rank=0, n_ranks=a["n_ranks"], progress=False, export_tif=False,
                     export_png=False)
stamps = []
page_mb = resource.getpagesize() / 2**20

def rss_now():
    try:
        return int(open("/proc/self/statm").read().split()[1]) * page_mb
    except OSError:  # not Linux
        return None

start = time.perf_counter()
result = infer(archive, model, work / f"map_{a['size']}.zarr", cfg, on_region=lambda i: stamps.append(
    (i, time.perf_counter() - start, rss_now())), input_store=store)
result.pop("computed", None)
print(json.dumps({"result": result, "stamps": stamps, "generated_chunks": store.generated,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(args: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _du_bytes(*paths: Path) -> int:
    return sum(f.stat().st_size for p in paths if p.exists() for f in p.rglob("*") if f.is_file())


def _windows(stamps: list[list[float]], region_px: list[int], n_windows: int) -> list[float]:
    """Mpx/s over ``n_windows`` successive groups of regions (from the regions' completion times)."""
    rates = []
    bounds = [round(k * len(stamps) / n_windows) for k in range(n_windows + 1)]
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        t0 = stamps[lo - 1][1] if lo > 0 else 0.0
        rates.append(round(sum(region_px[lo:hi]) / 1e6 / (stamps[hi - 1][1] - t0), 3))
    return rates


def _rss_windows(stamps: list[list[Any]], n_windows: int) -> list[float | None]:
    """Resident memory (MB) when the last region of each window was recorded: growing or flat?"""
    picks = [round(k * len(stamps) / n_windows) - 1 for k in range(1, n_windows + 1)]
    return [None if stamps[i][2] is None else round(stamps[i][2], 1) for i in picks if i >= 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=40_000, help="raster side (pixels)")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--region-chunks", type=int, default=2)
    parser.add_argument("--regions", type=int, default=48, help="about how many regions rank 0 computes")
    parser.add_argument("--small", type=int, nargs="+", default=[1024, 2048], help="whole-map sides for RSS")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--width", type=int, default=16, help="model width (channels)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--windows", type=int, default=6, help="throughput windows to report")
    parser.add_argument("--workdir", type=Path, help="keep inputs and maps here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from geodl_hpc.inference.geometry import TilePlan

    side = args.chunk * args.region_chunks
    plan = TilePlan(args.size, args.size, args.tile, 3, 0, args.chunk, args.region_chunks)
    n_ranks = max(1, math.ceil(plan.n_regions / args.regions))
    mine = plan.regions(0, n_ranks)
    folder = Path(tempfile.mkdtemp(prefix="geodl-bench-scale-", dir=args.workdir))
    common = {"workdir": str(folder), "layers": args.layers, "chunk": args.chunk, "region_chunks": args.region_chunks,
              "tile": args.tile, "width": args.width, "batch": args.batch, "threads": args.threads}  # fmt: skip
    try:
        large = _child({**common, "size": args.size, "n_ranks": n_ranks})
        smalls = [_child({**common, "size": side, "n_ranks": 1}) for side in args.small]
        disk_input = _du_bytes(folder / f"input_{args.size}.zarr")
        out = folder / f"map_{args.size}.zarr"
        disk_output = _du_bytes(out, out.with_name(f".{out.name}.ledger"))
        written_chunks = sum(1 for _ in (out / "probability" / "c").rglob("*") if _.is_file())
    finally:
        if args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
    r = large["result"]
    region_px = [plan.region(i).size for i in mine]
    windows = _windows(large["stamps"], region_px, args.windows)
    total_px = args.size * args.size
    mpx_s = r["mpx_s"]
    stages = r["stage_seconds"]
    host_s = max(stages["read"], stages["write"])  # the two host stages run in their own threads
    result: dict[str, Any] = {
        "data": "synthetic, lazily generated (Gaussian random fields, squared-exponential covariance, 64 px)",
        "raster": [args.size, args.size, args.layers],
        "map_gpx": round(total_px / 1e9, 3),
        "chunk": args.chunk,
        "region_px": [side, side],
        "regions_total": plan.n_regions,
        "n_ranks": n_ranks,
        "regions_run": r["regions_computed"],
        "mpx_run": round(r["pixels"] / 1e6, 3),
        "seconds": round(r["seconds"], 2),
        "mpx_s": round(mpx_s, 3),
        "mpx_s_windows": windows,
        "throughput_last_vs_first_window": round(windows[-1] / windows[0], 3) if windows else None,
        "stage_seconds": stages,
        "generated_input_chunks": large["generated_chunks"],
        "rss_mb_large": round(large["rss_mb"], 1),
        "rss_mb_now_windows": _rss_windows(large["stamps"], args.windows),
        "rss_mb_small": {str(side): round(run["rss_mb"], 1) for side, run in zip(args.small, smalls, strict=True)},
        "rss_ratio": round(large["rss_mb"] / smalls[0]["rss_mb"], 3),
        "small_mpx_s": {
            str(side): round(run["result"]["mpx_s"], 3) for side, run in zip(args.small, smalls, strict=True)
        },
        "disk_input_mb": round(disk_input / 2**20, 3),
        "disk_output_mb": round(disk_output / 2**20, 3),
        "output_chunks_written": written_chunks,
        "projected_hours_whole_map_this_machine": round(total_px / 1e6 / mpx_s / 3600, 2),
        "projected_gpu_host_bound_mpx_s": round(r["pixels"] / 1e6 / host_s, 3) if host_s else None,
        "projected_hours_whole_map_per_gpu": round(total_px / (r["pixels"] / host_s) / 3600, 2) if host_s else None,
        "gpu_note": "projection, not measured: the forward is assumed faster than the host's read and write threads",
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:44s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
