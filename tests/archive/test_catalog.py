"""Catalog ingest: real CSEP, SED (depth in metres), QuakeML and Nordic catalogs; Parquet and Zarr storage;
one-line errors naming the file, column or row for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.archive.catalog import COLUMNS, ingest_catalog, open_catalog, read_catalog_table
from geodl_hpc.archive.store import PARQUET_META_KEY, archive_kind
from geodl_hpc.errors import ArchiveError, ConfigError, InputDataError
from tests.conftest import package_file


@pytest.fixture(scope="module")
def sed_csv() -> Path:
    """Real Swiss Seismological Service catalog shipped with seismostats; depth in metres."""
    return package_file("seismostats", "analysis", "tests", "data", "catalog_sed.csv")


@pytest.fixture(scope="module")
def neries_xml() -> Path:
    return package_file("obspy", "io", "quakeml", "tests", "data", "neries_events.xml")


def test_csep_ascii_matches_pycsep_reader(comcat_csv: Path) -> None:
    from csep.utils.readers import csep_ascii

    table = read_catalog_table(comcat_csv)
    assert table.attrs == {"format": "csep", "depth_unit": "km"}
    assert list(table.columns) == list(COLUMNS) and len(table) == 829
    assert str(table["time"].dtype) == "datetime64[ns, UTC]"
    assert table["time"].is_monotonic_increasing
    events = sorted(csep_ascii(str(comcat_csv)), key=lambda e: e[1])
    expected_ms = np.array([e[1] for e in events])
    got_ms = table["time"].dt.tz_convert(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    np.testing.assert_array_equal(got_ms, expected_ms)
    np.testing.assert_allclose(table["latitude"], [e[2] for e in events])
    np.testing.assert_allclose(table["longitude"], [e[3] for e in events])
    np.testing.assert_allclose(table["depth_km"], [e[4] for e in events])
    np.testing.assert_allclose(table["magnitude"], [e[5] for e in events])


def test_sed_depth_in_metres_becomes_km(sed_csv: Path) -> None:
    raw = pd.read_csv(sed_csv)
    table = read_catalog_table(sed_csv)
    assert table.attrs == {"format": "csv", "depth_unit": "m"} and len(table) == len(raw) == 1924
    order = pd.to_datetime(raw["time"], utc=True).argsort(kind="stable")
    np.testing.assert_allclose(table["depth_km"], raw["depth"].to_numpy()[order] / 1000.0)
    assert table["depth_km"].abs().max() < 50
    assert set(table["magnitude_type"]) == set(raw["magnitude_type"])
    explicit = read_catalog_table(sed_csv, depth_unit="km")
    assert explicit.attrs["depth_unit"] == "km"
    np.testing.assert_allclose(explicit["depth_km"], raw["depth"].to_numpy()[order])


def test_quakeml_and_nordic_through_obspy(neries_xml: Path) -> None:
    table = read_catalog_table(neries_xml)
    assert table.attrs == {"format": "quakeml", "depth_unit": "m"} and len(table) == 3
    first = table.iloc[0]
    assert first["event_id"] == "quakeml:eu.emsc/event/20120404_0000039"
    assert (first["latitude"], first["longitude"], first["depth_km"], first["magnitude"]) == (38.017, 37.736, 7.0, 3.0)
    assert first["magnitude_type"] == "ML"

    nordic = read_catalog_table(package_file("obspy", "io", "nordic", "tests", "data", "select.out"))
    assert nordic.attrs["format"] == "obspy" and len(nordic) == 50
    assert nordic["time"].is_monotonic_increasing
    assert nordic["latitude"].between(-44, -43).all() and (nordic["magnitude_type"] == "ML").all()


def test_comcat_csv_columns(tmp_path: Path) -> None:
    path = tmp_path / "query.csv"
    path.write_text(
        "time,latitude,longitude,depth,mag,magType,nst,gap,dmin,rms,net,id,updated,place,type\n"
        "2019-07-06T03:19:53.040Z,35.7695,-117.5993333,2,7.1,mw,,,,,ci,ci38457511,2019-07-07T00:00:00.000Z,"
        '"Ridgecrest, CA",earthquake\n'
        "2019-07-04T17:33:49.000Z,35.7053333,-117.5038333,10.5,6.4,mw,,,,,ci,ci38443183,2019-07-07T00:00:00.000Z,"
        '"Searles Valley, CA",earthquake\n'
    )
    table = read_catalog_table(path)
    assert table.attrs == {"format": "comcat", "depth_unit": "km"}
    assert list(table["event_id"]) == ["ci38443183", "ci38457511"]  # sorted by time
    assert list(table["depth_km"]) == [10.5, 2.0] and list(table["magnitude_type"]) == ["mw", "mw"]
    assert table["time"].iloc[1] == pd.Timestamp("2019-07-06T03:19:53.040Z")


def test_generic_csv_aliases_and_missing_depth(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("Origin_Time,Lat,Lon,Depth_m,ML\n2020-01-02 00:00:00,10,350,500,2.5\n2020-01-01,-10,20,1500,3\n")
    table = read_catalog_table(path)
    assert list(table["depth_km"]) == [1.5, 0.5]  # *_m column: metres even below the auto threshold
    assert list(table["longitude"]) == [20.0, -10.0]  # 350 E wrapped to -10
    gk = read_catalog_table(
        package_file("seismostats", "analysis", "declustering", "tests", "data", "gardner_knopoff_test_catalogue.csv")
    )
    assert len(gk) == 11 and gk["depth_km"].isna().all()


@pytest.mark.parametrize("suffix", [".parquet", ".zarr"])
def test_parquet_and_zarr_round_trip(suffix: str, sed_csv: Path, tmp_path: Path) -> None:
    out = ingest_catalog(tmp_path / f"cat{suffix}", sed_csv, extra_provenance={"note": "test"})
    assert archive_kind(out) == ("catalog", True)
    expected = read_catalog_table(sed_csv)
    back = open_catalog(out)
    record = back.attrs.pop("geodl_provenance")
    expected.attrs.clear()
    pd.testing.assert_frame_equal(back, expected)
    assert record["options"]["depth_unit"] == "m" and record["note"] == "test"
    assert record["sources"][0]["path"] == str(sed_csv.resolve())
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = json.loads(pq.read_schema(out).metadata[PARQUET_META_KEY])
        assert meta["geodl_kind"] == "catalog" and meta["geodl_complete"] is True
    else:
        import xarray as xr

        ds = xr.open_zarr(str(out), consolidated=False)
        assert set(ds.data_vars) | set(ds.coords) >= set(COLUMNS) and ds.sizes["event"] == 1924
        assert ds.attrs["geodl_kind"] == "catalog" and ds.attrs["geodl_complete"] is True


def test_open_catalog_refuses_incomplete_and_wrong_kind(comcat_csv: Path, tmp_path: Path) -> None:
    import zarr

    out = ingest_catalog(tmp_path / "c.zarr", comcat_csv)
    zarr.open_group(str(out), mode="r+").attrs["geodl_complete"] = False
    with pytest.raises(ArchiveError, match="incomplete"):
        open_catalog(out)
    with pytest.raises(ArchiveError, match="already exists"):
        ingest_catalog(out, comcat_csv)


BAD_CSV = {
    "header_only.csv": ("time,latitude,longitude,depth,mag\n", InputDataError, "empty (no events)"),
    "blank.csv": ("", InputDataError, "empty (no events)"),
    "no_mag.csv": ("time,latitude,longitude,depth\n2020-01-01,1,2,3\n", InputDataError, "no magnitude column"),
    "no_lat.csv": ("time,longitude,depth,mag\n2020-01-01,2,3,1\n", InputDataError, "no latitude column"),
    "lat.csv": ("time,lat,lon,depth,mag\n2020-01-01,1,2,3,1\n2020-01-02,95,2,3,1\n", InputDataError, "row 2: latitude"),
    "when.csv": ("time,lat,lon,depth,mag\nsoon,1,2,3,1\n", InputDataError, "row 1: time 'soon'"),
    "num.csv": ("time,lat,lon,depth,mag\n2020-01-01,1,two,3,1\n", InputDataError, "row 1: longitude 'two'"),
}


@pytest.mark.parametrize("name", sorted(BAD_CSV))
def test_bad_csv_catalogs(name: str, comcat_csv: Path, tmp_path: Path) -> None:
    text, error, expected = BAD_CSV[name]
    source = tmp_path / name
    source.write_text(text)
    out = tmp_path / "cat.parquet"
    with pytest.raises(error) as err:
        ingest_catalog(out, source)
    assert name in str(err.value) and expected in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".cat.parquet.partial-*"))

    existing = ingest_catalog(tmp_path / "old.parquet", comcat_csv)
    before = existing.read_bytes()
    with pytest.raises(error):
        ingest_catalog(existing, source, overwrite=True)
    assert existing.read_bytes() == before and archive_kind(existing) == ("catalog", True)


def test_missing_unsupported_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nope\.csv: no such file"):
        ingest_catalog(tmp_path / "c.parquet", tmp_path / "nope.csv")
    image = package_file("obspy", "io", "nordic", "tests", "data", "plot_ellipse.png")
    with pytest.raises(InputDataError, match=r"plot_ellipse\.png: not a catalog format"):
        ingest_catalog(tmp_path / "c.parquet", image)
    source = tmp_path / "ok.csv"
    source.write_text("time,lat,lon,mag\n2020-01-01,1,2,3\n")
    with pytest.raises(ConfigError, match="catalog format 'gcmt'"):
        read_catalog_table(source, "gcmt")
    with pytest.raises(ConfigError, match="depth unit 'ft'"):
        read_catalog_table(source, depth_unit="ft")
    assert not list(tmp_path.glob("c.parquet*")) and not list(tmp_path.glob(".c.parquet*"))
