"""Synthetic-on-real seismic archive: the stated physics, the real noise it sits on, and the archive it writes."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from geodl_hpc.archive.synthetic_seismic import (
    LABEL,
    NOISE_SOURCES,
    QUIET_STA_LTA,
    EventModel,
    SyntheticSeismicConfig,
    build_synthetic_archive,
    coda_envelope,
    corner_frequency,
    load_noise,
    phase_spectrum,
    quiet_segments,
    sta_lta,
    synthetic_event,
)
from geodl_hpc.archive.waveforms import to_obspy_stream
from geodl_hpc.errors import InputDataError

RATE = 50.0
SMALL = SyntheticSeismicConfig(records=(6, 3, 3), record_samples=512, seed=5)


def test_brune_corner_frequency_and_spectra_follow_the_stated_model() -> None:
    model = EventModel()
    beta = model.vp_km_s / model.vp_vs * 1e3
    # fc ~ M0^(-1/3) and M0 ~ 10^(1.5 M): one magnitude unit lowers fc by 10^0.5.
    assert corner_frequency(2.0, 3.0, beta) / corner_frequency(3.0, 3.0, beta) == pytest.approx(10**0.5)
    no_q = EventModel(q_s=1e12)
    f = np.array([1e-3, 200.0, 400.0])
    p, s = phase_spectrum(f, 3.0, 10.0, no_q, "P"), phase_spectrum(f, 3.0, 10.0, no_q, "S")
    # Low-frequency S/P level: (Vp/Vs)^3 x R_S/R_P.
    assert s[0] / p[0] == pytest.approx(model.vp_vs**3 * model.radiation_s / model.radiation_p, rel=1e-3)
    assert s[1] / s[2] == pytest.approx(4.0, rel=1e-3)  # omega-square fall-off far above the corner
    # Attenuation exp(-pi f t / Q) and 1/r spreading.
    at20, at10 = phase_spectrum(f, 3.0, 20.0, model, "S"), phase_spectrum(f, 3.0, 10.0, model, "S")
    vs = model.vp_km_s / model.vp_vs
    assert at20[1] / at10[1] == pytest.approx(0.5 * math.exp(-math.pi * 200.0 * (10.0 / vs) / model.q_s), rel=1e-6)


def test_event_arrivals_polarisation_and_coda() -> None:
    model = EventModel()
    wave, params = synthetic_event(np.random.default_rng(0), 1024, RATE, 100, 3.0, 30.0, model)
    sp = 30.0 / (model.vp_km_s / model.vp_vs) - 30.0 / model.vp_km_s
    assert params.s_sample - params.p_sample == round(sp * RATE) and params.p_sample == 100
    assert np.all(wave[:, :100] == 0.0)  # nothing before P
    p_win, s_win = slice(100, params.s_sample), slice(params.s_sample, params.s_sample + 100)
    energy = lambda part: (wave[:, part] ** 2).sum(axis=1)  # noqa: E731
    assert energy(p_win)[0] > energy(p_win)[1:].sum()  # P mostly vertical
    assert energy(s_win)[1:].sum() > energy(s_win)[0]  # S mostly horizontal
    assert np.abs(wave[:, s_win]).max() > np.abs(wave[:, p_win]).max()  # S larger than P
    t = np.linspace(0, 60, 601)
    env = coda_envelope(t, 10.0, model)
    assert env[t < 10].max() == 0.0 and env[100] == pytest.approx(1.0) and np.all(np.diff(env[100:]) < 0)


def test_noise_intervals_are_quiet_and_the_events_beside_them_are_not() -> None:
    for source in NOISE_SOURCES:
        data, _ = load_noise(source, RATE)
        segments = quiet_segments(source, data, RATE, 512)  # raises if an interval triggers
        assert segments and all(b - a >= 512 for a, b in segments)
        assert sta_lta(data[0], RATE).max() >= QUIET_STA_LTA  # each recording does hold an event elsewhere
    # The broadband test noise is microseism-dominated below 1 Hz; the 1 Hz high-pass leaves the picking band.
    raw, _ = load_noise(NOISE_SOURCES[2], RATE)
    passed, _ = load_noise(NOISE_SOURCES[2], RATE, highpass_hz=1.0)
    assert _below_1hz(raw) > 0.5 > 0.1 > _below_1hz(passed)
    loud = replace(NOISE_SOURCES[1], intervals=((20.0, 40.0),))  # the RJOB event at 30.7 s
    data, _ = load_noise(NOISE_SOURCES[1], RATE)
    with pytest.raises(InputDataError, match="not quiet"):
        quiet_segments(loud, data, RATE, 512)


def _below_1hz(data: np.ndarray) -> float:
    """Share of the vertical's power below 1 Hz over the first quiet 512 samples."""
    seg = data[0, 150:662] - data[0, 150:662].mean()
    power = np.abs(np.fft.rfft(seg)) ** 2
    return float(power[np.fft.rfftfreq(512, 1 / RATE) < 1.0].sum() / power.sum())


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_synthetic_archive(tmp_path_factory.mktemp("syn") / "syn.zarr", SMALL)


def test_archive_has_the_waveform_format_labels_and_provenance(small_archive: Path) -> None:
    ds = xr.open_zarr(str(small_archive), consolidated=False)
    assert ds.attrs["geodl_kind"] == "waveforms" and ds.attrs["geodl_complete"] is True
    assert ds.attrs["sampling_rate"] == RATE and ds["data"].shape == (12, 3, 512)
    prov = ds.attrs["geodl_provenance"]
    assert prov["label"] == LABEL == "synthetic-on-real"
    assert prov["synthetic"]["config"]["seed"] == 5 and prov["synthetic"]["config"]["model"]["q_s"] == 300.0
    assert [s["name"] for s in prov["synthetic"]["noise_sources"]] == [s.name for s in NOISE_SOURCES]
    assert all(len(s["sha256"]) == 64 for s in prov["sources"])
    split = np.array([str(v) for v in ds["split"].values])
    source = np.array([str(v) for v in ds["noise_source"].values])
    assert (split == "train").sum() == 6 and (split == "validation").sum() == 3 and (split == "test").sum() == 3
    for name in ("train", "validation", "test"):  # one noise source per split: no noise leaks across splits
        assert len(set(source[split == name])) == 1
    assert len(set(source)) == 3
    # Every event record has one P then one S pick; noise-only records have none.
    station, sample = ds["pick_station"].values, ds["pick_sample"].values
    phase = np.array([str(v) for v in ds["pick_phase"].values])
    events = np.flatnonzero(np.isfinite(ds["magnitude"].values))
    assert len(events) > 0 and set(station) == set(events)
    for s in events:
        got = dict(zip(phase[station == s], sample[station == s], strict=True))
        assert 0 <= got["P"] < got.get("S", 10**9)
    assert bool(ds["valid"].values.all())
    assert len(to_obspy_stream(small_archive, 0)) == 3


def test_archive_is_deterministic_per_seed(small_archive: Path, tmp_path: Path) -> None:
    again = build_synthetic_archive(tmp_path / "again.zarr", SMALL)
    other = build_synthetic_archive(tmp_path / "other.zarr", SyntheticSeismicConfig(records=(6, 3, 3), seed=6))
    a, b, c = (np.asarray(zarr.open_array(str(p / "data"), mode="r")[:]) for p in (small_archive, again, other))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
