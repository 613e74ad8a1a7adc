"""SequenceBatches: the training loop's ``BatchSource`` over in-memory feature sequences of (window, cell) pairs.

Sample ``s`` is the pair ``(windows[s // n_cells], s % n_cells)``; its input is the features of the last
``seq_len`` windows up to and including the target window (each row already uses only earlier windows; rows
before window 0 are zeros) and its target the event count of that cell in that window. Epochs are planned with
:func:`geodl_hpc.sampling.plan_epoch` (equal rank shards, shuffled per ``(seed, epoch)``) and resume exactly
from a :class:`~geodl_hpc.sampling.Cursor` via :func:`~geodl_hpc.sampling.remaining_plan`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.sampling import Cursor, RankPlan, remaining_plan

if TYPE_CHECKING:
    import torch


def sequences(features: np.ndarray, windows: np.ndarray, cells: np.ndarray, seq_len: int) -> np.ndarray:
    """Inputs (n, seq_len, n_features) float32: ``features[w - seq_len + 1 .. w, c]`` per pair, zeros before 0."""
    offsets = np.arange(seq_len - 1, -1, -1)
    rows = np.asarray(windows)[:, None] - offsets[None, :]  # (n, L)
    valid = rows >= 0
    out = features[np.clip(rows, 0, None), np.asarray(cells)[:, None]]
    out[~valid] = 0.0
    return out.astype(np.float32, copy=False)


class SequenceBatches:
    """Shuffled, rank-sharded, resumable batches ``{"x": (B, L, F), "y": (B, 1), "index": (B,)}``.

    ``features`` (n_windows, n_cells, n_features) (normalised by the caller), ``targets`` (n_windows, n_cells)
    event counts, ``windows`` the target windows to train on. Samples are grouped into fixed random units of
    ``unit_size`` (cheap plans) served ``mix_units`` at a time as one shuffled group.
    """

    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        windows: np.ndarray,
        *,
        seq_len: int = 12,
        batch_size: int = 256,
        seed: int = 0,
        unit_size: int = 16,
        mix_units: int = 64,
    ) -> None:
        features = np.asarray(features, dtype=np.float32)
        targets = np.asarray(targets)
        if features.ndim != 3 or targets.shape != features.shape[:2]:
            raise ConfigError(
                f"SequenceBatches: features {features.shape} must be (W, C, F) and targets (W, C), got {targets.shape}"
            )
        windows = np.asarray(windows, dtype=np.int64)
        if windows.size == 0 or windows.min() < 0 or windows.max() >= features.shape[0]:
            raise ConfigError(f"SequenceBatches: windows must be non-empty indices below {features.shape[0]}")
        if seq_len < 1 or batch_size < 1 or unit_size < 1 or mix_units < 1:
            raise ConfigError("SequenceBatches: seq_len, batch_size, unit_size and mix_units must be at least 1")
        self.features, self.targets, self.windows = features, targets, windows
        self.seq_len, self.seed, self._batch_size, self.mix_units = seq_len, seed, batch_size, mix_units
        self.n_cells = features.shape[1]
        n = len(windows) * self.n_cells
        perm = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7919]).permutation(n)
        self.unit_ids = np.empty(n, dtype=np.int64)
        self.unit_ids[perm] = np.arange(n) // unit_size
        self.cursor: Cursor | None = None

    def __len__(self) -> int:
        return len(self.unit_ids)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def plan(self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None) -> RankPlan:
        """This rank's plan for the rest of the epoch (from ``cursor`` if given); sets ``self.cursor``."""
        if not 0 <= rank < n_ranks:
            raise ConfigError(f"rank={rank}: must be in [0, n_ranks={n_ranks})")
        start = cursor if cursor is not None else Cursor(epoch, n_ranks)
        if start.epoch != epoch:
            raise ConfigError(f"cursor: saved for epoch {start.epoch}, asked for epoch {epoch}; pass that epoch")
        plans, base = remaining_plan(self.unit_ids, self.seed, start, n_ranks, mix_units=self.mix_units)
        self.cursor = base
        return plans[rank]

    def arrays(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Inputs, targets and sample ids of ``samples``."""
        w = self.windows[samples // self.n_cells]
        c = samples % self.n_cells
        return {
            "x": sequences(self.features, w, c, self.seq_len),
            "y": self.targets[w, c].astype(np.float32)[:, None],
            "index": samples.astype(np.int64),
        }

    def iter_numpy(
        self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Numpy batches of ``batch_size`` (the last may be short); ``self.cursor`` follows each batch."""
        plan = self.plan(epoch, rank, n_ranks, cursor)
        base = self.cursor
        if base is None:  # plan() always sets it
            raise ConfigError("SequenceBatches: no cursor after planning")
        order = plan.order
        done = base.position
        for i in range(0, len(order), self._batch_size):
            chunk = order[i : i + self._batch_size]
            done += len(chunk)
            self.cursor = Cursor(base.epoch, base.n_ranks, done, base.history)
            yield self.arrays(chunk)

    def iter_epoch(
        self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Torch batches of :meth:`iter_numpy` (the training loop's ``BatchSource`` contract)."""
        import torch

        for batch in self.iter_numpy(epoch, rank, n_ranks, cursor):
            yield {k: torch.from_numpy(v) for k, v in batch.items()}
