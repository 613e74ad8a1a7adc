"""The built-in Murchison (GSWA) stack: layers, provenance, and the known geology of the deposits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from geodl_hpc.archive.murchison import MURCHISON_DIR, build_murchison, murchison_grid
from geodl_hpc.archive.store import archive_kind, file_sha256

LAYERS = ["greenstone", "dist_greenstone", "dist_fault", "fault_density", "deposits"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    out = tmp_path_factory.mktemp("murchison") / "murchison.zarr"
    build_murchison(out, resolution=1000.0, chunk=128, progress=False)
    assert archive_kind(out) == ("raster", True)
    return xr.open_zarr(out, consolidated=False).load()


def test_layers_grid_and_units(stack: xr.Dataset) -> None:
    assert stack.attrs["layers"] == LAYERS
    assert stack.rio.crs.to_epsg() == 32750 and stack.attrs["crs_epsg"] == 32750
    grid = murchison_grid(1000.0)
    assert stack.attrs["shape"] == [grid.height, grid.width] == [403, 331]
    assert tuple(stack.rio.transform())[:6] == grid.transform
    units = {name: stack[name].attrs["units"] for name in LAYERS}
    assert units == {
        "greenstone": "1",
        "dist_greenstone": "m",
        "dist_fault": "m",
        "fault_density": "km/km2",
        "deposits": "count",
    }
    for name in LAYERS:
        assert stack[name].attrs["statistics"]["valid_fraction"] == 1.0


def test_provenance_lists_data_files_and_attribution(stack: xr.Dataset) -> None:
    prov = stack.attrs["geodl_provenance"]
    by_name = {Path(s["path"]).name: s["sha256"] for s in prov["sources"]}
    for name in ("gold_deposits.csv", "faults.csv", "greenstone.geojson", "study_area.geojson"):
        assert by_name[name] == file_sha256(MURCHISON_DIR / name)
    assert "Watkins" in prov["attribution"] and "Hickman" in prov["attribution"]
    assert "Geological Survey of Western Australia" in prov["attribution"]


def test_all_deposits_and_they_sit_on_greenstone(stack: xr.Dataset) -> None:
    deposits = stack["deposits"].values
    assert deposits.sum() == 255
    on_greenstone = (stack["greenstone"].values == 1) | (stack["dist_greenstone"].values < 1000.0)
    assert deposits[on_greenstone].sum() / 255 > 0.8
    # greenstone is 9.22 % of the study area (README); deposits favour it strongly
    assert stack["greenstone"].values.mean() == pytest.approx(0.0922, abs=0.005)
    assert (stack["dist_greenstone"].values[stack["greenstone"].values == 1] == 0).all()


def test_fault_layers_match_the_segments(stack: xr.Dataset) -> None:
    faults = pd.read_csv(MURCHISON_DIR / "faults.csv")
    lines = shapely.linestrings(faults[["x0", "y0", "x1", "y1"]].to_numpy().reshape(-1, 2, 2))
    tree = shapely.STRtree(lines)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, stack.sizes["y"], 400)
    cols = rng.integers(0, stack.sizes["x"], 400)
    points = shapely.points(stack["x"].values[cols], stack["y"].values[rows])
    nearest = tree.nearest(points)
    exact = shapely.distance(points, lines[nearest])
    np.testing.assert_allclose(stack["dist_fault"].values[rows, cols], exact, rtol=1e-6, atol=0.5)
    # mean density over the window ~ total fault length / window area = 3403.3 km / 132,497 km²
    assert float(stack["fault_density"].mean()) == pytest.approx(3403.3 / 132497.2, rel=0.08)
    deposits = stack["deposits"].values > 0
    assert np.median(stack["dist_fault"].values[deposits]) < 3000 < np.median(stack["dist_fault"].values)
