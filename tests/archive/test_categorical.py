"""Categorical rasterising (class layers with legends, one-hot), attribute filters, class-map rasters, and distances
in metres on geographic grids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from affine import Affine
from pyproj import Geod

from geodl_hpc.archive.classes import ClassLegend, legend_of_layer
from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.raster import SourceSpec, ingest_raster
from geodl_hpc.errors import ConfigError, InputDataError

UTM = "EPSG:32633"


def geojson(path: Path, features: list[tuple[Any, dict[str, Any]]], crs: str | None = None) -> Path:
    doc: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}
            for geom, props in features
        ],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc))
    return path


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(x0, y0, x1, y1)


@pytest.fixture
def grid() -> GridSpec:
    return GridSpec.from_bounds(UTM, 100.0, (0.0, 0.0, 3000.0, 2000.0))


def centres(grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(grid.x_centres(), grid.y_centres())


def test_polygon_attribute_as_class_layer_with_legend(tmp_path: Path, grid: GridSpec) -> None:
    geology = geojson(
        tmp_path / "geology.geojson",
        [
            (box(0, 0, 2000, 2000), {"unit": "granite"}),
            (box(1000, 0, 3000, 1000), {"unit": "basalt"}),  # overlaps the granite: later wins
            (box(2500, 1500, 3000, 2000), {"unit": None}),  # no unit: no class
        ],
    )
    out = ingest_raster(
        tmp_path / "g.zarr", [SourceSpec(geology, attribute="unit")], grid=grid, chunk=8, progress=False
    )
    ds = xr.open_zarr(out, consolidated=False)
    assert ds.attrs["layers"] == ["geology"]
    legend = legend_of_layer(out, "geology")
    assert legend.names == ("basalt", "granite") and legend.values == (1, 2)  # sorted names, codes 1..K
    assert ds["geology"].attrs["flag_meanings"] == "basalt granite"
    xx, yy = centres(grid)
    expected = np.where((xx > 1000) & (yy < 1000), 1.0, np.where(xx < 2000, 2.0, np.nan))
    np.testing.assert_array_equal(ds["geology"].values, expected)


def test_polygon_attribute_one_hot_and_given_legend(tmp_path: Path, grid: GridSpec) -> None:
    geology = geojson(
        tmp_path / "geo.geojson",
        [(box(0, 0, 1500, 2000), {"code": 7}), (box(1500, 0, 3000, 2000), {"code": 3})],
    )
    legend = ClassLegend.build([3, 7], ["mafic volcanics", "granite"], ["#00ff00", "#ff0000"])
    spec = SourceSpec(geology, name="rock", attribute="code", encoding="onehot", classes=legend)
    ds = xr.open_zarr(
        ingest_raster(tmp_path / "o.zarr", [spec], grid=grid, chunk=8, progress=False), consolidated=False
    )
    assert ds.attrs["layers"] == ["rock_mafic_volcanics", "rock_granite"]
    xx, _ = centres(grid)
    np.testing.assert_array_equal(ds["rock_granite"].values, (xx < 1500).astype(np.float32))
    np.testing.assert_array_equal(ds["rock_mafic_volcanics"].values, (xx > 1500).astype(np.float32))
    bad = SourceSpec(geology, attribute="code", classes=ClassLegend.build([3], ["mafic"]))
    with pytest.raises(InputDataError, match="legend lacks"):
        ingest_raster(tmp_path / "b.zarr", [bad], grid=grid, progress=False)


def test_labelled_points_reprojected_into_a_sparse_class_layer(tmp_path: Path, grid: GridSpec) -> None:
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    xy = [(150.0, 1950.0), (1250.0, 850.0), (1260.0, 840.0), (2950.0, 50.0)]
    labels = ["forest", "water", "forest", "water"]
    pts = [shapely.Point(*to_lonlat.transform(x, y)) for x, y in xy]
    path = geojson(tmp_path / "points.geojson", [(p, {"label": lab}) for p, lab in zip(pts, labels, strict=True)])
    with pytest.raises(InputDataError, match="reproject"):
        ingest_raster(tmp_path / "x.zarr", [SourceSpec(path, attribute="label")], grid=grid, progress=False)
    spec = SourceSpec(path, name="labels", attribute="label", reproject=True)
    ds = xr.open_zarr(
        ingest_raster(tmp_path / "p.zarr", [spec], grid=grid, chunk=8, progress=False), consolidated=False
    )
    lab = ds["labels"].values
    assert np.isfinite(lab).sum() == 3  # two points share a pixel
    assert lab[0, 1] == 1 and lab[19, 29] == 2  # forest = 1, water = 2
    assert lab[11, 12] == 1  # the later point in that pixel wins


def test_where_filters_lines(tmp_path: Path, grid: GridSpec) -> None:
    faults = geojson(
        tmp_path / "faults.geojson",
        [
            (shapely.LineString([(0, 500), (3000, 500)]), {"type": "thrust"}),
            (shapely.LineString([(0, 1500), (3000, 1500)]), {"type": "normal"}),
        ],
    )
    spec = SourceSpec(faults, name="thrust", where="type = 'thrust'")
    ds = xr.open_zarr(
        ingest_raster(tmp_path / "f.zarr", [spec], grid=grid, chunk=8, progress=False), consolidated=False
    )
    _, yy = centres(grid)
    np.testing.assert_allclose(ds["thrust_distance"].values, np.abs(yy - 500), atol=1e-3)
    with pytest.raises(InputDataError, match="OGR SQL"):
        ingest_raster(tmp_path / "e.zarr", [SourceSpec(faults, where="nonsense ==")], grid=grid, progress=False)
    with pytest.raises(InputDataError, match="no attribute 'kind'; its attributes are type"):
        ingest_raster(tmp_path / "e.zarr", [SourceSpec(faults, attribute="kind")], grid=grid, progress=False)
    with pytest.raises(InputDataError, match="no geometries matching"):
        ingest_raster(tmp_path / "e.zarr", [SourceSpec(faults, where="type = 'x'")], grid=grid, progress=False)


def test_distances_on_a_geographic_grid_are_great_circle_metres(tmp_path: Path) -> None:
    grid = GridSpec.from_bounds("EPSG:4326", 0.05, (10.0, 59.0, 12.0, 61.0))  # high latitude: degrees are unequal
    line = shapely.LineString([(11.0, 58.0), (11.0, 62.0)])  # a meridian
    lake = box(10.2, 60.5, 10.4, 60.7)
    paths = [
        geojson(tmp_path / "river.geojson", [(line, {})], crs="EPSG:4326"),
        geojson(tmp_path / "lake.geojson", [(lake, {})], crs="EPSG:4326"),
    ]
    ds = xr.open_zarr(
        ingest_raster(tmp_path / "d.zarr", paths, grid=grid, chunk=16, progress=False), consolidated=False
    )
    assert ds["river_distance"].attrs["units"] == "m" and ds["lake_distance"].attrs["units"] == "m"
    xx, yy = centres(grid)
    geod = Geod(ellps="sphere")  # pyproj's sphere has R = 6370997 m; ours 6371008.8 (relative difference 2e-6)
    _, _, expected = geod.inv(xx, yy, np.full_like(xx, 11.0), yy)  # nearest point on a meridian: same latitude
    cell_m = 0.05 * np.pi / 180 * 6371008.8
    got = ds["river_distance"].values
    # along parallels the great circle to the meridian is not the parallel itself: the nearest point lies a
    # little poleward, so the true distance is at most the along-parallel one
    assert np.all(got <= expected + cell_m / 8) and np.all(got >= expected * 0.999 - cell_m / 8)
    inside = shapely.intersects_xy(lake, xx, yy)
    assert np.all(ds["lake_distance"].values[inside] == 0)
    # due south of the lake's south edge the distance is the meridian arc
    r, c = np.argmin(np.abs(grid.y_centres() - 60.0)), np.argmin(np.abs(grid.x_centres() - 10.3))
    arc = (60.5 - grid.y_centres()[r]) * np.pi / 180 * 6371008.8
    assert ds["lake_distance"].values[r, c] == pytest.approx(arc, abs=cell_m / 8)


def test_class_map_raster_keeps_codes_and_legend(tmp_path: Path) -> None:
    codes = np.array([[1, 2, 5], [-99999, 2, 1]], dtype=np.float32)
    path = tmp_path / "landcover.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=3, height=2, count=1, dtype="float32", crs=UTM,
        transform=Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0), nodata=-99999,
    ) as dst:  # fmt: skip
        dst.write(codes[None])
    legend = ClassLegend.from_mapping({1: "forest", 2: "water"})
    spec = SourceSpec(path, name="landcover", classes=legend)
    out = ingest_raster(tmp_path / "c.zarr", [spec], chunk=8, progress=False)
    values = xr.open_zarr(out, consolidated=False)["landcover"].values
    np.testing.assert_array_equal(values, [[1, 2, np.nan], [np.nan, 2, 1]])  # 5 is not in the legend
    assert legend_of_layer(out, "landcover") == legend
    with pytest.raises(ConfigError, match="vector files"):
        ingest_raster(tmp_path / "x.zarr", [SourceSpec(path, attribute="a")], progress=False)


def test_legend_round_trip_and_checks() -> None:
    legend = ClassLegend.build([4, 1], ["shrub land", "developed"], [(10, 20, 30), "#FFFFFF"])
    assert ClassLegend.from_attrs(legend.attrs()) == legend
    cf_only = {k: v for k, v in legend.attrs().items() if k != "classes"}
    assert ClassLegend.from_attrs(cf_only).names == ("shrub_land", "developed")  # CF flags: spaces become _
    np.testing.assert_array_equal(legend.index_of(np.array([1.0, 4.0, np.nan, 3.0])), [1, 0, -1, -1])
    assert legend.colormap()[4] == (10, 20, 30, 255) and legend.colormap()[0][3] == 0
    with pytest.raises(ConfigError, match=r"1\.\.254"):
        ClassLegend.build([0, 1])
    with pytest.raises(ConfigError, match="distinct"):
        ClassLegend.build([1, 1])
    with pytest.raises(ConfigError, match="#rrggbb"):
        ClassLegend.build([1], ["a"], ["red"])
