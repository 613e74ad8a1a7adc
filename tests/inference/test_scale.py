"""The lazily generated input (no pixels on disk) behind the continental-scale benchmark, and its smoke run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from geodl_hpc.inference.cache import ChunkCache
from geodl_hpc.inference.geometry import Window
from geodl_hpc.inference.runner import infer
from geodl_hpc.inference.synthetic import GaussianFields, lazy_stack

from .conftest import config, tiny_cnn

REPO = Path(__file__).resolve().parents[2]


def test_generated_chunks_are_the_field_and_continuous(tmp_path: Path) -> None:
    fields = GaussianFields(2, seed=3, length=16.0)
    archive, store = lazy_stack(tmp_path / "lazy.zarr", 200, 150, fields, chunk=64)
    assert not (archive / "grf_0" / "c").exists() and not (archive / "grf_1" / "c").exists()  # no pixels stored
    cache = ChunkCache(str(archive), ("grf_0", "grf_1"), store=store)
    window = Window(50, 200, 100, 150)  # crosses chunk borders, ends at the raster edge
    for i, block in enumerate(cache.read(window)):
        np.testing.assert_array_equal(block, fields.block(i, 50, 200, 100, 150))
    assert store.generated == 2 * 4 * 2  # each layer's chunk rows 0..3 x cols 1..2, each generated once
    whole = fields.read(slice(0, 512), slice(0, 512))
    assert abs(float(whole.mean())) < 0.2 and 0.7 < float(whole.std()) < 1.3  # unit-variance field model
    step = np.abs(np.diff(whole, axis=1)).max()  # continuous: neighbours differ little (length 16 px)
    assert step < 0.5


def test_infer_reads_the_generated_store_and_writes_only_its_regions(tmp_path: Path) -> None:
    fields = GaussianFields(3, seed=1, length=8.0)
    archive, store = lazy_stack(tmp_path / "lazy.zarr", 96, 160, fields, chunk=16)
    out = tmp_path / "m.zarr"
    result = infer(archive, tiny_cnn(), out, config(rank=0, n_ranks=4, region_chunks=2), input_store=store)
    assert result["status"] == "partial" and result["regions_computed"] == 3 and store.generated > 0
    prob = np.asarray(zarr.open_group(str(out), mode="r")["probability"][:])  # type: ignore[index]
    assert np.isfinite(prob[:32, :96]).all() and np.isnan(prob[32:]).all()  # rank 0: first 3 regions only
    chunk_files = [p for p in (out / "probability" / "c").rglob("*") if p.is_file()]
    assert len(chunk_files) == 3 * 4  # 3 regions of 2 x 2 chunks; the rest of the map costs nothing


@pytest.mark.slow
def test_scale_benchmark_smoke(tmp_path: Path) -> None:
    args = ["--size", "384", "--chunk", "32", "--region-chunks", "2", "--regions", "4", "--small", "64", "--tile",
            "32", "--width", "4", "--layers", "2", "--threads", "1", "--json"]  # fmt: skip
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "inference_scale.py"), *args],
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    result = json.loads(proc.stdout)
    assert result["regions_run"] == 4 and result["mpx_s"] > 0 and len(result["mpx_s_windows"]) >= 1
    assert result["rss_ratio"] > 0 and result["output_chunks_written"] == 4 * 4
    assert result["disk_input_mb"] < 1.0
