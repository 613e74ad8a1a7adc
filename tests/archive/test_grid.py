"""GridSpec: snapping, centres, windows, round trip through an archive, and bad grid parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.raster import ingest_raster
from geodl_hpc.errors import ArchiveError, ConfigError


def test_from_bounds_snaps_outward_to_whole_pixels() -> None:
    grid = GridSpec.from_bounds("EPSG:32750", 500, (352782.9, 6699742.0, 682589.6, 7101484.0))
    assert grid.crs_epsg == 32750
    assert grid.transform == (500.0, 0.0, 352500.0, 0.0, -500.0, 7101500.0)
    assert (grid.width, grid.height) == (661, 804)
    assert grid.bounds == (352500.0, 6699500.0, 683000.0, 7101500.0)
    assert grid.resolution == (500.0, 500.0)
    left, bottom, right, top = grid.bounds
    assert left <= 352782.9 and bottom <= 6699742.0 and right >= 682589.6 and top >= 7101484.0


def test_exact_bounds_are_kept_and_anisotropic_res() -> None:
    grid = GridSpec.from_bounds(32750, (10.0, 20.0), (0.0, 0.0, 100.0, 100.0))
    assert (grid.width, grid.height) == (10, 5)
    assert grid.bounds == (0.0, 0.0, 100.0, 100.0)
    assert grid.resolution == (10.0, 20.0)


def test_centres_are_pixel_centres_north_up() -> None:
    grid = GridSpec.from_bounds("EPSG:32613", 30, (0.0, 0.0, 90.0, 60.0))
    np.testing.assert_allclose(grid.x_centres(), [15.0, 45.0, 75.0])
    np.testing.assert_allclose(grid.y_centres(), [45.0, 15.0])
    assert grid.shape == (2, 3)


def test_chunk_windows_cover_every_pixel_once() -> None:
    grid = GridSpec.from_bounds("EPSG:32750", 1, (0, 0, 70, 45))
    hits = np.zeros(grid.shape, dtype=int)
    windows = list(grid.chunk_windows(16))
    assert len(windows) == grid.n_windows(16) == 3 * 5
    for rows, cols in windows:
        assert rows.start % 16 == 0 and cols.start % 16 == 0
        hits[rows, cols] += 1
    assert (hits == 1).all()


@pytest.mark.parametrize(
    ("res", "bounds", "match"),
    [
        (0.0, (0, 0, 10, 10), "positive"),
        (-5.0, (0, 0, 10, 10), "positive"),
        (1.0, (0, 0, 0, 10), "empty"),
        (1.0, (10, 0, 0, 10), "empty"),
        (1.0, (0, 0, float("nan"), 10), "finite"),
    ],
)
def test_bad_grid_parameters(res: float, bounds: tuple[float, float, float, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        GridSpec.from_bounds("EPSG:32750", res, bounds)
    assert "\n" not in str(info.value)


def test_unknown_epsg_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown CRS"):
        GridSpec.from_bounds("EPSG:999999", 1.0, (0, 0, 10, 10))


def test_not_north_up_is_rejected() -> None:
    with pytest.raises(ConfigError, match="north-up"):
        GridSpec("", None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 2, 2)


def test_from_archive_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "a.tif"
    transform = from_origin(1000.0, 2000.0, 10.0, 10.0)
    with rasterio.open(
        src, "w", driver="GTiff", width=7, height=5, count=1, dtype="float32", crs="EPSG:32633", transform=transform
    ) as dst:
        dst.write(np.arange(35, dtype=np.float32).reshape(1, 5, 7))
    out = ingest_raster(tmp_path / "a.zarr", [src], progress=False)
    grid = GridSpec.from_archive(out)
    assert grid.crs_epsg == 32633
    assert grid.transform == tuple(transform)[:6]
    assert (grid.width, grid.height) == (7, 5)
    assert grid.same_as(GridSpec.from_rasterio("EPSG:32633", transform, 7, 5))
    assert not grid.same_as(GridSpec.from_rasterio("EPSG:32634", transform, 7, 5))


def test_from_archive_missing(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=r"nope\.zarr"):
        GridSpec.from_archive(tmp_path / "nope.zarr")
