"""Epoch plans (random unit order, bounded mixing groups), equal rank shards and resumable cursors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geodl_hpc.sampling.units import SamplingError


@dataclass(frozen=True)
class Group:
    """Samples served together: the units decoded for them and the sample indices in delivery order."""

    units: tuple[int, ...]
    samples: np.ndarray
    index: int  # position of the group in its rank's full plan (stable under resume)


@dataclass(frozen=True)
class RankPlan:
    """One rank's ordered groups for one epoch (segment); ``n_real`` samples before padding."""

    rank: int
    groups: tuple[Group, ...]
    n_real: int

    @property
    def order(self) -> np.ndarray:
        """All sample indices in delivery order (padding included)."""
        if not self.groups:
            return np.zeros(0, np.int64)
        return np.concatenate([g.samples for g in self.groups])

    def __len__(self) -> int:
        return sum(len(g.samples) for g in self.groups)

    def skip(self, n: int, unit_ids: np.ndarray) -> RankPlan:
        """The plan without its first ``n`` samples (a partly consumed group keeps only its remaining units)."""
        groups: list[Group] = []
        left = n
        for g in self.groups:
            if left >= len(g.samples):
                left -= len(g.samples)
                continue
            if left:
                rest = g.samples[left:]
                alive = set(unit_ids[rest].tolist())
                keep = tuple(u for u in g.units if u in alive)
                groups.append(Group(keep, rest, g.index))
                left = 0
            else:
                groups.append(g)
        return RankPlan(self.rank, tuple(groups), max(self.n_real - n, 0))


