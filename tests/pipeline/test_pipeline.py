"""The pipeline on real small archives: exact-once, deterministic, resumable, sharded, decoded once per epoch,
normalised from stored statistics, nodata handling, augmentation, waveform windows, and Ray == local."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr

from geodl_hpc.errors import ArchiveError
from geodl_hpc.pipeline import ChipPipeline, PipelineConfig, PipelineError
from geodl_hpc.pipeline import decode as decode_mod
from geodl_hpc.sampling import Cursor, grid_chips, noise_windows, pick_windows, random_chips

K = 16
LAYERS = ("greenstone", "dist_greenstone", "dist_fault", "fault_density")


def _config(path: Path, **kw: Any) -> PipelineConfig:
    base: dict[str, Any] = {"chip": K, "label": "deposits", "batch_size": 12, "mix_units": 2, "backend": "local"}
    base.update(kw)
    return PipelineConfig(path, **base)


def _chips(pipe: ChipPipeline, n: int = 300, seed: int = 0) -> np.ndarray:
    return random_chips(pipe.units, K, n, np.random.default_rng(seed))  # type: ignore[arg-type]


def _collect(batches: Any) -> dict[str, np.ndarray]:
    batches = list(batches)
    return {k: np.concatenate([np.asarray(b[k]) for b in batches]) for k in batches[0]}


@pytest.fixture(scope="module")
def samples(murchison: Path) -> np.ndarray:
    pipe = ChipPipeline(_config(murchison), np.zeros((0, 2), np.int64))
    return _chips(pipe)


def test_epoch_is_exact_once_and_normalised_from_stored_stats(murchison: Path, samples: np.ndarray) -> None:
    pipe = ChipPipeline(_config(murchison), samples)
    batches = list(pipe.iter_epoch(0))
    assert [b["x"].shape[0] for b in batches] == [12] * 25
    assert tuple(batches[0]["x"].shape[1:]) == (4, K, K) and batches[0]["y"].shape[1:] == (K, K)
    out = _collect(batches)
    assert np.array_equal(np.sort(out["index"]), np.arange(len(samples)))
    ds = xr.open_zarr(str(murchison), consolidated=False)
    for j in (0, 123, 299):
        i = int(out["index"][j])
        r, c = samples[i]
        for ch, name in enumerate(LAYERS):
            stats = ds[name].attrs["statistics"]
            raw = ds[name].values[r : r + K, c : c + K]
            np.testing.assert_allclose(out["x"][j, ch], (raw - stats["mean"]) / stats["std"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["y"][j], ds["deposits"].values[r : r + K, c : c + K])
    assert pipe.cursor == Cursor(0, 1, len(samples))


def test_deterministic_per_seed_and_epoch(murchison: Path, samples: np.ndarray) -> None:
    a = _collect(ChipPipeline(_config(murchison), samples).iter_epoch(1))
    b = _collect(ChipPipeline(_config(murchison), samples).iter_epoch(1))
    c = _collect(ChipPipeline(_config(murchison), samples).iter_epoch(2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["index"], c["index"])


def test_every_chunk_decoded_once_per_epoch(
    murchison: Path, samples: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, tuple[int, int, int, int]]] = []
    real = decode_mod.read_raster_unit

    def counting(path: str, names: tuple[str, ...], window: tuple[int, int, int, int]) -> list[np.ndarray]:
        reads.extend((name, window) for name in names)
        return real(path, names, window)

    monkeypatch.setattr(decode_mod, "read_raster_unit", counting)
    pipe = ChipPipeline(_config(murchison, unit_chunks=2, mix_units=3), samples)
    list(pipe.iter_epoch(0))
    n_units = len(np.unique(pipe.unit_ids))
    assert len(reads) == len(set(reads)) == n_units * 5  # 4 inputs + the label, one read per unit
    chunks = [(name, r, c) for name, (r0, r1, c0, c1) in reads for r in range(r0, r1, 32) for c in range(c0, c1, 32)]
    assert len(chunks) == len(set(chunks))


def test_resume_same_and_different_rank_count(murchison: Path, samples: np.ndarray) -> None:
    full = ChipPipeline(_config(murchison), samples)
    ref = list(full.iter_epoch(3))
    pipe = ChipPipeline(_config(murchison), samples)
    it = pipe.iter_epoch(3)
    head = [next(it) for _ in range(10)]
    saved = pipe.cursor
    assert saved is not None and saved.position == 120
    it.close()
    restored = Cursor.from_dict(saved.to_dict())
    tail = list(ChipPipeline(_config(murchison), samples).iter_epoch(3, cursor=restored))
    for a, b in zip(ref, head + tail, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    # Resume on 3 ranks: together they serve exactly the samples not yet seen, in equal shares.
    shards = [
        _collect(ChipPipeline(_config(murchison), samples).iter_epoch(3, r, 3, cursor=restored)) for r in range(3)
    ]
    assert len({len(s["index"]) for s in shards}) == 1
    seen = np.concatenate([b["index"].numpy() for b in head])
    rest = np.concatenate([s["index"] for s in shards])
    assert np.array_equal(np.union1d(seen, rest), np.arange(len(samples)))
    assert len(np.unique(rest)) == len(samples) - 120


def test_equal_shards_cover_the_epoch(murchison: Path, samples: np.ndarray) -> None:
    shards = [_collect(ChipPipeline(_config(murchison), samples).iter_epoch(0, r, 4)) for r in range(4)]
    assert len({len(s["index"]) for s in shards}) == 1
    assert np.array_equal(np.unique(np.concatenate([s["index"] for s in shards])), np.arange(len(samples)))


def test_nodata_skip_plans_around_it_and_fill_adds_a_mask(murchison_nodata: Path) -> None:
    skip = ChipPipeline(_config(murchison_nodata), np.zeros((0, 2), np.int64))
    valid = skip.valid_mask()
    assert valid is not None and not valid[40:60, 50:70].any() and valid.sum() == valid.size - 400
    good = random_chips(skip.units, K, 200, np.random.default_rng(1), valid=valid)  # type: ignore[arg-type]
    out = _collect(ChipPipeline(_config(murchison_nodata), good).iter_epoch(0))
    assert np.isfinite(out["x"]).all() and out["x"].shape[1] == 4
    bad = np.array([[40, 48], [0, 0]])
    with pytest.raises(PipelineError, match="row 40, col 48"):
        list(ChipPipeline(_config(murchison_nodata), bad).iter_epoch(0))
    filled = _collect(ChipPipeline(_config(murchison_nodata, nodata="fill"), bad).iter_epoch(0))
    j = int(np.flatnonzero(filled["index"] == 0)[0])
    x = filled["x"][j]
    assert x.shape[0] == 5 and np.isfinite(x).all()
    assert (x[4, :, 2:] == 0).all() and (x[4, :, :2] == 1).all() and (x[2, :, 2:] == 0).all()


def test_augmentation_is_deterministic_and_dihedral(murchison: Path, samples: np.ndarray) -> None:
    aug = _config(murchison, augment=("flip", "rot90"))
    a = _collect(ChipPipeline(aug, samples).iter_epoch(5))
    b = _collect(ChipPipeline(aug, samples).iter_epoch(5))
    plain = _collect(ChipPipeline(_config(murchison), samples).iter_epoch(5))
    assert all(np.array_equal(a[k], b[k]) for k in a) and np.array_equal(a["index"], plain["index"])
    changed = 0
    for j in range(len(a["index"])):
        x0, y0 = plain["x"][j], plain["y"][j]
        variants = [
            (np.rot90(f(x0), r, (1, 2)), np.rot90(f(y0[None]), r, (1, 2))[0])
            for r in range(4)
            for f in (lambda v: v, lambda v: v[:, ::-1])
        ]
        assert any(np.array_equal(a["x"][j], vx) and np.array_equal(a["y"][j], vy) for vx, vy in variants)
        changed += not np.array_equal(a["x"][j], x0)
    assert changed > len(samples) // 2


def test_ray_backend_equals_local(murchison: Path, samples: np.ndarray, ray_session: Any) -> None:
    local = _config(murchison, augment=("flip", "rot90"), nodata="fill")
    for rank, ray_task in ((0, "group"), (1, "unit")):
        want = list(ChipPipeline(local, samples).iter_epoch(2, rank, 2))
        ray_cfg = replace(local, backend="ray", memory_budget_mb=1.0, ray_task=ray_task)
        got = list(ChipPipeline(ray_cfg, samples).iter_epoch(2, rank, 2))
        assert len(want) == len(got)
        for a, b in zip(want, got, strict=True):
            assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
            assert all(v.numpy().flags.writeable for v in b.values())


def test_waveform_windows_around_picks(rjob_archive: Path, ray_session: Any) -> None:
    cfg = PipelineConfig(rjob_archive, chip=200, batch_size=4, mix_units=2, backend="local", normalise=False)
    pipe = ChipPipeline(cfg, np.zeros((0, 2), np.int64))
    ds = xr.open_zarr(str(rjob_archive), consolidated=False)
    ps, st = ds["pick_sample"].values, ds["pick_station"].values
    assert ps.tolist() == [470, 700]
    windows = pick_windows(pipe.units, st, ps, 200, np.random.default_rng(0), jitter=10)  # type: ignore[arg-type]
    noise = noise_windows(pipe.units, 6, 200, np.random.default_rng(1), pick_station=st, pick_sample=ps, guard=50)  # type: ignore[arg-type]
    samples = np.concatenate([windows, noise])
    out = _collect(ChipPipeline(cfg, samples).iter_epoch(0))
    data = ds["data"].values
    for j, i in enumerate(out["index"]):
        s, t = samples[i]
        np.testing.assert_array_equal(out["x"][j], data[s, :, t : t + 200])
        if i < 2:
            assert t <= ps[i] < t + 200
    aug = replace(cfg, augment=("shift", "noise", "dropout", "gain"), shift_max=20, normalise=True)
    a = list(ChipPipeline(aug, samples).iter_epoch(1))
    b = list(ChipPipeline(replace(aug, backend="ray"), samples).iter_epoch(1))
    assert all(np.array_equal(x[k].numpy(), y[k].numpy()) for x, y in zip(a, b, strict=True) for k in x)


def test_bad_inputs_fail_with_one_line(murchison: Path, samples: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="chip=40: larger than a read unit"):
        ChipPipeline(_config(murchison, chip=40), samples)
    ChipPipeline(_config(murchison, chip=40, unit_chunks=2), np.zeros((0, 2), np.int64))
    with pytest.raises(PipelineError, match="no layer 'gold'"):
        ChipPipeline(_config(murchison, layers=("greenstone", "gold")), samples)
    with pytest.raises(PipelineError, match=r"samples\[1\]"):
        ChipPipeline(_config(murchison), np.array([[0, 0], [20, 20]]))
    with pytest.raises(PipelineError, match="augment"):
        ChipPipeline(_config(murchison, augment=("gain",)), samples)
    with pytest.raises(PipelineError, match="epoch 3"):
        list(ChipPipeline(_config(murchison), samples).iter_epoch(0, cursor=Cursor(3, 1, 0)))
    broken = tmp_path / "broken.zarr"
    shutil.copytree(murchison, broken)
    zarr.open_group(str(broken), mode="r+").attrs["geodl_complete"] = False
    with pytest.raises(ArchiveError, match="incomplete"):
        ChipPipeline(_config(broken), samples)
    grid = grid_chips(ChipPipeline(_config(murchison), samples).units, K)  # type: ignore[arg-type]
    assert len(grid) > 0
