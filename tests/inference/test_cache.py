"""The decoded-chunk cache: same values as a direct read, each chunk decoded once, bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from geodl_hpc.inference.cache import ChunkCache
from geodl_hpc.inference.geometry import TilePlan, clip_to_raster
from geodl_hpc.pipeline.decode import read_raster_unit


def test_cache_reads_match_direct_reads_and_decode_each_chunk_once(stack: Path) -> None:
    group = zarr.open_group(str(stack), mode="r")
    layers = tuple(str(n) for n in group.attrs["layers"])  # type: ignore[union-attr]
    first = group[layers[0]]
    h, w = first.shape[-2:]  # type: ignore[union-attr]
    chunk = int(first.chunks[-1])  # type: ignore[union-attr]
    plan = TilePlan(h, w, 12, 3, 0, chunk, 1, "crop")
    windows = [clip_to_raster(plan.input_window(plan.region(i)), h, w) for i in plan.regions(0, 1)]
    cache = ChunkCache(str(stack), layers)
    cache.plan(windows)
    for k, window in enumerate(windows):
        got = cache.read(window)
        want = read_raster_unit(str(stack), layers, (window.r0, window.r1, window.c0, window.c1))
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)  # NaN-aware, bitwise for floats
        cache.retire(k)
    n_chunks = len({key for window in windows for key in cache.keys(window)})
    assert cache.decoded == n_chunks and cache.hits > 0
    assert cache.nbytes == 0  # every chunk dropped after its last use


def test_cache_stays_within_its_byte_bound(stack: Path) -> None:
    group = zarr.open_group(str(stack), mode="r")
    layers = tuple(str(n) for n in group.attrs["layers"])  # type: ignore[union-attr]
    h, w = group[layers[0]].shape[-2:]  # type: ignore[union-attr]
    cache = ChunkCache(str(stack), layers, max_bytes=1)  # nothing fits: reads still work
    plan = TilePlan(h, w, 12, 3, 0, int(group[layers[0]].chunks[-1]), 1, "crop")  # type: ignore[union-attr]
    window = clip_to_raster(plan.input_window(plan.region(0)), h, w)
    direct = read_raster_unit(str(stack), layers, (window.r0, window.r1, window.c0, window.c1))
    for a, b in zip(cache.read(window), direct, strict=True):
        np.testing.assert_array_equal(a, b)
    assert cache.nbytes == 0
