"""Grid and binning against pyCSEP on the real Ridgecrest ComCat catalog (829 events, 2019-07-06..13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodl_hpc.archive.catalog import read_catalog_table
from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.binning import bin_catalog, window_edges
from geodl_hpc.forecasting.grid import SpaceMagGrid

# Around the Ridgecrest sequence; 0.1-degree cells, magnitude bins 2.5 .. 6.0 (last open), as CSEP uses.
RIDGECREST = SpaceMagGrid.from_bbox((-118.2, 35.3, -117.2, 36.2), 0.1, 2.5, 6.0, 0.1)


def _pycsep_counts(path: Path, grid: SpaceMagGrid) -> np.ndarray:
    import csep
    from csep.core.regions import CartesianGrid2D

    region = CartesianGrid2D.from_origins(grid.origins, dh=grid.dh, magnitudes=np.asarray(grid.mag_edges))
    catalog = csep.load_catalog(str(path), type="csep-csv")
    catalog.filter_spatial(region)  # pyCSEP's way: drop events outside the region first
    catalog.region = region
    return np.asarray(catalog.spatial_magnitude_counts(), dtype=np.int64)


def test_binning_matches_pycsep_on_ridgecrest(comcat_csv: Path) -> None:
    table = read_catalog_table(comcat_csv)
    edges = window_edges("2019-07-01", "2019-07-21", 20.0)
    counts = bin_catalog(table, RIDGECREST, edges)
    assert counts.shape == (1, RIDGECREST.n_cells, RIDGECREST.n_mags)
    expected = _pycsep_counts(comcat_csv, RIDGECREST)
    assert counts[0].sum() > 700  # most of the sequence is inside the box
    assert counts[0].sum() < len(table)  # and some events are not (outside the box)
    np.testing.assert_array_equal(counts[0], expected)


def test_cell_and_magnitude_bins_follow_pycsep_edges() -> None:
    from csep.core.regions import CartesianGrid2D
    from csep.utils.calc import bin1d_vec

    region = CartesianGrid2D.from_origins(RIDGECREST.origins, dh=RIDGECREST.dh)
    rng = np.random.default_rng(3)
    lon = np.round(rng.uniform(-118.2, -117.2, 500), 1)  # many points exactly on edges
    lat = np.round(rng.uniform(35.3, 36.2, 500), 2)
    inside = (lon < -117.2) & (lat < 36.2)
    np.testing.assert_array_equal(
        RIDGECREST.cell_of(lon[inside], lat[inside]), region.get_index_of(lon[inside], lat[inside])
    )
    assert (RIDGECREST.cell_of(np.array([-117.2, -118.3]), np.array([35.5, 35.5])) == -1).all()
    mags = np.round(rng.uniform(2.0, 7.5, 500), 1)
    np.testing.assert_array_equal(
        RIDGECREST.mag_bin(mags), bin1d_vec(mags, np.asarray(RIDGECREST.mag_edges), right_continuous=True)
    )
    assert RIDGECREST.mag_bin(np.array([2.5, 2.49, 9.0])).tolist() == [0, -1, RIDGECREST.n_mags - 1]


def test_windows_split_counts_without_loss(comcat_csv: Path) -> None:
    table = read_catalog_table(comcat_csv)
    edges = window_edges("2019-07-06", "2019-07-14T00:00:00", 1.0)
    assert len(edges) == 9 and edges.dtype == np.dtype("datetime64[ms]")
    daily = bin_catalog(table, RIDGECREST, edges)
    whole = bin_catalog(table, RIDGECREST, edges[[0, -1]])
    np.testing.assert_array_equal(daily.sum(axis=0), whole[0])
    assert daily[0].sum() > daily[-1].sum()  # the sequence decays over the week


def test_window_and_grid_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no whole window"):
        window_edges("2020-01-01", "2020-01-02", 5.0)
    with pytest.raises(ConfigError, match="whole number"):
        SpaceMagGrid(0.0, 1.05, 0.0, 1.0, 0.1, (4.0,))


def test_to_forecast_builds_the_csep_contract() -> None:
    pytest.importorskip("geodl_hpc.evaluation.csep.forecast")
    rates = np.full((RIDGECREST.n_cells, RIDGECREST.n_mags), 0.01)
    fc = RIDGECREST.to_forecast(rates, "2019-07-06", "2019-07-13", "flat")
    np.testing.assert_array_equal(fc.origins, RIDGECREST.origins)
    assert fc.dh == RIDGECREST.dh and fc.rates.shape == rates.shape and fc.name == "flat"
    assert fc.start == np.datetime64("2019-07-06", "ms")
