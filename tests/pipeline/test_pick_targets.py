"""Waveform windows carry pick targets y (B, 3, T) that follow the picks and the shift augmentation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import xarray as xr

from geodl_hpc.pipeline import ChipPipeline, PipelineConfig
from geodl_hpc.pipeline.decode import pick_targets
from geodl_hpc.sampling.units import WaveUnits
from geodl_hpc.sampling.waveform import noise_windows, pick_windows, training_windows


def test_pick_targets_are_gaussians_with_noise_the_rest() -> None:
    out = np.zeros((3, 200), np.float32)
    pick_targets(out, [(1, 50.0), (2, 120.0), (1, 205.0)], sigma=5.0)
    t = np.arange(200)
    np.testing.assert_allclose(out[2], np.exp(-0.5 * ((t - 120) / 5.0) ** 2), rtol=1e-6, atol=1e-7)
    assert out[1].argmax() == 50 and out[1, 50] == 1.0
    assert 0 < out[1, 199] < 1  # a pick just past the end leaves its tail
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-6)
    overlap = np.zeros((3, 50), np.float32)
    pick_targets(overlap, [(1, 25.0), (2, 26.0)], sigma=5.0)
    assert overlap.min() >= 0 and np.allclose(overlap.sum(axis=0), 1.0)


def test_waveform_batches_carry_targets_aligned_with_shifted_windows(rjob_archive: Path) -> None:
    ds = xr.open_zarr(str(rjob_archive), consolidated=False)
    ps, st = ds["pick_sample"].values, ds["pick_station"].values  # real RJOB P and S picks
    data = ds["data"].values
    cfg = PipelineConfig(rjob_archive, chip=200, batch_size=8, backend="local", normalise=False, pick_sigma=4.0)
    probe = ChipPipeline(cfg, np.zeros((0, 2), np.int64))
    samples = pick_windows(probe.units, st, ps, 200, np.random.default_rng(0), jitter=40)  # type: ignore[arg-type]
    plain = next(ChipPipeline(cfg, samples).iter_epoch(0))
    shifted_cfg = replace(cfg, augment=("shift",), shift_max=30)
    shifted = next(ChipPipeline(shifted_cfg, samples).iter_epoch(0))
    assert plain["y"].shape == (len(samples), 3, 200)
    for j, i in enumerate(plain["index"].tolist()):
        s, t0 = samples[i]
        np.testing.assert_array_equal(plain["x"][j].numpy(), data[s, :, t0 : t0 + 200])
        for phase, at in ((1, ps[0] - t0), (2, ps[1] - t0)):
            if 0 <= at < 200:
                assert int(plain["y"][j, phase].argmax()) == at and float(plain["y"][j, phase].max()) == 1.0
        # The shift moved x by some s; y moved by the same s.
        k = int(np.flatnonzero(shifted["index"].numpy() == i)[0])
        xs, x0 = shifted["x"][k].numpy(), plain["x"][j].numpy()
        s_found = [d for d in range(-30, 31) if np.array_equal(np.roll(x0, d, axis=1)[:, 40:160], xs[:, 40:160])]
        assert len(s_found) == 1
        ys = shifted["y"][k].numpy()
        y0 = plain["y"][j].numpy()
        np.testing.assert_allclose(np.roll(y0, s_found[0], axis=1)[:, 40:160], ys[:, 40:160], atol=1e-6)


def test_raster_batches_are_unchanged(murchison: Path) -> None:
    cfg = PipelineConfig(murchison, chip=16, batch_size=4, backend="local", label="deposits")
    batch = next(ChipPipeline(cfg, np.array([[0, 0], [16, 16]])).iter_epoch(0))
    assert set(batch) == {"x", "y", "index"} and batch["y"].shape == (2, 16, 16)


def test_training_windows_mix_picks_and_noise_within_a_split() -> None:
    units = WaveUnits(6, 1000, 500, 1)
    rng = np.random.default_rng(0)
    st = np.array([0, 0, 1, 2, 3, 4])
    ps = np.array([100, 300, 600, 50, 700, 900])
    stations = np.array([True, True, True, False, False, False])
    win = training_windows(units, st, ps, 128, 20, rng, noise_fraction=0.25, jitter=20, guard=10, stations=stations)
    assert np.all(stations[win[:, 0]])
    n_noise = round(0.25 * 20)
    picked, noise = win[:-n_noise], win[-n_noise:]
    assert len(picked) == len(np.unique(picked, axis=0)) == stations[st].sum()  # every pick of the split
    for s, t in noise:  # no pick within guard of a noise window
        assert not np.any((st == s) & (ps >= t - 10) & (ps < t + 128 + 10))
        assert t // 500 == (t + 127) // 500  # inside one read unit
    only = noise_windows(units, 10, 128, rng, stations=np.array([False] * 5 + [True]))
    assert np.all(only[:, 0] == 5)
