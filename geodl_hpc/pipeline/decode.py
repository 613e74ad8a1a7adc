"""Read tasks: decode a group's units once and cut, normalise and augment all of its samples (numpy only).

The same :func:`decode_and_cut` runs in-process (local backend) and inside Ray Data workers, so both backends
give identical batches. Augmentation draws depend only on ``(seed, epoch, sample index)``, so a sample looks the
same whichever group, rank or resumed plan serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geodl_hpc.pipeline.config import PipelineError
from geodl_hpc.sampling import UnitGrid, WaveUnits

# Opened Zarr arrays, per worker process and archive path (Ray reuses worker processes across tasks).
_OPEN: dict[str, dict[str, Any]] = {}
_OPEN_ASYNC: dict[str, dict[str, Any]] = {}
_PICKS: dict[str, dict[int, tuple[np.ndarray, np.ndarray]] | None] = {}


@dataclass(frozen=True)
class CutSpec:
    """Everything a read task needs besides its group: small and picklable."""

    kind: Literal["raster", "waveforms"]
    path: str
    variables: tuple[str, ...]  # raster layers (waveforms: ("data",))
    label: str | None
    chip: int
    units: UnitGrid | WaveUnits
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalise: bool
    nodata: Literal["skip", "fill"]
    augment: tuple[str, ...]
    seed: int
    shift_max: int = 0
    noise_std: float = 0.05
    dropout_p: float = 0.2
    gain_range: tuple[float, float] = (0.5, 2.0)
    pick_sigma: float = 10.0  # waveform pick targets: Gaussian sigma in samples


@dataclass(frozen=True)
class GroupTask:
    """One group of one epoch: units to decode and samples (indices, positions) in delivery order."""

    epoch: int
    index: int
    units: tuple[int, ...]
    samples: np.ndarray  # (n,) int64 sample indices
    positions: np.ndarray  # (n, 2) int64


def split_units(task: GroupTask, units: UnitGrid | WaveUnits) -> list[tuple[GroupTask, np.ndarray]]:
    """One single-unit task per unit of a group (its samples in group order) and where they sit in the group.

    Decoding units as separate tasks and scattering them back with :func:`assemble` gives exactly the group's
    :func:`decode_and_cut` output: every per-sample step depends only on the sample, never on its neighbours.
    """
    unit_of = units.unit_of(task.positions) if len(task.samples) else np.zeros(0, np.int64)
    out = []
    for u in task.units:
        where = np.flatnonzero(unit_of == u)
        if len(where):
            out.append((GroupTask(task.epoch, task.index, (u,), task.samples[where], task.positions[where]), where))
    return out


def assemble(n: int, parts: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> dict[str, np.ndarray]:
    """A group's batch (writable, owned) from per-unit batches and their positions in the group: one copy."""
    first = parts[0][0]
    out = {k: np.empty((n, *v.shape[1:]), dtype=v.dtype) for k, v in first.items()}
    for part, where in parts:
        for k, v in part.items():
            out[k][where] = v
    return out


def open_arrays(path: str) -> dict[str, Any]:
    """The archive's arrays by name, opened read-only once per process."""
    arrays = _OPEN.get(path)
    if arrays is None:
        import zarr

        group = zarr.open_group(path, mode="r")
        arrays = dict(group.arrays())
        _OPEN[path] = arrays
    return arrays


def _async_arrays(path: str) -> dict[str, Any]:
    """The archive's arrays as zarr ``AsyncArray`` objects, opened once per process."""
    arrays = _OPEN_ASYNC.get(path)
    if arrays is None:
        import zarr.api.asynchronous as zasync
        from zarr.core.sync import sync

        async def _open() -> dict[str, Any]:
            group = await zasync.open_group(path, mode="r")
            return {name: arr async for name, arr in group.arrays()}

        arrays = sync(_open())
        _OPEN_ASYNC[path] = arrays
    return arrays


