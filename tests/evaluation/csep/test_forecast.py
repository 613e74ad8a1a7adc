"""Forecast I/O and binning against pyCSEP on its shipped real forecasts and the real ComCat catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geodl_hpc.errors import ArchiveError, InputDataError
from geodl_hpc.evaluation.csep.forecast import (
    GriddedForecast,
    bin_events,
    cell_index,
    load_csep_ascii,
    read_forecast,
    to_pycsep,
    write_forecast_zarr,
)
from tests.evaluation.csep.conftest import pycsep_catalog, restrict


def test_ascii_loader_equals_pycsep(helmstetter_path: Path, helmstetter: GriddedForecast) -> None:
    import csep

    ref = csep.load_gridded_forecast(str(helmstetter_path))
    assert np.array_equal(helmstetter.rates, ref.data)  # round-trip exact parsing
    assert np.array_equal(helmstetter.origins, ref.region.origins())
    assert np.array_equal(helmstetter.mag_edges, ref.magnitudes)
    assert helmstetter.dh == ref.region.dh
    assert helmstetter.rates.shape == (7682, 41)
    assert helmstetter.name == "helmstetter_et_al.hkj-fromXML"


def test_real_catalog_binned_as_pycsep(helmstetter: GriddedForecast, comcat: Any) -> None:
    """All 829 Ridgecrest events: 828 lie in the RELM region, 3 of them at M >= 4.95 (the forecast's first bin)."""
    lon, lat, mag = (comcat[c].to_numpy() for c in ("longitude", "latitude", "magnitude"))
    ours = bin_events(lon, lat, mag, helmstetter)
    region = to_pycsep(helmstetter).region
    catalog = pycsep_catalog(lon, lat, mag, region)
    assert np.array_equal(ours, catalog.spatial_magnitude_counts())
    assert ours.sum() == 3
    assert (cell_index(lon, lat, helmstetter) >= 0).sum() == int((~region.get_masked(lon, lat)).sum()) == 828


def test_edge_cases_binned_as_pycsep(helmstetter: GriddedForecast) -> None:
    """Points on cell and magnitude edges, just inside/outside, with float noise, beyond the last bin."""
    from csep.utils.calc import bin1d_vec

    fc = restrict(helmstetter, ((-118.0, 35.0), (-117.0, 36.0)))  # 10 x 10 cells
    x0, y0 = fc.origins[:, 0].min(), fc.origins[:, 1].min()
    x1, y1 = fc.origins[:, 0].max() + fc.dh, fc.origins[:, 1].max() + fc.dh
    lons = [x0, x0 + 0.1, x0 + 0.1 + 0.2, x0 - 1e-12, x0 - 1e-15, x1 - 1e-12, x1, x1 + 1e-9, -117.3, -117.3 + 1e-14]
    lats = [y0, y0 + 0.3, 35.7, y1 - 1e-13, y1, y0 - 1e-9, 35.1 + 0.2, 35.95, 35.5, 35.5 - 1e-14]
    mags = [4.95, 5.05, 4.95 - 1e-12, 4.9499999, 8.95, 9.7, 5.15 + 1e-15, 6.0, 5.0499999999, 4.95 + 1e-13]
    lon, lat, mag = (np.array(np.meshgrid(lons, lats, mags, indexing="ij"))).reshape(3, -1)
    ours = bin_events(lon, lat, mag, fc)
    region = to_pycsep(fc).region
    inside = ~region.get_masked(lon, lat)
    assert np.array_equal(cell_index(lon, lat, fc) >= 0, inside)
    assert np.array_equal(cell_index(lon[inside], lat[inside], fc), region.get_index_of(lon[inside], lat[inside]))
    mbin = bin1d_vec(mag, fc.mag_edges, right_continuous=True)
    expected = np.zeros_like(ours)
    keep = inside & (mbin >= 0)
    np.add.at(expected, (region.get_index_of(lon[keep], lat[keep]), mbin[keep]), 1)
    assert np.array_equal(ours, expected)
    assert 0 < ours.sum() < lon.size  # some edge points are in, some out


def test_masked_cells_drop_events(helmstetter: GriddedForecast) -> None:
    from dataclasses import replace

    fc = restrict(helmstetter, ((-118.0, 35.0), (-117.0, 36.0)))
    mask = np.ones(fc.n_cells, dtype=bool)
    mask[5] = False
    masked = replace(fc, mask=mask)
    lon, lat = fc.origins[:, 0] + 0.05, fc.origins[:, 1] + 0.05
    counts = bin_events(lon, lat, np.full(fc.n_cells, 6.0), masked)
    assert counts.sum() == fc.n_cells - 1 and counts[5].sum() == 0
    region = to_pycsep(masked).region
    assert np.array_equal(~region.get_masked(lon, lat), counts.sum(axis=1) > 0)


def test_ascii_zarr_round_trip(helmstetter_path: Path, helmstetter: GriddedForecast, tmp_path: Path) -> None:
    from dataclasses import replace

    fc = replace(restrict(helmstetter), start="2019-07-06T00:00:00Z", end=np.datetime64("2019-07-13"))
    out = write_forecast_zarr(fc, tmp_path / "fc.zarr")
    back = read_forecast(out)
    for name in ("rates", "origins", "mag_edges"):
        assert np.array_equal(getattr(back, name), getattr(fc, name))
    assert (back.dh, back.name, back.start, back.end) == (fc.dh, fc.name, fc.start, fc.end)
    assert str(back.start) == "2019-07-06T00:00:00.000"
    whole = read_forecast(helmstetter_path)  # the same reader takes the ASCII file
    assert np.array_equal(whole.rates, helmstetter.rates)
    with pytest.raises(ArchiveError, match="already exists"):
        write_forecast_zarr(fc, out)
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["geodl_complete"] = False
    (out / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ArchiveError, match="incomplete"):
        read_forecast(out)


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_text("1 2 3\n4 5 6\n")
    with pytest.raises(InputDataError, match=r"bad\.dat: expected 10 columns"):
        load_csep_ascii(bad)
    with pytest.raises(InputDataError, match="no such forecast"):
        read_forecast(tmp_path / "missing.dat")
    with pytest.raises(InputDataError, match="do not fit"):
        GriddedForecast(np.ones((3, 2)), np.zeros((2, 2)), 0.1, np.array([5.0, 5.1]))
