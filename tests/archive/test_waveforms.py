"""Waveform ingest: real ObsPy/SEISAN/SAC/Nordic files and small synthetic gappy streams, read back with xarray
and ObsPy; every bad input fails with a one-line error naming the file and leaves nothing complete behind."""

from __future__ import annotations

import importlib.util
import json
import zlib
from pathlib import Path

import numpy as np
import obspy
import pytest
import xarray as xr

from geodl_hpc.archive.store import CodecSpec, archive_kind, require_complete
from geodl_hpc.archive.waveforms import ingest_waveforms, to_obspy_stream
from geodl_hpc.errors import ArchiveError, InputDataError


def _obspy_data(*parts: str) -> Path:
    spec = importlib.util.find_spec("obspy")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path}: expected ObsPy test data file is missing")
    return path


def _open(path: Path) -> xr.Dataset:
    return xr.open_zarr(str(path), consolidated=False)


def _synthetic(
    path: Path, station: str, start: str, *, rate: float = 100.0, npts: int = 1000, gap: tuple[int, int] | None = None
) -> obspy.Stream:
    """A 3-C stream XX.STATION with a known signal; ``gap`` (first, stop) sample indices are cut out."""
    rng = np.random.default_rng(zlib.crc32(f"{station}{rate}".encode()))
    stream = obspy.Stream()
    for comp in "ZNE":
        data = rng.normal(size=npts).astype(np.float32)
        header = {"network": "XX", "station": station, "channel": f"HH{comp}", "sampling_rate": rate}
        trace = obspy.Trace(data=data, header={**header, "starttime": obspy.UTCDateTime(start)})
        if gap is None:
            stream.append(trace)
        else:
            t0 = trace.stats.starttime
            stream.append(trace.slice(t0, t0 + (gap[0] - 1) / rate))
            stream.append(trace.slice(t0 + gap[1] / rate, None))
    stream.write(str(path), format="MSEED")
    return stream


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_rjob_round_trip_xarray_and_obspy(obspy_rjob: Path, tmp_path: Path) -> None:
    out = ingest_waveforms(tmp_path / "rjob.zarr", [obspy_rjob], chunk_samples=1024, progress=False)
    assert require_complete(out, "waveforms") == "waveforms"
    ds = _open(out)
    assert ds["data"].dims == ("station", "channel", "time")
    assert ds["data"].shape == (1, 3, 3000) and ds["data"].dtype == np.float32
    assert ds["data"].encoding["chunks"] == (1, 3, 1024)
    assert list(ds["channel"].values) == ["Z", "N", "E"]
    assert [str(v) for v in ds["channel_code"].values[0]] == ["EHZ", "EHN", "EHE"]
    assert str(ds["network"].values[0]) == "BW" and str(ds["station"].values[0]) == "RJOB"
    assert np.isnan(float(ds["latitude"].values[0]))
    assert bool(ds["valid"].values.all())
    assert ds.attrs["sampling_rate"] == 100.0
    assert ds.attrs["starttime"] == "2009-08-24T00:20:03Z"
    record = ds.attrs["geodl_provenance"]
    assert record["sources"][0]["path"] == str(obspy_rjob.resolve()) and len(record["sources"][0]["sha256"]) == 64
    assert record["chunks"] == {"station": 1, "channel": 3, "time": 1024}

    original = obspy.read(str(obspy_rjob))
    back = to_obspy_stream(out)
    assert len(back) == 3
    for trace in original:
        got = back.select(id=trace.id)
        assert len(got) == 1
        assert got[0].stats.starttime == trace.stats.starttime and got[0].stats.npts == trace.stats.npts
        np.testing.assert_allclose(got[0].data, trace.data.astype(np.float32))


