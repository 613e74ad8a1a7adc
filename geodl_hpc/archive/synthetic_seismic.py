"""Synthetic-on-real labelled waveforms: synthetic local earthquakes added onto REAL noise, as a waveform archive.

Few labelled real traces exist offline, so the labelled training set is built from a stated physical model
(everything below is a parameter of :class:`EventModel` and is written to the archive's provenance):

- **Source**: Brune (1970) omega-square spectrum ``M0 / (1 + (f / fc)^2)``, ``M0 = 10^(1.5 M + 9.1)`` N m
  (Hanks & Kanamori 1979), S corner ``fc = 0.4906 beta (stress_drop / M0)^(1/3)`` (beta in m/s, Pa), P corner
  ``fc_P = fc_ratio x fc_S``.
- **Propagation**: straight rays at hypocentral distance ``r`` in a half-space (``Vp``, ``Vs = Vp / vp_vs``):
  ``tP = r / Vp``, ``tS = r / Vs``; geometric spreading ``1 / r``; anelastic attenuation ``exp(-pi f t / Q)``
  with ``Q_P = qp_over_qs x Q_S``; far-field amplitude ``R_c M0 / (4 pi rho c^3 r)`` (Aki & Richards 2002) with
  average radiation coefficients ``R_P = 0.52``, ``R_S = 0.63`` (Boore & Boatwright 1984): S is about 5x P.
- **Waveforms**: Boore's (2003) stochastic method: windowed Gaussian noise (duration ``1 / fc + 0.05 r``), its
  spectrum normalised and shaped to the target amplitude spectrum, so each event has random phase.
- **Coda**: band-limited Gaussian noise with Aki & Chouet's (1975) envelope ``(tS / t) exp(-pi f_c (t - tS) / Qc)``,
  ``Qc = coda_q0 f_c^coda_q_exp``, on all three components, starting at the S arrival.
- **Three components**: P linearly polarised along the ray (incidence ``i`` from vertical, mostly vertical); S as
  independent SH (transverse) and SV (mostly radial) waveforms; horizontals rotated to N/E by a random back-azimuth.

The sum is scaled to a target **SNR** (peak 3-C signal amplitude over the largest noise channel std, log-uniform)
and added onto a window of **real noise** cut from quiet parts of real recordings shipped in ObsPy's wheel
(:data:`NOISE_SOURCES`: which recording, which seconds, and why they are quiet). Each record is one "station" of
the archive; its noise source fixes its split, so noise never leaks between train / validation / test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import checked_encoding
from geodl_hpc.errors import ConfigError, InputDataError

if TYPE_CHECKING:
    from geodl_hpc.archive.store import CodecSpec

LABEL = "synthetic-on-real"
CHANNELS = ("Z", "N", "E")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class NoiseSource:
    """Quiet intervals (seconds from the recording's first sample) of one real 3-C recording in ObsPy's wheel."""

    name: str
    split: str
    files: tuple[str, ...]  # paths inside the obspy package, Z N E order
    intervals: tuple[tuple[float, float], ...]
    note: str


# Chosen from 2-s RMS (2-15 Hz) against each recording's median and a running STA/LTA (0.5 s / 5 s power, 2-15 Hz,
# at 50 Hz): every interval ends >= 0.5 s before a trigger (ratio >= 3.5) and starts after the coda has decayed to
# the pre-event level. Checked again whenever an archive is built (:func:`quiet_segments`).
NOISE_SOURCES: tuple[NoiseSource, ...] = (
    NoiseSource(
        "BW.UH3.2010-147",
        "train",
        (
            "signal/tests/data/BW.UH3._.SHZ.D.2010.147.cut.slist.gz",
            "signal/tests/data/BW.UH3._.SHN.D.2010.147.cut.slist.gz",
            "signal/tests/data/BW.UH3._.SHE.D.2010.147.cut.slist.gz",
        ),
        ((52.0, 82.0), (86.0, 177.5), (180.0, 206.0)),
        "50 Hz, 230 s; the event at 29 s (coda to ~48 s) and triggers at 83, 178 and 207 s are excluded",
    ),
    NoiseSource(
        "RJOB.2005-08-01",
        "validation",
        (
            "signal/tests/data/loc_RJOB20050801145719850.z",
            "signal/tests/data/loc_RJOB20050801145719850.n",
            "signal/tests/data/loc_RJOB20050801145719850.e",
        ),
        ((0.0, 30.0),),
        "200 Hz ASCII, 60 s local event triggering at 30.7 s; the 30 s before it are pre-event noise",
    ),
    NoiseSource(
        "CER.2005-07-23",
        "test",
        ("io/seisan/tests/data/2005-07-23-1452-04S.CER___030",),
        ((2.0, 12.4), (13.9, 27.7)),
        "150 Hz SEISAN, 71 s; start transient (0-2 s), a small trigger at 12.9 s and the event from 28.2 s excluded",
    ),
)

QUIET_STA_LTA = 3.5  # a usual trigger-on threshold


@dataclass(frozen=True)
class EventModel:
    """The source, propagation and recording model of the synthetic events, and the ranges they are drawn from."""

    vp_km_s: float = 6.0
    vp_vs: float = 1.73
    density_kg_m3: float = 2700.0
    stress_drop_mpa: float = 3.0
    fc_ratio: float = 1.5  # fc_P / fc_S (Madariaga 1976)
    radiation_p: float = 0.52
    radiation_s: float = 0.63
    q_s: float = 300.0
    qp_over_qs: float = 2.25
    coda_q0: float = 100.0
    coda_q_exp: float = 0.7
    coda_freq_hz: float = 5.0
    coda_level: float = 0.25  # coda envelope at the S onset relative to the S peak amplitude
    magnitude: tuple[float, float] = (1.5, 4.0)
    distance_km: tuple[float, float] = (5.0, 45.0)
    incidence_deg: tuple[float, float] = (5.0, 35.0)
    snr: tuple[float, float] = (4.0, 400.0)  # log-uniform, peak 3-C signal (S) / largest noise channel std


@dataclass(frozen=True)
class SyntheticSeismicConfig:
    """How many records of which length; each record is one archive station with at most one event."""

    records: tuple[int, int, int] = (800, 160, 160)  # train, validation, test
    record_samples: int = 512
    sampling_rate: float = 50.0
    event_fraction: float = 0.8  # the other records are real noise only
    # Noise high-pass (Hz, None = off): the training noise (a short-period sensor) has ~1 % of its power below
    # 1 Hz, the broadband/validation recordings up to 99 % (microseism); pickers work above it.
    noise_highpass_hz: float | None = 1.0
    seed: int = 0
    model: EventModel = field(default_factory=EventModel)

    def __post_init__(self) -> None:
        if self.record_samples < 64 or self.sampling_rate <= 0:
            raise ConfigError("synthetic.record_samples must be >= 64 and synthetic.sampling_rate positive")
        if not 0.0 <= self.event_fraction <= 1.0:
            raise ConfigError(f"synthetic.event_fraction: must be in [0, 1], got {self.event_fraction}")
        if len(self.records) != 3 or min(self.records) < 0:
            raise ConfigError(f"synthetic.records: three counts (train, validation, test) >= 0, got {self.records}")


# ---------------------------------------------------------------------------------------------------------------
# Pure physics kernels (numpy only)
# ---------------------------------------------------------------------------------------------------------------


def seismic_moment(magnitude: float) -> float:
    """Seismic moment in N m from moment magnitude (Hanks & Kanamori 1979)."""
    return float(10 ** (1.5 * magnitude + 9.1))


def corner_frequency(magnitude: float, stress_drop_mpa: float, beta_m_s: float) -> float:
    """Brune S-wave corner frequency in Hz: ``0.4906 beta (stress_drop / M0)^(1/3)``."""
    return float(0.4906 * beta_m_s * (stress_drop_mpa * 1e6 / seismic_moment(magnitude)) ** (1.0 / 3.0))


def phase_spectrum(freq: np.ndarray, magnitude: float, distance_km: float, model: EventModel, wave: str) -> np.ndarray:
    """Far-field displacement amplitude spectrum (m s) of the P or S wave at ``distance_km``."""
    vp = model.vp_km_s * 1e3
    vs = vp / model.vp_vs
    c, rad = (vp, model.radiation_p) if wave == "P" else (vs, model.radiation_s)
    fc = corner_frequency(magnitude, model.stress_drop_mpa, vs) * (model.fc_ratio if wave == "P" else 1.0)
    q = model.q_s * (model.qp_over_qs if wave == "P" else 1.0)
    r = distance_km * 1e3
    level = rad * seismic_moment(magnitude) / (4 * math.pi * model.density_kg_m3 * c**3 * r)
    return np.asarray(level / (1 + (freq / fc) ** 2) * np.exp(-math.pi * freq * (r / c) / q))


def stochastic_pulse(
    rng: np.random.Generator, n: int, rate: float, amplitude: np.ndarray, duration: float
) -> np.ndarray:
    """Boore's stochastic method: ``n`` samples of windowed Gaussian noise whose spectrum is set to ``amplitude``
    (``rfftfreq(n)``-long) with random phase; the pulse starts at sample 0 (its onset) and lasts ~``duration``."""
    t = np.arange(n) / rate
    tp = max(0.2 * duration, 2.0 / rate)
    envelope = (t / tp) * np.exp(1.0 - t / tp)  # gamma-shaped: fast rise, decay over ~duration
    noise = rng.standard_normal(n) * envelope
    spec = np.fft.rfft(noise)
    spec /= np.sqrt(np.mean(np.abs(spec) ** 2)) + 1e-30
    # Velocity (what seismometers record) from displacement: times 2 pi f.
    freq = np.fft.rfftfreq(n, 1.0 / rate)
    out = np.fft.irfft(spec * amplitude * 2 * math.pi * freq, n)
    taper = np.clip(t / (2.0 / rate), 0.0, 1.0)  # no energy before the onset survives the spectral shaping
    return np.asarray(out * taper)


def coda_envelope(t: np.ndarray, ts: float, model: EventModel) -> np.ndarray:
    """Aki & Chouet single-scattering envelope, 1 at the S arrival ``ts`` (s after origin), 0 before."""
    qc = model.coda_q0 * model.coda_freq_hz**model.coda_q_exp
    lapse = np.maximum(t, ts)
    env = (ts / lapse) * np.exp(-math.pi * model.coda_freq_hz * (lapse - ts) / qc)
    return np.where(t >= ts, env, 0.0)


@dataclass(frozen=True)
class EventParams:
    """One drawn event as seen by one record."""

    magnitude: float
    distance_km: float
    incidence_deg: float
    backazimuth_deg: float
    sh_fraction: float  # S polarisation: share of SH amplitude (the rest SV)
    p_sample: int
    s_sample: int


def synthetic_event(
    rng: np.random.Generator, n: int, rate: float, p_sample: int, magnitude: float, distance_km: float,
    model: EventModel,
) -> tuple[np.ndarray, EventParams]:  # fmt: skip
    """``(3, n)`` Z/N/E ground velocity of one event whose P arrives at ``p_sample``; S follows by the S-P time."""
    vp = model.vp_km_s
    vs = vp / model.vp_vs
    tp, ts = distance_km / vp, distance_km / vs
    s_sample = p_sample + round((ts - tp) * rate)
    inc = math.radians(rng.uniform(*model.incidence_deg))
    baz = rng.uniform(0.0, 360.0)
    psi = rng.uniform(0.0, math.pi / 2)
    freq = np.fft.rfftfreq(n, 1.0 / rate)
    beta = vs * 1e3
    fc = corner_frequency(magnitude, model.stress_drop_mpa, beta)
    duration = 1.0 / fc + 0.05 * distance_km
    out = np.zeros((3, n))  # Z, radial, transverse first
    p = stochastic_pulse(rng, n, rate, phase_spectrum(freq, magnitude, distance_km, model, "P"), duration)
    s_amp = phase_spectrum(freq, magnitude, distance_km, model, "S")
    sv = stochastic_pulse(rng, n, rate, s_amp, duration) * math.sin(psi)
    sh = stochastic_pulse(rng, n, rate, s_amp, duration) * math.cos(psi)
    if p_sample < n:
        k = n - p_sample
        out[0, p_sample:] += p[:k] * math.cos(inc)
        out[1, p_sample:] += p[:k] * math.sin(inc)
    if s_sample < n:
        k = n - s_sample
        out[0, s_sample:] += sv[:k] * math.sin(inc)
        out[1, s_sample:] += sv[:k] * math.cos(inc)
        out[2, s_sample:] += sh[:k]
        # Coda: band-limited (1 Hz to 0.45 x rate) noise with the Aki-Chouet envelope, equal on all components.
        t = tp + (np.arange(n) - p_sample) / rate
        env = coda_envelope(t, ts, model)
        s_peak = float(np.abs(out[:, s_sample:]).max()) if k else 0.0
        coda = _bandlimited(rng, (3, n), rate, 1.0, 0.45 * rate)
        out += coda * env * model.coda_level * s_peak
    # Radial/transverse -> N/E at back-azimuth baz (the radial points away from the source).
    b = math.radians(baz)
    rad, tra = out[1].copy(), out[2].copy()
    out[1] = -rad * math.cos(b) + tra * math.sin(b)
    out[2] = -rad * math.sin(b) - tra * math.cos(b)
    params = EventParams(magnitude, distance_km, math.degrees(inc), baz, math.cos(psi) ** 2, p_sample, s_sample)
    return out, params


def _bandlimited(rng: np.random.Generator, shape: tuple[int, int], rate: float, lo: float, hi: float) -> np.ndarray:
    """Unit-std Gaussian noise with a flat spectrum between ``lo`` and ``hi`` Hz."""
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    freq = np.fft.rfftfreq(shape[-1], 1.0 / rate)
    spec[..., (freq < lo) | (freq > hi)] = 0.0
    out = np.fft.irfft(spec, shape[-1], axis=-1)
    return np.asarray(out / (out.std(axis=-1, keepdims=True) + 1e-30))


def add_at_snr(noise: np.ndarray, signal: np.ndarray, snr: float) -> np.ndarray:
    """``noise + a * signal`` with ``a`` such that peak |a signal| = ``snr`` x the largest noise channel std."""
    peak = float(np.abs(signal).max())
    level = float(noise.std(axis=-1).max())
    return noise + signal * (snr * level / peak if peak > 0 else 0.0)


def sta_lta(z: np.ndarray, rate: float, sta: float = 0.5, lta: float = 5.0) -> np.ndarray:
    """Running classic STA/LTA of power in the 2-15 Hz band (trailing windows), ~1 on stationary noise; sample
    ``i`` of the result ends at sample ``i + lta x rate - 1`` of ``z``."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [2.0, min(15.0, 0.45 * rate)], btype="band", fs=rate, output="sos")
    p = sosfiltfilt(sos, z - z.mean()) ** 2
    ns, nl = int(sta * rate), int(lta * rate)
    c = np.concatenate([[0.0], np.cumsum(p)])
    i = np.arange(nl, len(p) + 1)
    return np.asarray(((c[i] - c[i - ns]) / ns) / ((c[i] - c[i - nl]) / nl + 1e-30))


# ---------------------------------------------------------------------------------------------------------------
# Real noise
# ---------------------------------------------------------------------------------------------------------------


def _obspy_file(rel: str) -> Path:
    import obspy

    path = Path(obspy.__file__).parent / rel
    if not path.exists():
        raise InputDataError(f"{path}: real noise file missing from the obspy wheel; reinstall obspy (1.5.x)")
    return path


def load_noise(source: NoiseSource, rate: float, highpass_hz: float | None = None) -> tuple[np.ndarray, list[Path]]:
    """``(3, n)`` Z/N/E float64 counts of ``source`` at ``rate`` Hz (anti-alias resampled; zero-phase high-passed
    at ``highpass_hz`` over the whole recording when given) and its files; read once per process (read-only)."""
    key = (source, float(rate), highpass_hz)
    if key not in _NOISE:
        data, paths = _read_noise(source, rate)
        if highpass_hz:
            from scipy.signal import butter, sosfiltfilt

            sos = butter(4, highpass_hz, btype="highpass", fs=rate, output="sos")
            data = np.ascontiguousarray(sosfiltfilt(sos, data - data.mean(axis=1, keepdims=True), axis=1))
        data.flags.writeable = False
        _NOISE[key] = (data, paths)
    data, paths = _NOISE[key]
    return data, list(paths)


_NOISE: dict[tuple[NoiseSource, float, float | None], tuple[np.ndarray, list[Path]]] = {}


def _read_noise(source: NoiseSource, rate: float) -> tuple[np.ndarray, list[Path]]:
    import obspy

    paths = [_obspy_file(f) for f in source.files]
    stream = obspy.Stream()
    for path in paths:
        if path.suffix in (".z", ".n", ".e"):  # ObsPy's plain ASCII test columns, 200 Hz
            stream += obspy.Trace(
                np.loadtxt(path), header={"sampling_rate": 200.0, "channel": "EH" + path.suffix[1:].upper()}
            )
        else:
            stream += obspy.read(str(path))
    comps = []
    for comp in CHANNELS:
        picked = [tr for tr in stream if tr.stats.channel.strip()[-1:] == comp]
        if not picked:
            raise InputDataError(f"{paths[0]}: no {comp} component for noise source {source.name}")
        tr = picked[0].copy()
        tr.data = np.asarray(tr.data, dtype=np.float64)
        if abs(tr.stats.sampling_rate - rate) > 1e-6:
            tr.resample(rate, window="hann")
        comps.append(tr.data)
    n = min(len(c) for c in comps)
    return np.stack([c[:n] for c in comps]), paths


def quiet_segments(source: NoiseSource, data: np.ndarray, rate: float, length: int) -> list[tuple[int, int]]:
    """The source's quiet intervals, in samples, that hold at least ``length`` samples; each is checked to stay
    below :data:`QUIET_STA_LTA` on the vertical (a wrong interval is an error, not silently used)."""
    ratio = sta_lta(data[0], rate)
    offset = int(5.0 * rate) - 1  # ratio[i] ends at sample i + offset
    out = []
    for a, b in source.intervals:
        lo, hi = int(a * rate), min(int(b * rate), data.shape[1])
        if hi - lo < length:
            continue
        inside = ratio[max(lo - offset, 0) : max(hi - offset, 0)]
        if len(inside) and inside.max() >= QUIET_STA_LTA:
            raise InputDataError(
                f"{source.name}: interval {a}-{b} s is not quiet (STA/LTA {inside.max():.1f}); fix NOISE_SOURCES"
            )
        out.append((lo, hi))
    if not out:
        raise InputDataError(f"{source.name}: no quiet interval of {length / rate:g} s; lower record_samples")
    return out


def noise_record(rng: np.random.Generator, data: np.ndarray, segments: list[tuple[int, int]], n: int) -> np.ndarray:
    """A random ``n``-sample 3-C window of real noise from the quiet ``segments``, demeaned, randomly rotated
    about the vertical, sign-flipped and time-reversed (each leaves stationary noise statistics unchanged)."""
    slack = np.array([b - a - n + 1 for a, b in segments], dtype=np.int64)
    j = int(rng.choice(len(segments), p=slack / slack.sum()))
    start = segments[j][0] + int(rng.integers(0, slack[j]))
    out = data[:, start : start + n].copy()
    out -= out.mean(axis=1, keepdims=True)
    th = rng.uniform(0, 2 * math.pi)
    nn_, ee = out[1].copy(), out[2].copy()
    out[1], out[2] = nn_ * math.cos(th) - ee * math.sin(th), nn_ * math.sin(th) + ee * math.cos(th)
    if rng.random() < 0.5:
        out = -out
    if rng.random() < 0.5:
        out = out[:, ::-1].copy()
    return out


# ---------------------------------------------------------------------------------------------------------------
# The archive
# ---------------------------------------------------------------------------------------------------------------


def build_synthetic_archive(
    out: Path,
    config: SyntheticSeismicConfig | None = None,
    *,
    overwrite: bool = False,
    codec: CodecSpec | None = None,
) -> Path:
    """Write the synthetic-on-real waveform archive (the format ``ingest_waveforms`` writes) to ``out``.

    One station per record, named ``{split[:2]}{index:04d}`` (``tr0001``, ``va0001``, ``te0001``), with station
    variables ``split``, ``noise_source``, ``magnitude``, ``distance_km`` and ``snr`` (NaN for noise-only
    records), and P and S picks per event record. Deterministic for a given ``config.seed``.
    """
    import xarray as xr
    import zarr

    from geodl_hpc.archive.store import (
        COMPLETE_ATTR,
        KIND_ATTR,
        PROVENANCE_ATTR,
        CodecSpec,
        mark_complete_zarr,
        provenance,
        staged_output,
    )

    codec = codec or CodecSpec()
    config = config or SyntheticSeismicConfig()
    out = Path(out)
    rate, n, model = float(config.sampling_rate), int(config.record_samples), config.model
    rng = np.random.default_rng(config.seed)
    noise: dict[str, tuple[np.ndarray, list[tuple[int, int]]]] = {}
    files: list[Path] = []
    for src in NOISE_SOURCES:
        data, paths = load_noise(src, rate, config.noise_highpass_hz)
        noise[src.name] = (data, quiet_segments(src, data, rate, n))
        files += paths
    rows: list[dict[str, Any]] = []
    records: list[np.ndarray] = []
    picks: list[tuple[int, str, int]] = []
    for split, count in zip(SPLITS, config.records, strict=True):
        sources = [s for s in NOISE_SOURCES if s.split == split]
        for k in range(count):
            src = sources[k % len(sources)]
            data, segments = noise[src.name]
            record = noise_record(rng, data, segments, n)
            row: dict[str, Any] = {"station": f"{split[:2]}{k:04d}", "split": split, "noise_source": src.name}
            row.update(magnitude=math.nan, distance_km=math.nan, snr=math.nan)
            if rng.random() < config.event_fraction:
                mag = float(rng.uniform(*model.magnitude))
                dist = float(rng.uniform(*model.distance_km))
                sp = round(dist * (model.vp_vs - 1.0) / model.vp_km_s * rate)
                lo, hi = int(0.05 * n), max(int(0.95 * n) - sp, int(0.05 * n) + 1)
                p_sample = int(rng.integers(lo, hi))
                event, params = synthetic_event(rng, n, rate, p_sample, mag, dist, model)
                snr = float(math.exp(rng.uniform(math.log(model.snr[0]), math.log(model.snr[1]))))
                record = add_at_snr(record, event, snr)
                row.update(magnitude=mag, distance_km=dist, snr=snr)
                station = len(rows)
                picks.append((station, "P", params.p_sample))
                if params.s_sample < n:
                    picks.append((station, "S", params.s_sample))
            rows.append(row)
            records.append(record.astype(np.float32))
    if not rows:
        raise ConfigError("synthetic.records: all zero; ask for at least one record")
    ns = len(rows)
    starttime = "2000-01-01T00:00:00.000000Z"  # records share a nominal time axis; only offsets matter
    ds = xr.Dataset(
        coords={
            "station": ("station", np.array([r["station"] for r in rows], dtype=object)),
            "network": ("station", np.array(["SY"] * ns, dtype=object)),
            "location": ("station", np.array([""] * ns, dtype=object)),
            "latitude": ("station", np.full(ns, np.nan), {"units": "degrees_north"}),
            "longitude": ("station", np.full(ns, np.nan), {"units": "degrees_east"}),
            "elevation": ("station", np.full(ns, np.nan), {"units": "m"}),
            "channel": ("channel", np.array(CHANNELS, dtype=object)),
            "split": ("station", np.array([r["split"] for r in rows], dtype=object)),
            "noise_source": ("station", np.array([r["noise_source"] for r in rows], dtype=object)),
        },
        data_vars={
            "channel_code": (("station", "channel"), np.array([["HH" + c for c in CHANNELS]] * ns, dtype=object)),
            "magnitude": ("station", np.array([r["magnitude"] for r in rows]), {"long_name": "Mw, NaN = noise only"}),
            "distance_km": ("station", np.array([r["distance_km"] for r in rows]), {"units": "km"}),
            "snr": ("station", np.array([r["snr"] for r in rows]), {"long_name": "peak signal / noise std"}),
            "pick_station": ("pick", np.array([p[0] for p in picks], dtype=np.int64)),
            "pick_phase": ("pick", np.array([p[1] for p in picks], dtype=object)),
            "pick_time_s": ("pick", np.array([p[2] / rate for p in picks]), {"units": "s after starttime"}),
            "pick_sample": ("pick", np.array([p[2] for p in picks], dtype=np.int64)),
        },
    )
    chunks = {"station": 1, "channel": len(CHANNELS), "time": n}
    extra = {
        "label": LABEL,
        "synthetic": {
            "config": _plain(asdict(config)),
            "noise_sources": [_plain(asdict(s)) for s in NOISE_SOURCES],
            "model": "Brune omega-square source, 1/r spreading, exp(-pi f t / Q), stochastic random phase "
            "(Boore 2003), Aki-Chouet coda; see geodl_hpc.archive.synthetic_seismic",
        },
        "options": {"sampling_rate": rate, "resampled": True, "picks": LABEL, "stations": None},
    }
    record_prov = provenance(files, chunks=chunks, codec=codec, extra=extra)
    with staged_output(out, overwrite=overwrite) as tmp:
        ds.to_zarr(str(tmp), zarr_format=3, consolidated=False, mode="w-", encoding=checked_encoding(ds))
        group = zarr.open_group(str(tmp), mode="r+")
        dims = ("station", "channel", "time")
        common: dict[str, Any] = {
            "shape": (ns, len(CHANNELS), n),
            "chunks": (1, len(CHANNELS), n),
            "compressors": codec.zarr_compressors(),
        }
        data_arr = group.create_array("data", dtype="float32", fill_value=0.0, dimension_names=dims, **common)
        data_arr.attrs.update({"long_name": "ground motion (synthetic-on-real)", "units": "counts"})
        valid = group.create_array("valid", dtype="bool", fill_value=False, dimension_names=dims, **common)
        valid.attrs["long_name"] = "True where a sample was recorded (False in gaps)"
        data_arr[:] = np.stack(records)
        valid[:] = True
        group.attrs.update(
            {
                KIND_ATTR: "waveforms",
                COMPLETE_ATTR: False,
                PROVENANCE_ATTR: record_prov,
                "sampling_rate": rate,
                "starttime": starttime,
                "label": LABEL,
            }
        )
        mark_complete_zarr(tmp)
    return out


def _plain(value: Any) -> Any:
    """Tuples to lists (JSON attributes)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