def read_raster_unit(path: str, names: tuple[str, ...], window: tuple[int, int, int, int]) -> list[np.ndarray]:
    """Each named layer over one unit, one chunk-aligned slice per layer (each chunk in it is decoded once).

    All layers are requested in one zarr async call, so their chunk reads and decompression (zstd releases the
    GIL) overlap in zarr's threads instead of running one after another.
    """
    import asyncio

    from zarr.core.sync import sync

    arrays = _async_arrays(path)
    r0, r1, c0, c1 = window
    sel = (slice(r0, r1), slice(c0, c1))

    async def _read() -> list[Any]:
        return list(await asyncio.gather(*(arrays[name].getitem(sel) for name in names)))

    return [np.asarray(block) for block in sync(_read())]


def read_wave_unit(arrays: dict[str, Any], name: str, window: tuple[int, int, int]) -> np.ndarray:
    """``(channel, time)`` of one station over one unit."""
    station, t0, t1 = window
    return np.asarray(arrays[name][station, :, t0:t1])


def _mix(seed: int, epoch: int, ids: np.ndarray) -> np.ndarray:
    """A 64-bit hash per sample of ``(seed, epoch, id)`` (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z ^= np.uint64((int(seed) * 0xBF58476D1CE4E5B9 + int(epoch) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF)
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            z ^= z >> np.uint64(shift)
            z *= np.uint64(mult)
        z ^= z >> np.uint64(31)
    return z


def normalise_windows(x: np.ndarray) -> np.ndarray:
    """Per window: demean each channel, divide by the largest channel std (1 where all are flat).

    ``x (..., C, T)``; float32 out. Dividing all channels by one scale keeps their amplitude ratios (P is mostly
    vertical, S mostly horizontal). The one rule of picker training and annotation.
    """
    out = np.asarray(x, dtype=np.float32)
    out = out - out.mean(axis=-1, keepdims=True)
    scale = out.std(axis=-1, keepdims=True).max(axis=-2, keepdims=True)
    out /= np.where(scale > 0, scale, np.float32(1.0))
    return out


def pick_targets(out: np.ndarray, picks: list[tuple[int, float]], sigma: float) -> None:
    """Fill ``out (3, T)`` with noise/P/S pick probabilities: a Gaussian (``sigma`` samples) at each pick of
    ``(phase index 1 = P | 2 = S, sample within the window)`` (picks just outside still leave their tails),
    P and S capped at 1 and ``noise = 1 - P - S`` (P + S scaled down where they overlap above 1)."""
    t = np.arange(out.shape[1], dtype=np.float64)
    out[1:] = 0.0
    for phase, at in picks:
        out[phase] = np.maximum(out[phase], np.exp(-0.5 * ((t - at) / sigma) ** 2))
    total = out[1] + out[2]
    over = total > 1.0
    if over.any():
        out[1:, over] /= total[over]
    out[0] = np.clip(1.0 - out[1] - out[2], 0.0, 1.0)


PHASE_INDEX = {"P": 1, "S": 2}


def archive_picks(path: str) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """``{station: (phase index 1|2, sample)}`` of the archive's P- and S-type picks (phase names starting with P
    or S, e.g. Pg, Sn), read once per process; None when the archive has no picks."""
    if path in _PICKS:
        return _PICKS[path]
    arrays = open_arrays(path)
    found: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
    if "pick_sample" in arrays and "pick_phase" in arrays and "pick_station" in arrays:
        station = np.asarray(arrays["pick_station"][:], np.int64)
        sample = np.asarray(arrays["pick_sample"][:], np.int64)
        phase = np.array([PHASE_INDEX.get(str(p).strip()[:1].upper(), 0) for p in arrays["pick_phase"][:]])
        keep = phase > 0
        found = {
            int(s): (phase[keep & (station == s)], sample[keep & (station == s)]) for s in np.unique(station[keep])
        }
    _PICKS[path] = found
    return found


def _window_targets(
    picks: dict[int, tuple[np.ndarray, np.ndarray]], station: int, start: int, shift: int, w: int, sigma: float
) -> np.ndarray:
    """``(3, w)`` targets of the window at ``(station, start)`` whose samples were shifted by ``shift``."""
    out = np.zeros((3, w), np.float32)
    phase, sample = picks.get(station, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    at = sample - start + shift
    near = (at > -4 * sigma) & (at < w + 4 * sigma)
    pick_targets(out, [(int(p), float(a)) for p, a in zip(phase[near], at[near], strict=True)], sigma)
    return out


def decode_and_cut(spec: CutSpec, task: GroupTask) -> dict[str, np.ndarray]:
    """Decode each unit of the group once, cut its samples in plan order, normalise, mask and augment."""
    if spec.kind == "raster":
        return _raster(spec, task)
    return _waveforms(spec, task)


def _raster(spec: CutSpec, task: GroupTask) -> dict[str, np.ndarray]:
    assert isinstance(spec.units, UnitGrid)
    k, n, nl = spec.chip, len(task.samples), len(spec.variables)
    # With nodata="fill" the mask channel is allocated up front (no concatenate copy of the batch afterwards).
    out_x = np.empty((n, nl + (spec.nodata == "fill"), k, k), dtype=np.float32)
    x = out_x[:, :nl]
    y = np.empty((n, k, k), dtype=np.float32) if spec.label else None
    unit_of = spec.units.unit_of(task.positions) if n else np.zeros(0, np.int64)
    names = spec.variables + ((spec.label,) if spec.label else ())
    scale = 1.0 / np.asarray(spec.std, np.float32)
    shift = np.asarray(spec.mean, np.float32) * scale
    # Normalise and screen each decoded layer block while it is still in cache, then cut its chips: one pass over
    # the cut chips (the copy) instead of three more over the whole batch afterwards.
    clean = True
    for u in task.units:
        window = spec.units.window(u)
        r0, _, c0, _ = window
        sel = np.flatnonzero(unit_of == u).tolist()
        rc = [(i, int(task.positions[i, 0]) - r0, int(task.positions[i, 1]) - c0) for i in sel]
        if not rc:
            continue
        blocks = read_raster_unit(spec.path, names, window)
        for li, block in enumerate(blocks):
            if li < nl and spec.normalise:
                if block.dtype != np.float32 or not block.flags.writeable:
                    block = block.astype(np.float32)  # the same float32 arithmetic as on the cut chips
                block *= scale[li]
                block -= shift[li]
            # A float32 sum overflowing on huge finite values only sends us to the exact per-chip check below.
            clean = clean and bool(np.isfinite(block.sum()))
            dst = x[:, li] if li < nl else y
            assert dst is not None
            for i, r, c in rc:
                dst[i] = block[r : r + k, c : c + k]
    if spec.nodata == "skip" and not clean:
        valid = np.asarray(np.isfinite(x).all(axis=1))
        valid_y: np.ndarray = np.isfinite(y) if y is not None else np.ones(0, bool)
        bad = ~valid.reshape(n, -1).all(axis=1)
        if y is not None:
            bad |= ~valid_y.reshape(n, -1).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            r, c = task.positions[i]
            raise PipelineError(
                f"chip at row {r}, col {c} (sample {task.samples[i]}) has nodata; plan samples with valid_mask() "
                "or set nodata='fill'"
            )
    elif spec.nodata == "fill":
        out_x[:, nl] = np.isfinite(x).all(axis=1)
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if y is not None:
            y[~np.isfinite(y)] = 0.0
    x = out_x
    if "flip" in spec.augment or "rot90" in spec.augment:
        keys = _mix(spec.seed, task.epoch, task.samples)
        for i in range(n):
            key = int(keys[i])
            parts = [x[i]] + ([y[i][None]] if y is not None else [])
            for j, arr in enumerate(parts):
                if "flip" in spec.augment:
                    if key & 1:
                        arr = arr[:, ::-1, :]
                    if key & 2:
                        arr = arr[:, :, ::-1]
                if "rot90" in spec.augment:
                    arr = np.rot90(arr, k=(key >> 2) & 3, axes=(1, 2))
                parts[j] = arr
            x[i] = parts[0]
            if y is not None:
                y[i] = parts[1][0]
    out: dict[str, np.ndarray] = {"x": x, "index": task.samples.astype(np.int64)}
    if y is not None:
        out["y"] = y
    return out


def _waveforms(spec: CutSpec, task: GroupTask) -> dict[str, np.ndarray]:
    assert isinstance(spec.units, WaveUnits)
    arrays = open_arrays(spec.path)
    w, n = spec.chip, len(task.samples)
    nc = int(arrays["data"].shape[1])
    x = np.empty((n, nc, w), dtype=np.float32)
    ok = np.empty((n, nc, w), dtype=bool)
    unit_of = spec.units.unit_of(task.positions) if n else np.zeros(0, np.int64)
    for u in task.units:
        window = spec.units.window(u)
        data = read_wave_unit(arrays, "data", window)
        valid = read_wave_unit(arrays, "valid", window)
        for i in np.flatnonzero(unit_of == u).tolist():
            t = int(task.positions[i, 1]) - window[1]
            x[i], ok[i] = data[:, t : t + w], valid[:, t : t + w]
    if spec.nodata == "skip" and not ok.all():
        i = int(np.flatnonzero(~ok.reshape(n, -1).all(axis=1))[0])
        raise PipelineError(
            f"window at station {task.positions[i, 0]}, sample {task.positions[i, 1]} crosses a gap; "
            "plan windows with noise_windows(valid=...) or set nodata='fill'"
        )
    x[~ok] = 0.0
    if spec.normalise:
        x = normalise_windows(x)
    picks = archive_picks(spec.path)
    y = np.empty((n, 3, w), np.float32) if picks is not None else None
    shifts = np.zeros(n, np.int64)
    if any(a in spec.augment for a in ("shift", "noise", "dropout", "gain")):
        keys = _mix(spec.seed, task.epoch, task.samples)
        for i in range(n):
            rng = np.random.default_rng(int(keys[i]))
            if "shift" in spec.augment and spec.shift_max:
                s = int(rng.integers(-spec.shift_max, spec.shift_max + 1))
                x[i], ok[i] = _shift(x[i], s), _shift(ok[i], s)
                shifts[i] = s
            if "gain" in spec.augment:
                lo, hi = np.log(spec.gain_range[0]), np.log(spec.gain_range[1])
                x[i] *= np.float32(np.exp(rng.uniform(lo, hi)))
            if "noise" in spec.augment:
                x[i] += rng.normal(0.0, spec.noise_std, size=x[i].shape).astype(np.float32)
            if "dropout" in spec.augment and rng.random() < spec.dropout_p:
                x[i, int(rng.integers(0, nc))] = 0.0
    if spec.nodata == "fill":
        x = np.concatenate([x, ok.all(axis=1, keepdims=True).astype(np.float32)], axis=1)
    out: dict[str, np.ndarray] = {"x": x, "index": task.samples.astype(np.int64)}
    if picks is not None and y is not None:
        for i in range(n):
            st, t0 = int(task.positions[i, 0]), int(task.positions[i, 1])
            y[i] = _window_targets(picks, st, t0, int(shifts[i]), w, spec.pick_sigma)
        out["y"] = y
    return out


def _shift(a: np.ndarray, s: int) -> np.ndarray:
    """Shift along time by ``s`` samples, zero (False) filled."""
    out = np.zeros_like(a)
    if s > 0:
        out[:, s:] = a[:, :-s]
    elif s < 0:
        out[:, :s] = a[:, -s:]
    else:
        out[:] = a
    return out


def valid_mask(path: Path, layers: tuple[str, ...], *, statistics: dict[str, dict[str, Any]]) -> np.ndarray | None:
    """Per-pixel mask where all ``layers`` are valid, read chunk row by chunk row; None when the stored
    statistics say every layer is complete (no read needed)."""
    if all(float(statistics[name].get("valid_fraction", 0.0)) >= 1.0 for name in layers):
        return None
    arrays = open_arrays(str(path))
    first = arrays[layers[0]]
    h, w = first.shape
    step = first.chunks[0]
    mask = np.ones((h, w), dtype=bool)
    for r0 in range(0, h, step):
        for name in layers:
            mask[r0 : r0 + step] &= np.isfinite(np.asarray(arrays[name][r0 : r0 + step]))
    return mask
