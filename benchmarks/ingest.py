"""Benchmark: ingest a synthetic multi-band GeoTIFF into a Zarr v3 raster stack, ours vs rioxarray+dask.

    python benchmarks/ingest.py [--size N] [--bands B] [--chunk C] [--json]

Writes a SYNTHETIC GeoTIFF (smooth fields plus noise, float32, EPSG:32750, tiled 512 x 512, uncompressed;
default 4 bands of 6000 x 6000 = 576 MB) to a temporary folder, then times, on the same file,
``geodl_hpc.archive.raster.ingest_raster`` and the baseline
``rioxarray.open_rasterio(path, chunks=...).to_zarr(...)`` (zarr v3, the same zstd level-3 codec and chunks).
Throughput is the uncompressed raster size divided by wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def write_synthetic_geotiff(path: Path, size: int, bands: int, seed: int = 0) -> None:
    """A synthetic float32 GeoTIFF: per band a smooth sinusoidal field plus Gaussian noise (not real data)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": bands,
        "dtype": "float32",
        "crs": "EPSG:32750",
        "transform": from_origin(400000.0, 7000000.0, 30.0, 30.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "nodata": None,
    }
    step = 512
    with rasterio.open(path, "w", **profile) as dst:
        dst.update_tags(note="synthetic benchmark data: smooth fields plus noise")
        for r0 in range(0, size, step):
            h = min(step, size - r0)
            yy = (np.arange(r0, r0 + h, dtype=np.float32) / size)[:, None]
            xx = (np.arange(size, dtype=np.float32) / size)[None, :]
            block = np.empty((bands, h, size), dtype=np.float32)
            for b in range(bands):
                k = 2.0 + b
                block[b] = np.sin(k * np.pi * xx) * np.cos((k + 1) * np.pi * yy) * 100.0
                block[b] += rng.standard_normal((h, size), dtype=np.float32)
            dst.write(block, window=Window(0, r0, size, h))


def run_ours(src: Path, out: Path, chunk: int) -> float:
    from geodl_hpc.archive.raster import ingest_raster

    t0 = time.perf_counter()
    ingest_raster(out, [src], chunk=chunk, progress=False)
    return time.perf_counter() - t0


def run_baseline(src: Path, out: Path, chunk: int) -> float:
    import rioxarray
    from zarr.codecs import ZstdCodec

    t0 = time.perf_counter()
    da = rioxarray.open_rasterio(src, chunks={"band": 1, "y": chunk, "x": chunk})
    ds = da.to_dataset(name="data")
    encoding = {"data": {"compressors": [ZstdCodec(level=3)], "chunks": (1, chunk, chunk)}}
    ds.to_zarr(out, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    return time.perf_counter() - t0


def _warm_imports() -> None:
    """Import the heavy modules both paths use, so neither timing includes import time."""
    import dask.array  # noqa: F401
    import rasterio  # noqa: F401
    import rioxarray  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import geodl_hpc.archive.raster  # noqa: F401


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6000, help="raster width = height in pixels (default 6000)")
    parser.add_argument("--bands", type=int, default=4, help="number of float32 bands (default 4)")
    parser.add_argument("--chunk", type=int, default=512, help="Zarr chunk edge in pixels (default 512)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="geodl-bench-"))
    try:
        src = tmp / "synthetic.tif"
        t0 = time.perf_counter()
        write_synthetic_geotiff(src, args.size, args.bands)
        write_s = time.perf_counter() - t0
        mb = args.size * args.size * args.bands * 4 / 1e6
        _warm_imports()
        # Ours first, then the baseline: the page cache is equally warm for both after the write.
        ours = run_ours(src, tmp / "ours.zarr", args.chunk)
        base = run_baseline(src, tmp / "baseline.zarr", args.chunk)
        result = {
            "data": "synthetic (smooth fields plus noise)",
            "size": args.size,
            "bands": args.bands,
            "chunk": args.chunk,
            "raster_mb": round(mb, 1),
            "write_geotiff_s": round(write_s, 2),
            "ours_s": round(ours, 3),
            "baseline_s": round(base, 3),
            "ours_mb_s": round(mb / ours, 1),
            "baseline_mb_s": round(mb / base, 1),
            "ratio": round(base / ours, 3),
            "cpus": os.cpu_count(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.json:
        print(
            f"ingest of {mb:.0f} MB synthetic GeoTIFF: ours {mb / ours:.0f} MB/s, baseline {mb / base:.0f} MB/s",
            file=sys.stderr,
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
