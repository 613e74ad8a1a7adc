"""GeoTIFF export: GDAL reads back the CRS, transform, band names, nodata and values; failures leave nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from geodl_hpc.archive.export import export_geotiff
from geodl_hpc.archive.murchison import build_murchison
from geodl_hpc.errors import ArchiveError


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_murchison(tmp_path_factory.mktemp("m") / "m.zarr", resolution=500, chunk=256, progress=False)


def test_cog_round_trip(stack: Path, tmp_path: Path) -> None:
    out = export_geotiff(stack, tmp_path / "m.tif", layers=["greenstone", "dist_fault"], chunk=300)
    ds = xr.open_zarr(stack, consolidated=False)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32750
        assert tuple(src.transform)[:6] == pytest.approx(tuple(ds.attrs["transform"]))
        assert src.descriptions == ("greenstone", "dist_fault")
        assert np.isnan(src.nodata)
        assert src.overviews(1)  # overviews make it quick to open at national scale
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(src.read(2), ds["dist_fault"].values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif"]


def test_unknown_layer_and_existing_output(stack: Path, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no layer 'gold'; layers are greenstone"):
        export_geotiff(stack, tmp_path / "x.tif", layers=["gold"])
    assert not (tmp_path / "x.tif").exists()
    (tmp_path / "y.tif").write_bytes(b"keep")
    with pytest.raises(ArchiveError, match="already exists"):
        export_geotiff(stack, tmp_path / "y.tif")
    assert (tmp_path / "y.tif").read_bytes() == b"keep"
