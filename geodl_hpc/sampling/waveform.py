"""Waveform windows: around labelled picks and pick-free random noise windows, each inside one read unit; and the
mix of both a phase picker trains on (:func:`training_windows`)."""

from __future__ import annotations

import numpy as np

from geodl_hpc.sampling.units import SamplingError, WaveUnits


def pick_windows(
    units: WaveUnits,
    pick_station: np.ndarray,
    pick_sample: np.ndarray,
    window: int,
    rng: np.random.Generator,
    *,
    jitter: int = 0,
) -> np.ndarray:
    """One window per pick, the pick near its centre (``+- jitter`` samples), clamped into the pick's unit.

    Clamping keeps windows inside one unit (so each chunk decodes once); the pick always stays inside its window.
    Picks in a unit shorter than ``window`` (the record's tail) are dropped.
    """
    if window > units.unit_len:
        raise SamplingError(f"window={window}: longer than a read unit ({units.unit_len}); raise unit_chunks")
    if not 0 <= jitter < window // 2:
        raise SamplingError(f"jitter={jitter}: must be in [0, window/2); lower it")
    st = np.asarray(pick_station, dtype=np.int64)
    ps = np.asarray(pick_sample, dtype=np.int64)
    start = ps - window // 2 + (rng.integers(-jitter, jitter + 1, len(ps)) if jitter else 0)
    u0 = (ps // units.unit_len) * units.unit_len
    u1 = np.minimum(u0 + units.unit_len, units.n_time)
    start = np.clip(start, u0, u1 - window)
    keep = (u1 - u0 >= window) & (ps >= 0) & (ps < units.n_time)
    return np.stack([st[keep], start[keep]], axis=1)


def noise_windows(
    units: WaveUnits,
    n: int,
    window: int,
    rng: np.random.Generator,
    *,
    pick_station: np.ndarray | None = None,
    pick_sample: np.ndarray | None = None,
    guard: int = 0,
    valid: np.ndarray | None = None,
    stations: np.ndarray | None = None,
    max_tries: int = 40,
) -> np.ndarray:
    """``n`` random windows (inside one unit each) with no pick within ``guard`` samples and, given ``valid``
    (``(station, time)`` bool, e.g. all channels valid), no gap; given ``stations`` (bool per station), only on
    those stations (e.g. one data split)."""
    if window > units.unit_len:
        raise SamplingError(f"window={window}: longer than a read unit ({units.unit_len}); raise unit_chunks")
    picks = np.zeros((units.n_stations, units.n_time), dtype=bool)
    if pick_station is not None and pick_sample is not None:
        picks[np.asarray(pick_station, np.int64), np.asarray(pick_sample, np.int64)] = True
    pick_cum = np.concatenate([np.zeros((units.n_stations, 1), np.int64), np.cumsum(picks, axis=1)], axis=1)
    valid_cum = None
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        valid_cum = np.concatenate([np.zeros((units.n_stations, 1), np.int64), np.cumsum(v, axis=1)], axis=1)
    slack = np.array([max(units.window(u)[2] - units.window(u)[1] - window + 1, 0) for u in range(units.n_units)])
    if stations is not None:
        slack = slack * np.repeat(np.asarray(stations, dtype=bool), units.units_per_station)
    if slack.sum() == 0:
        raise SamplingError(f"window={window}: no unit is long enough; shorten the window")
    out: list[np.ndarray] = []
    have = 0
    for _ in range(max_tries):
        u = rng.choice(len(slack), size=max(2 * (n - have), 16), p=slack / slack.sum())
        st, iu = np.divmod(u, units.units_per_station)
        t = iu * units.unit_len + rng.integers(0, slack[u])
        lo, hi = np.clip(t - guard, 0, units.n_time), np.clip(t + window + guard, 0, units.n_time)
        keep = pick_cum[st, hi] - pick_cum[st, lo] == 0
        if valid_cum is not None:
            keep &= valid_cum[st, t + window] - valid_cum[st, t] == window
        out.append(np.stack([st[keep], t[keep]], axis=1))
        have += int(keep.sum())
        if have >= n:
            break
    pos = np.concatenate(out)[:n] if out else np.zeros((0, 2), np.int64)
    if len(pos) < n:
        raise SamplingError(f"noise_windows: found only {len(pos)} of {n} pick-free windows; lower n or guard")
    return pos.astype(np.int64)


def training_windows(
    units: WaveUnits,
    pick_station: np.ndarray,
    pick_sample: np.ndarray,
    window: int,
    n: int,
    rng: np.random.Generator,
    *,
    noise_fraction: float = 0.3,
    jitter: int = 0,
    guard: int = 0,
    valid: np.ndarray | None = None,
    stations: np.ndarray | None = None,
) -> np.ndarray:
    """About ``n`` distinct windows for a picker: ``(1 - noise_fraction) n`` around picks (a random subset when
    there are more picks, all of them otherwise) and ``noise_fraction n`` pick-free noise windows, restricted to
    ``stations`` (bool per station) when given. Pick windows come first, noise windows after."""
    if not 0.0 <= noise_fraction < 1.0:
        raise SamplingError(f"noise_fraction={noise_fraction}: must be in [0, 1)")
    st = np.asarray(pick_station, np.int64)
    ps = np.asarray(pick_sample, np.int64)
    if stations is not None:
        keep = np.asarray(stations, dtype=bool)[st]
        st, ps = st[keep], ps[keep]
    picked = pick_windows(units, st, ps, window, rng, jitter=jitter)
    if valid is not None and len(picked):
        v = np.asarray(valid, dtype=bool)
        ok = np.array([v[s, t : t + window].all() for s, t in picked], dtype=bool)
        picked = picked[ok]
    picked = np.unique(picked, axis=0) if len(picked) else picked.reshape(0, 2)
    n_noise = round(noise_fraction * n)
    if len(picked) > n - n_noise:
        picked = picked[np.sort(rng.choice(len(picked), n - n_noise, replace=False))]
    noise = (
        noise_windows(
            units, n_noise, window, rng, pick_station=pick_station, pick_sample=pick_sample, guard=guard,
            valid=valid, stations=stations,
        )
        if n_noise
        else np.zeros((0, 2), np.int64)
    )  # fmt: skip
    return np.concatenate([picked, noise]).astype(np.int64)