def test_gaps_are_zero_and_invalid_on_a_common_time_axis(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mseed", tmp_path / "b.mseed"
    sta_a = _synthetic(a, "AAA", "2020-01-01T00:00:00", gap=(300, 500))
    _synthetic(b, "BBB", "2020-01-01T00:00:05")  # starts 500 samples later, ends 500 later
    out = ingest_waveforms(tmp_path / "w.zarr", [a, b], chunk_samples=256, progress=False)
    ds = _open(out)
    assert ds.attrs["starttime"] == "2020-01-01T00:00:00Z"
    assert list(ds["station"].values) == ["AAA", "BBB"]
    assert ds.sizes["time"] == 1500
    valid, data = ds["valid"].values, ds["data"].values
    assert valid[0, :, :300].all() and not valid[0, :, 300:500].any() and valid[0, :, 500:1000].all()
    assert not valid[0, :, 1000:].any() and (data[0, :, 300:500] == 0).all() and (data[0, :, 1000:] == 0).all()
    assert not valid[1, :, :500].any() and valid[1, :, 500:].all()
    z = sta_a.select(channel="HHZ")
    np.testing.assert_array_equal(data[0, 0, :300], z[0].data)
    np.testing.assert_array_equal(data[0, 0, 500:1000], z[1].data)

    back = to_obspy_stream(out, station="XX.AAA")
    assert len(back.select(channel="HHZ")) == 2  # the gap stays a gap
    assert back.select(channel="HHZ")[1].stats.starttime == obspy.UTCDateTime("2020-01-01T00:00:05")
    with pytest.raises(InputDataError, match="no station 'NOPE'"):
        to_obspy_stream(out, station="NOPE")


def test_mixed_rates_need_sampling_rate_then_resample(tmp_path: Path) -> None:
    a, b = tmp_path / "fast.mseed", tmp_path / "slow.mseed"
    fast = _synthetic(a, "FAST", "2020-01-01T00:00:00", rate=100.0, npts=2000)
    slow = _synthetic(b, "SLOW", "2020-01-01T00:00:00", rate=25.0, npts=500)
    out = tmp_path / "mixed.zarr"
    with pytest.raises(InputDataError) as err:
        ingest_waveforms(out, [a, b], progress=False)
    message = str(err.value)
    assert "fast.mseed" in message and "slow.mseed" in message and "--sampling-rate" in message
    assert "\n" not in message
    _assert_nothing_written(out)

    ingest_waveforms(out, [a, b], sampling_rate=50.0, progress=False)
    ds = _open(out)
    assert ds.attrs["sampling_rate"] == 50.0 and ds.sizes["time"] == 1000
    valid = ds["valid"].values
    assert valid[0].all() and valid[1, :, :999].all()
    assert not valid[1, :, 999].any()  # 25 Hz data end at 19.96 s: no sample to interpolate 19.98 s from
    down = fast.select(channel="HHZ")[0].copy().resample(50.0, window="hann")
    np.testing.assert_allclose(ds["data"].values[0, 0], down.data, atol=1e-4)
    # Upsampling 25 -> 50 Hz keeps the original samples at every second grid point (Lanczos interpolation).
    up = ds["data"].values[1, 0, 0:1000:2]
    np.testing.assert_allclose(up[:499], slow.select(channel="HHZ")[0].data[:499], atol=1e-3)
    assert ds.attrs["geodl_provenance"]["options"]["resampled"] is True


def test_real_seisan_file_matches_its_miniseed_twin(tmp_path: Path) -> None:
    seisan = _obspy_data("io", "seisan", "tests", "data", "2005-07-23-1452-04S.CER___030")
    twin = obspy.read(str(seisan.with_name(seisan.name + ".mseed")))
    out = ingest_waveforms(tmp_path / "cer.zarr", [seisan], progress=False)
    ds = _open(out)
    assert ds.attrs["sampling_rate"] == 150.0 and ds["data"].shape == (1, 3, 10650)
    back = to_obspy_stream(out)
    for trace in twin:
        got = back.select(channel=trace.stats.channel)[0]
        assert got.stats.starttime == trace.stats.starttime
        np.testing.assert_array_equal(got.data, trace.data.astype(np.float32))


def test_sac_header_coordinates_and_station_files(obspy_rjob: Path, tmp_path: Path) -> None:
    sac = _obspy_data("io", "sac", "tests", "data", "seism.sac")  # .CDV..Q, stla 87.99997, stlo -120
    ds = _open(ingest_waveforms(tmp_path / "sac.zarr", [sac], progress=False))
    assert list(ds["channel"].values) == ["Q"]
    assert float(ds["latitude"].values[0]) == pytest.approx(87.99997)
    assert float(ds["longitude"].values[0]) == pytest.approx(-120.0)

    inventory = obspy.read_inventory()  # ObsPy's example StationXML includes BW.RJOB
    xml = tmp_path / "stations.xml"
    inventory.write(str(xml), format="STATIONXML")
    ds = _open(ingest_waveforms(tmp_path / "x.zarr", [obspy_rjob], stations=xml, progress=False))
    rjob = inventory.select(network="BW", station="RJOB")[0][0]
    assert float(ds["latitude"].values[0]) == pytest.approx(rjob.latitude)
    assert float(ds["elevation"].values[0]) == pytest.approx(rjob.elevation)

    csv = tmp_path / "stations.csv"
    csv.write_text("network,station,location,latitude,longitude,elevation\nBW,RJOB,,47.5,12.75,860\n")
    ds = _open(ingest_waveforms(tmp_path / "c.zarr", [obspy_rjob], stations=csv, progress=False))
    assert [float(ds[c].values[0]) for c in ("latitude", "longitude", "elevation")] == [47.5, 12.75, 860.0]
    assert len(ds.attrs["geodl_provenance"]["sources"]) == 2


NORDIC_STATIONS = ("GCSZ", "WZ11", "WV03", "WZ02", "WHYM", "EORO", "LABE")


def test_nordic_picks_become_labels(tmp_path: Path) -> None:
    sfile = _obspy_data("io", "nordic", "tests", "data", "01-0411-15L.S201309")
    sources = []
    for code in NORDIC_STATIONS:
        sources.append(tmp_path / f"{code}.mseed")
        _synthetic(sources[-1], code, "2013-09-01T04:11:00", npts=4000)
    out = ingest_waveforms(tmp_path / "p.zarr", sources, picks=sfile, progress=False)
    ds = _open(out)
    assert ds.sizes["pick"] == 10  # 5 P + 5 S; the IAML amplitude readings are not phase picks
    phases = [str(p) for p in ds["pick_phase"].values]
    assert phases.count("P") == 5 and phases.count("S") == 5
    stations = [str(ds["station"].values[i]) for i in ds["pick_station"].values]
    first = phases.index("P")
    assert stations[first] == "WV03" or stations[first] == "WZ11"  # both at 04:11:17.19, the earliest pick
    gcsz_p = next(i for i, (s, p) in enumerate(zip(stations, phases, strict=True)) if s == "GCSZ" and p == "P")
    assert float(ds["pick_time_s"].values[gcsz_p]) == pytest.approx(17.24)
    assert int(ds["pick_sample"].values[gcsz_p]) == 1724
    assert ds["pick_time_s"].dtype == np.float64 and ds["pick_sample"].dtype == np.int64

    missing = tmp_path / "missing.zarr"
    with pytest.raises(InputDataError, match=r"01-0411-15L\.S201309.*station 'LABE' is not in the waveforms"):
        ingest_waveforms(missing, sources[:-1], picks=sfile, progress=False)
    _assert_nothing_written(missing)


def test_csv_picks_and_their_errors(obspy_rjob: Path, tmp_path: Path) -> None:
    picks = tmp_path / "picks.csv"
    picks.write_text("station,phase,time\nBW.RJOB,P,2009-08-24T00:20:07.7Z\nRJOB,S,2009-08-24T00:20:09.0\n")
    ds = _open(ingest_waveforms(tmp_path / "ok.zarr", [obspy_rjob], picks=picks, progress=False))
    assert list(ds["pick_sample"].values) == [470, 600]
    assert [str(p) for p in ds["pick_phase"].values] == ["P", "S"]
    assert list(ds["pick_station"].values) == [0, 0]

    bad_rows = {
        "late.csv": ("station,phase,time\nRJOB,P,2009-08-24T00:20:07Z\nRJOB,S,2009-08-24T01:00:00Z\n", "row 2"),
        "who.csv": ("station,phase,time\nFUR,P,2009-08-24T00:20:07Z\n", "row 1: station 'FUR'"),
        "cols.csv": ("sta,phase,time\nRJOB,P,2009-08-24T00:20:07Z\n", "no 'station' column"),
        "when.csv": ("station,phase,time\nRJOB,P,yesterday\n", "row 1: time 'yesterday'"),
    }
    for name, (text, expected) in bad_rows.items():
        path = tmp_path / name
        path.write_text(text)
        out = tmp_path / f"{name}.zarr"
        with pytest.raises(InputDataError) as err:
            ingest_waveforms(out, [obspy_rjob], picks=path, progress=False)
        assert name in str(err.value) and expected in str(err.value), str(err.value)
        _assert_nothing_written(out)


def _bad_inputs(tmp_path: Path, obspy_rjob: Path) -> dict[str, tuple[list[Path], str]]:
    ascii_numbers = _obspy_data("signal", "tests", "data", "loc_RJOB20050801145719850.z")  # bare numbers, no header
    empty_sac = _obspy_data("io", "sac", "tests", "data", "non_ascii.sac")  # a SAC header with 0 samples
    other_band = tmp_path / "rjob_bh.mseed"
    stream = obspy.read(str(obspy_rjob))
    for trace in stream:
        trace.stats.channel = "BH" + trace.stats.channel[-1]
    stream.write(str(other_band), format="MSEED")
    return {
        "missing": ([tmp_path / "nope.mseed"], "nope.mseed: no such file"),
        "unreadable": ([ascii_numbers], f"{ascii_numbers}: not a waveform file ObsPy can read"),
        "no traces": ([empty_sac], "non_ascii.sac: no waveform samples"),
        "two bands": ([obspy_rjob, other_band], "rjob_bh.mseed"),
    }


@pytest.mark.parametrize("case", ["missing", "unreadable", "no traces", "two bands"])
def test_bad_input_leaves_existing_archive_untouched(case: str, obspy_rjob: Path, tmp_path: Path) -> None:
    sources, expected = _bad_inputs(tmp_path, obspy_rjob)[case]
    fresh = tmp_path / "fresh.zarr"
    with pytest.raises(InputDataError) as err:
        ingest_waveforms(fresh, sources, progress=False)
    assert expected in str(err.value) and "\n" not in str(err.value)
    _assert_nothing_written(fresh)

    existing = ingest_waveforms(tmp_path / "old.zarr", [obspy_rjob], progress=False)
    before = json.loads((existing / "zarr.json").read_text())
    with pytest.raises(InputDataError):
        ingest_waveforms(existing, sources, overwrite=True, progress=False)
    assert json.loads((existing / "zarr.json").read_text()) == before
    assert archive_kind(existing) == ("waveforms", True)
    assert not list(tmp_path.glob(".old.zarr.partial-*"))


def test_refuses_to_replace_without_overwrite_and_reads_only_complete(obspy_rjob: Path, tmp_path: Path) -> None:
    out = ingest_waveforms(tmp_path / "w.zarr", [obspy_rjob], codec=CodecSpec("gzip", 1), progress=False)
    with pytest.raises(ArchiveError, match="already exists"):
        ingest_waveforms(out, [obspy_rjob], progress=False)
    import zarr

    zarr.open_group(str(out), mode="r+").attrs["geodl_complete"] = False
    with pytest.raises(ArchiveError, match="incomplete"):
        to_obspy_stream(out)
