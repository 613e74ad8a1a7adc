"""Continuous annotation: block-wise results equal a whole-trace run, resume after a kill, ranks and Ray agree,
outputs open in xarray and ObsPy, memory stays bounded. Data: synthetic Gaussian noise (i.i.d. N(0, 1) per
sample and channel; values do not matter for these equalities) written through the real waveform ingest."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import obspy
import pytest
import xarray as xr

from geodl_hpc.archive.waveforms import ingest_waveforms
from geodl_hpc.errors import ArchiveError, ConfigError, InputDataError
from geodl_hpc.inference.annotate import Picker, annotate, as_picker
from geodl_hpc.inference.annotate_config import AnnotateJobConfig, PhaseThresholds
from geodl_hpc.inference.annotate_kernels import local_peaks, window_starts

RATE = 100.0
WINDOW = 200  # longer than the archive chunk below: the halo spans more than one neighbouring chunk
CHUNK = 128
N_TIME = 1337  # not a multiple of the chunk, the stride or the window


def noise_archive(
    path: Path, n_time: int = N_TIME, stations: tuple[str, ...] = ("A", "B"), seed: int = 0, chunk: int = CHUNK
) -> Path:
    """Synthetic 3-C Gaussian-noise stations XX.<name> at 100 Hz, ingested with small time chunks."""
    rng = np.random.default_rng(seed)
    stream = obspy.Stream()
    for sta in stations:
        for comp in "ZNE":
            header = {"network": "XX", "station": sta, "channel": f"HH{comp}", "sampling_rate": RATE,
                      "starttime": obspy.UTCDateTime(2021, 3, 4, 5, 6, 7)}  # fmt: skip
            stream.append(obspy.Trace((rng.normal(size=n_time) * 50).astype(np.float32), header=header))
    source = path.with_suffix(".mseed")
    stream.write(str(source), format="MSEED")
    return ingest_waveforms(path, [source], chunk_samples=chunk, progress=False)


def tiny_picker(window: int = WINDOW, seed: int = 0) -> Picker:
    import torch

    from geodl_hpc.models.picker import LoadedPicker, PhaseNet

    torch.manual_seed(seed)
    module = PhaseNet(3, width=4, depth=3, kernel=5)
    return as_picker(LoadedPicker(module.eval(), window, RATE, ("Z", "N", "E")))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return noise_archive(tmp_path_factory.mktemp("ann") / "noise.zarr")


@pytest.fixture(scope="module")
def picker() -> Picker:
    return tiny_picker()


def cfg(archive: Path, out: Path, **kw: Any) -> AnnotateJobConfig:
    base: dict[str, Any] = {"archive": str(archive), "output": str(out), "stride": 70, "progress": False,
                            "threshold": PhaseThresholds(0.34, 0.34), "min_separation_s": 0.3, "threads": 1,
                            "batch_size": 5}  # fmt: skip
    return AnnotateJobConfig(**{**base, **kw})


def whole_trace_reference(archive: Path, picker: Picker, stride: int, stacking: str) -> np.ndarray:
    """Every window of each whole trace, one at a time, stacked with float64 sums: ``(station, K, time)``."""
    ds = xr.open_zarr(str(archive), consolidated=False)
    data = ds["data"].values
    n = data.shape[-1]
    out = np.zeros((data.shape[0], len(picker.output_names), n))
    for s in range(data.shape[0]):
        acc = np.zeros((len(picker.output_names), n)) if stacking == "mean" else np.full(out.shape[1:], -np.inf)
        count = np.zeros(n)
        for start in window_starts(n, picker.window, stride):
            p = picker.probabilities(data[s : s + 1, :, start : start + picker.window])[0].astype(np.float64)
            if stacking == "mean":
                acc[:, start : start + picker.window] += p
            else:
                acc[:, start : start + picker.window] = np.maximum(acc[:, start : start + picker.window], p)
            count[start : start + picker.window] += 1
        assert count.min() >= 1
        out[s] = acc / count if stacking == "mean" else acc
    return out


def read_output(out: Path) -> xr.Dataset:
    return xr.open_zarr(str(out), consolidated=False)


# ------------------------------------------------------------------------------------------------ kernels


@pytest.mark.parametrize(("n", "window", "stride"), [(1337, 200, 70), (1000, 200, 200), (150, 200, 50), (201, 200, 1)])
def test_window_grid_covers_every_sample_and_block_queries_agree(n: int, window: int, stride: int) -> None:
    starts = window_starts(n, window, stride)
    covered = np.zeros(n, dtype=int)
    for s in starts:
        covered[s : s + window] += 1
    assert covered.min() >= 1 and starts[0] == 0
    assert min(int(starts[-1]) + window, n) == n and np.all(np.diff(starts) > 0)
    for lo, hi in [(0, 64), (64, 128), (n - 30, n), (37, 38)]:
        expect = starts[(starts + window > lo) & (starts < hi)]
        np.testing.assert_array_equal(window_starts(n, window, stride, lo, hi), expect)


def test_local_peaks_match_a_brute_force_rule_and_are_block_local() -> None:
    rng = np.random.default_rng(3)
    p = np.round(rng.random(3000), 1).astype(np.float32)  # rounding makes ties (flat tops) common
    d = 7
    brute = [
        i
        for i in range(len(p))
        if p[i] >= 0.5
        and all(p[i] > p[j] for j in range(max(0, i - d), i))
        and all(p[i] >= p[j] for j in range(i + 1, min(len(p), i + d + 1)))
    ]
    whole = local_peaks(p, 0.5, d)
    np.testing.assert_array_equal(whole, brute)
    blockwise = []
    for t0 in range(0, len(p), 256):
        lo, hi = max(0, t0 - d), min(len(p), t0 + 256 + d)
        found = lo + local_peaks(p[lo:hi], 0.5, d)
        blockwise.extend(int(i) for i in found if t0 <= i < t0 + 256)
    assert blockwise == list(whole)


# ------------------------------------------------------------------------------------------------ engine


@pytest.mark.parametrize("stacking", ["mean", "max"])
def test_blocks_equal_whole_trace_and_picks_follow_the_rule(
    archive: Path, picker: Picker, tmp_path: Path, stacking: str
) -> None:
    out = tmp_path / f"{stacking}.zarr"
    result = annotate(picker, cfg(archive, out, stacking=stacking))
    assert result["status"] == "complete" and result["blocks_total"] == 2 * -(-N_TIME // CHUNK)
    ds = read_output(out)
    probs = ds["probabilities"].values
    assert probs.dtype == np.float32 and ds["probabilities"].encoding["chunks"] == (1, 3, CHUNK)
    ref = whole_trace_reference(archive, picker, 70, stacking)
    assert np.abs(probs - ref).max() <= 1e-6
    assert list(ds["class"].values) == ["noise", "P", "S"] and ds.attrs["sampling_rate"] == RATE

    picks = sorted(zip(ds["pick_station"].values, ds["pick_phase"].values, ds["pick_sample"].values, strict=True))
    expect = []
    for s in range(probs.shape[0]):
        for phase, k in (("P", 1), ("S", 2)):
            expect += [(s, phase, int(i)) for i in local_peaks(probs[s, k], 0.34, 30)]
    assert [(int(a), str(b), int(c)) for a, b, c in picks] == sorted(expect)
    assert len(expect) > 0  # an untrained net on noise still crosses 0.34 somewhere: the test exercises picks


def test_picks_table_and_quakeml_agree(archive: Path, picker: Picker, tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "q.zarr"
    result = annotate(picker, cfg(archive, out))
    table = pd.read_csv(result["files"]["picks"])
    assert list(table.columns[:6]) == ["network", "station", "location", "station_index", "phase", "time"]
    assert len(table) == result["n_picks"] > 0
    t0 = obspy.UTCDateTime(2021, 3, 4, 5, 6, 7)
    for row in table.itertuples():
        assert abs(obspy.UTCDateTime(row.time) - (t0 + row.sample / RATE)) < 1e-3
    catalog = obspy.read_events(result["files"]["quakeml"])
    picks = catalog[0].picks
    assert len(picks) == len(table)
    assert {p.phase_hint for p in picks} <= {"P", "S"}
    assert sorted(str(p.time) for p in picks) == sorted(str(obspy.UTCDateTime(t)) for t in table["time"])
    assert {p.waveform_id.get_seed_string().rsplit(".", 1)[0] for p in picks} <= {"XX.A.", "XX.B."}
    assert {p.waveform_id.channel_code for p in picks} == {"HHZ"}


def test_killed_run_resumes_missing_blocks_only_and_rerun_is_noop(
    archive: Path, picker: Picker, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.zarr"
    annotate(picker, cfg(archive, whole))
    out = tmp_path / "killed.zarr"
    seen: list[int] = []

    def die_after_five(index: int) -> None:
        seen.append(index)
        if len(seen) == 5:
            raise KeyboardInterrupt  # what a SIGINT in the middle of a run raises

    with pytest.raises(KeyboardInterrupt):
        annotate(picker, cfg(archive, out), on_block=die_after_five)
    assert read_output(out).attrs["geodl_complete"] is False
    resumed = annotate(picker, cfg(archive, out))
    assert resumed["status"] == "complete"
    assert sorted(resumed["computed"]) == sorted(set(range(resumed["blocks_total"])) - set(seen))
    np.testing.assert_array_equal(read_output(out)["probabilities"].values, read_output(whole)["probabilities"].values)
    np.testing.assert_array_equal(read_output(out)["pick_sample"].values, read_output(whole)["pick_sample"].values)
    again = annotate(picker, cfg(archive, out))
    assert again["status"] == "noop" and again["blocks_computed"] == 0


def test_ranks_split_blocks_and_the_last_completes(archive: Path, picker: Picker, tmp_path: Path) -> None:
    whole = tmp_path / "whole.zarr"
    annotate(picker, cfg(archive, whole, block_chunks=2))
    out = tmp_path / "ranks.zarr"
    first = annotate(picker, cfg(archive, out, block_chunks=2, rank=1, n_ranks=2))
    assert first["status"] == "partial" and all(i % 2 == 1 for i in first["computed"])
    second = annotate(picker, cfg(archive, out, block_chunks=2, rank=0, n_ranks=2))
    assert second["status"] == "complete" and all(i % 2 == 0 for i in second["computed"])
    np.testing.assert_array_equal(read_output(out)["probabilities"].values, read_output(whole)["probabilities"].values)


@pytest.mark.slow
def test_ray_tasks_give_the_local_result(archive: Path, picker: Picker, tmp_path: Path) -> None:
    local = tmp_path / "local.zarr"
    annotate(picker, cfg(archive, local))
    out = tmp_path / "ray.zarr"
    result = annotate(picker, cfg(archive, out, executor="ray", workers=2))
    assert result["status"] == "complete" and result["blocks_computed"] == result["blocks_total"]
    a, b = read_output(out), read_output(local)
    assert np.abs(a["probabilities"].values - b["probabilities"].values).max() <= 1e-6
    np.testing.assert_array_equal(a["pick_sample"].values, b["pick_sample"].values)


def test_gaps_get_no_probability_and_no_picks_and_blocks_still_match(picker: Picker, tmp_path: Path) -> None:
    """A station with a recording gap (samples 400-649 missing on all channels): NaN there, no picks there, and
    chunk-sized blocks give exactly what one block per station gives."""
    rng = np.random.default_rng(4)
    stream = obspy.Stream()
    t0 = obspy.UTCDateTime(2021, 3, 4)
    for comp in "ZNE":
        header = {"network": "XX", "station": "G", "channel": f"HH{comp}", "sampling_rate": RATE, "starttime": t0}
        trace = obspy.Trace((rng.normal(size=N_TIME) * 50).astype(np.float32), header=header)
        stream.append(trace.slice(t0, t0 + 399 / RATE))
        stream.append(trace.slice(t0 + 650 / RATE, None))
    stream.write(str(tmp_path / "gap.mseed"), format="MSEED")
    archive = ingest_waveforms(tmp_path / "gap.zarr", [tmp_path / "gap.mseed"], chunk_samples=CHUNK, progress=False)
    small = annotate(picker, cfg(archive, tmp_path / "small.zarr"))
    whole = annotate(picker, cfg(archive, tmp_path / "whole.zarr", block_chunks=100))
    assert small["blocks_total"] == -(-N_TIME // CHUNK) and whole["blocks_total"] == 1
    a, b = read_output(tmp_path / "small.zarr"), read_output(tmp_path / "whole.zarr")
    probs = a["probabilities"].values[0]
    assert np.isnan(probs[:, 400:650]).all() and not np.isnan(probs[:, :400]).any()
    assert not np.isnan(probs[:, 650:]).any()
    np.testing.assert_allclose(probs, b["probabilities"].values[0], rtol=0, atol=1e-6)
    samples = a["pick_sample"].values
    assert len(samples) > 0 and not ((samples >= 400) & (samples < 650)).any()
    np.testing.assert_array_equal(samples, b["pick_sample"].values)


def test_memory_stays_bounded_by_a_block(picker: Picker, tmp_path: Path) -> None:
    """Peak Python/numpy allocations (tracemalloc) grow by far less than the trace when the archive is 4x longer.

    Thresholds of 1.0 keep the untrained net from picking, so the pick table (which does grow) stays empty."""
    chunk, peaks, traces = 4096, [], []
    for n in (chunk * 8, chunk * 32):
        arch = noise_archive(tmp_path / f"n{n}.zarr", n_time=n, stations=("A",), chunk=chunk)
        tracemalloc.start()
        config = cfg(arch, tmp_path / f"n{n}.ann.zarr", quakeml=False, batch_size=32, stride=WINDOW,
                     threshold=PhaseThresholds(1, 1))  # fmt: skip
        annotate(picker, config)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        traces.append(n * 3 * 4)  # the whole trace as float32, 3 channels
    assert peaks[1] - peaks[0] < 0.1 * traces[1], (peaks, traces)  # loading the trace would add > 1 MB
    assert peaks[1] < traces[1], (peaks, traces)


def test_user_errors_are_one_line_and_name_the_problem(archive: Path, picker: Picker, tmp_path: Path) -> None:
    import dataclasses

    other_rate = dataclasses.replace(picker, sampling_rate=50.0)
    with pytest.raises(InputDataError, match=r"100 Hz but the picker expects 50 Hz; re-ingest with --sampling-rate"):
        annotate(other_rate, cfg(archive, tmp_path / "x.zarr"))
    with pytest.raises(ConfigError, match="phases: pick P and/or S"):
        cfg(archive, tmp_path / "x.zarr", phases=("P", "Pn"))
    out = tmp_path / "s.zarr"
    annotate(picker, cfg(archive, out))
    with pytest.raises(ArchiveError, match=r"other settings \(stride\); pass overwrite=true"):
        annotate(picker, cfg(archive, out, stride=50))
    assert annotate(picker, cfg(archive, out, stride=50, overwrite=True))["status"] == "complete"
    with pytest.raises(ConfigError, match=r"threshold.S: must be a probability in \(0, 1\], got 1.5"):
        PhaseThresholds(S=1.5)
