"""Pure numpy kernels of continuous annotation: window grid, time blocks, stacking and local-maximum picks.

Windows lie on one global grid per trace (``0, stride, 2*stride, ...`` plus a last window flush with the end),
so a block annotated with the windows that touch it (read with their halo) gives the same values as the whole
trace annotated at once. Picks are local maxima within ``distance`` samples, a rule that only looks ``distance``
samples around a candidate: blocks extended by that margin find exactly the whole trace's picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Stacking = Literal["mean", "max"]


def window_starts(n_time: int, window: int, stride: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Starts of the trace's windows that overlap samples ``[lo, hi)`` (all windows by default), ascending.

    The grid is ``k * stride`` while a window fits, plus ``n_time - window`` when the last regular window does
    not reach the end; a trace shorter than ``window`` has one window at 0 (zero-padded when read)."""
    hi = n_time if hi is None else hi
    if n_time <= window:
        return np.zeros(1 if hi > lo else 0, dtype=np.int64)
    last_k = (n_time - window) // stride
    k0 = max(0, (lo - window) // stride + 1)
    k1 = min(last_k, -(-hi // stride) - 1)
    starts = np.arange(k0, k1 + 1, dtype=np.int64) * stride
    tail = n_time - window
    if tail != last_k * stride and tail + window > lo and tail < hi:
        starts = np.append(starts, np.int64(tail))
    return starts


@dataclass(frozen=True)
class TimeBlock:
    """One work item: samples ``[t0, t1)`` of one station (whole output chunks)."""

    index: int
    station: int
    t0: int
    t1: int

    @property
    def samples(self) -> int:
        return self.t1 - self.t0


def time_blocks(n_stations: int, n_time: int, chunk: int, block_chunks: int) -> list[TimeBlock]:
    """Station x time blocks of ``block_chunks`` chunks each, numbered station-major."""
    length = chunk * block_chunks
    out: list[TimeBlock] = []
    for s in range(n_stations):
        for t0 in range(0, n_time, length):
            out.append(TimeBlock(len(out), s, t0, min(t0 + length, n_time)))
    return out


def read_span(n_time: int, window: int, starts: np.ndarray) -> tuple[int, int]:
    """Samples ``[r0, r1)`` to read for windows at ``starts`` (clipped to the trace)."""
    return int(starts[0]), min(int(starts[-1]) + window, n_time)


def cut_windows(x: np.ndarray, r0: int, starts: np.ndarray, window: int) -> np.ndarray:
    """Windows ``(n, C, window)`` from ``x = trace[:, r0:r1]``; a window running past ``r1`` is zero-padded."""
    out = np.zeros((len(starts), x.shape[0], window), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = x[:, s - r0 : s - r0 + window]
        out[i, :, : piece.shape[1]] = piece
    return out


class Stacker:
    """Combines window outputs ``(K, window)`` into a continuous trace over samples ``[lo, hi)``.

    Windows must be added in ascending start order (then the float sums are the same in every block)."""

    def __init__(self, n_classes: int, lo: int, hi: int, method: Stacking) -> None:
        self.lo, self.hi, self.method = lo, hi, method
        fill = 0.0 if method == "mean" else -np.inf
        self.acc = np.full((n_classes, hi - lo), fill, dtype=np.float32)
        self.count = np.zeros(hi - lo, dtype=np.int32)

    def add(self, probs: np.ndarray, starts: np.ndarray) -> None:
        """Add windows ``probs (n, K, window)`` that start at ``starts``."""
        window = probs.shape[2]
        for p, s in zip(probs, starts, strict=True):
            a, b = max(int(s), self.lo), min(int(s) + window, self.hi)
            if b <= a:
                continue
            piece = p[:, a - s : b - s]
            target = self.acc[:, a - self.lo : b - self.lo]
            if self.method == "mean":
                target += piece
            else:
                np.maximum(target, piece, out=target)
            self.count[a - self.lo : b - self.lo] += 1

    def result(self) -> np.ndarray:
        """The stacked trace ``(K, hi - lo)`` float32 (NaN where no window covered a sample)."""
        covered = self.count > 0
        out = np.full(self.acc.shape, np.nan, dtype=np.float32)
        if self.method == "mean":
            out[:, covered] = self.acc[:, covered] / self.count[covered].astype(np.float32)
        else:
            out[:, covered] = self.acc[:, covered]
        return out


def local_peaks(p: np.ndarray, threshold: float, distance: int) -> np.ndarray:
    """Indices where ``p >= threshold`` and ``p`` is the largest within ``distance`` samples.

    Ties go to the earliest sample (strictly larger than the ``distance`` samples before it, at least as large
    as those after), so a flat top gives one pick. NaN never picks and never blocks a pick."""
    p = np.asarray(p, dtype=np.float32)
    q = np.where(np.isnan(p), -np.inf, p)
    candidates = np.flatnonzero(q >= threshold)
    if distance < 1 or candidates.size == 0:
        return candidates
    padded = np.concatenate([np.full(distance, -np.inf, np.float32), q, np.full(distance, -np.inf, np.float32)])
    views = np.lib.stride_tricks.sliding_window_view(padded, 2 * distance + 1)[candidates]
    before = views[:, :distance].max(axis=1)
    after = views[:, distance + 1 :].max(axis=1)
    keep = (q[candidates] > before) & (q[candidates] >= after)
    return candidates[keep]
