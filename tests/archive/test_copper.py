"""The real copper data (Berman 1986) as a raster stack in a local metric frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geodl_hpc.archive.copper import build_copper, read_copper
from geodl_hpc.evaluation.blockcv import load_raster


def test_copper_stack(spatstat_rdata: Path, tmp_path: Path) -> None:
    data = read_copper(spatstat_rdata)
    assert data["deposits"].shape == (67, 2) and data["segments"].shape == (146, 2, 2)
    assert data["window"] == (-335.0, 190.0, 70110.0, 158233.0)  # km in the source, metres here
    out = build_copper(tmp_path / "copper.zarr", resolution=1000.0, prefix=spatstat_rdata, progress=False)
    raster = load_raster(out, ["dist_lineament", "lineament_density"], "deposits")
    assert raster.shape == (159, 72)
    assert raster.deposits.sum() == 67 and raster.valid.all()
    dist = raster.features[0]
    assert dist.min() < 500 and 0 < np.median(dist) < 5000  # metres: lineaments are km apart