@dataclass(frozen=True)
class Cursor:
    """Where an epoch stands: samples consumed per rank in the current segment, and earlier segments of the same
    epoch as ``(n_ranks, position)`` (a segment ends when training resumes with a different rank count)."""

    epoch: int
    n_ranks: int
    position: int = 0
    history: tuple[tuple[int, int], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for a checkpoint."""
        return {
            "epoch": self.epoch,
            "n_ranks": self.n_ranks,
            "position": self.position,
            "history": [list(h) for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cursor:
        """Inverse of :meth:`to_dict`."""
        try:
            history = tuple((int(a), int(b)) for a, b in data.get("history", []))
            return cls(int(data["epoch"]), int(data["n_ranks"]), int(data.get("position", 0)), history)
        except (KeyError, TypeError, ValueError):
            raise SamplingError(f"cursor: {data!r} is not a saved cursor (needs epoch, n_ranks, position)") from None

    def advanced(self, n: int) -> Cursor:
        """The cursor after ``n`` more samples per rank."""
        return Cursor(self.epoch, self.n_ranks, self.position + n, self.history)


def _group_by_units(seq: np.ndarray, unit_ids: np.ndarray, mix_units: int, first_index: int) -> list[Group]:
    """Cut a sequence into groups of at most ``mix_units`` distinct units, keeping its order."""
    groups: list[Group] = []
    start, units_seen = 0, list[int]()
    for i, s in enumerate(seq.tolist()):
        u = int(unit_ids[s])
        if u not in units_seen:
            if len(units_seen) == mix_units:
                groups.append(Group(tuple(units_seen), seq[start:i], first_index + len(groups)))
                start, units_seen = i, []
            units_seen.append(u)
    if len(seq) > start:
        groups.append(Group(tuple(units_seen), seq[start:], first_index + len(groups)))
    return groups


def plan_epoch(
    unit_ids: np.ndarray,
    seed: int,
    epoch: int,
    *,
    mix_units: int = 1,
    n_ranks: int = 1,
    sample_ids: np.ndarray | None = None,
    pad: bool = True,
    salt: int = 0,
) -> list[RankPlan]:
    """Plan one epoch over samples ``sample_ids`` (default all) whose read unit is ``unit_ids[sample]``.

    Units are put in a random order per ``(seed, epoch)`` and dealt greedily to the rank with the fewest samples
    so far; each rank serves its units ``mix_units`` at a time as one group whose samples are shuffled together.
    With ``pad`` every rank is padded with its own first samples to the longest rank's count, so all ranks see
    equal counts (uneven shards deadlock allreduce); without padding each sample appears exactly once.
    """
    if n_ranks < 1 or mix_units < 1:
        raise SamplingError(f"n_ranks={n_ranks}, mix_units={mix_units}: both must be at least 1")
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    ids = np.arange(len(unit_ids), dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, np.int64)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(salt)])
    uniq, inverse = np.unique(unit_ids[ids], return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq))
    by_unit = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    load = np.zeros(n_ranks, dtype=np.int64)
    rank_units: list[list[int]] = [[] for _ in range(n_ranks)]
    for k in rng.permutation(len(uniq)).tolist():
        r = int(np.argmin(load))
        rank_units[r].append(k)
        load[r] += counts[k]
    plans: list[RankPlan] = []
    for r in range(n_ranks):
        groups: list[Group] = []
        for g0 in range(0, len(rank_units[r]), mix_units):
            ks = rank_units[r][g0 : g0 + mix_units]
            members = np.concatenate([ids[by_unit[bounds[k] : bounds[k + 1]]] for k in ks])
            groups.append(Group(tuple(int(uniq[k]) for k in ks), rng.permutation(members), len(groups)))
        plans.append(RankPlan(r, tuple(groups), int(load[r])))
    if pad and n_ranks > 1:
        target = int(load.max())
        donor = next((p.order for p in plans if len(p)), np.zeros(0, np.int64))
        for r, p in enumerate(plans):
            missing = target - p.n_real
            if missing <= 0:
                continue
            source = p.order if p.n_real else donor  # a rank with no units borrows another rank's samples
            extra = source[np.arange(missing) % len(source)]
            padding = _group_by_units(extra, unit_ids, mix_units, len(p.groups))
            plans[r] = RankPlan(r, p.groups + tuple(padding), p.n_real)
    return plans


def cursor_plan(unit_ids: np.ndarray, seed: int, cursor: Cursor, *, mix_units: int = 1) -> list[RankPlan]:
    """The full plan of the cursor's current segment (earlier segments replayed to find what is left)."""
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    remaining = np.arange(len(unit_ids), dtype=np.int64)
    for i, (n_ranks, position) in enumerate(cursor.history):
        plans = plan_epoch(
            unit_ids, seed, cursor.epoch, mix_units=mix_units, n_ranks=n_ranks, sample_ids=remaining, salt=i
        )
        consumed = np.concatenate([p.order[:position] for p in plans])
        remaining = np.setdiff1d(remaining, consumed)
    return plan_epoch(
        unit_ids,
        seed,
        cursor.epoch,
        mix_units=mix_units,
        n_ranks=cursor.n_ranks,
        sample_ids=remaining,
        salt=len(cursor.history),
    )


def remaining_plan(
    unit_ids: np.ndarray, seed: int, cursor: Cursor, n_ranks: int, *, mix_units: int = 1
) -> tuple[list[RankPlan], Cursor]:
    """What is left of the cursor's epoch, planned for ``n_ranks``, and the cursor to count from.

    With the same rank count the original plan continues unchanged (identical batches to an uninterrupted run);
    with a different count the unconsumed samples are re-planned, and the returned cursor records the segment.
    """
    if n_ranks == cursor.n_ranks:
        plans = cursor_plan(unit_ids, seed, cursor, mix_units=mix_units)
        return [p.skip(cursor.position, np.asarray(unit_ids)) for p in plans], cursor
    new = Cursor(cursor.epoch, n_ranks, 0, (*cursor.history, (cursor.n_ranks, cursor.position)))
    return cursor_plan(unit_ids, seed, new, mix_units=mix_units), new


def planned_ids(plans: Sequence[RankPlan]) -> np.ndarray:
    """Distinct sample indices in a set of rank plans (for checks)."""
    return np.unique(np.concatenate([p.order for p in plans])) if plans else np.zeros(0, np.int64)
