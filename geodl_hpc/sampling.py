"""Pure sampling and epoch planning (numpy only): where chips/windows are cut and in which order they are served.

Samples are integer positions: ``(row, col)`` of a chip's top-left pixel on a raster grid, or
``(station, start_sample)`` of a waveform window. A **read unit** is a chunk-aligned block of
``unit_chunks x unit_chunks`` Zarr chunks (or ``unit_chunks`` time chunks of one station). Every sampler here
places samples wholly inside one unit: chips never straddle a unit boundary, which is what lets the pipeline
decode every chunk exactly once per epoch and cut all of its chips from that one decode.

An epoch plan (:func:`plan_epoch`) orders units randomly per ``(seed, epoch)``, serves ``mix_units`` consecutive
units as one shuffled **group** (a bounded mixing buffer of that many decoded units), and splits units over ranks
with equal sample counts. A :class:`Cursor` (a checkpointable position) resumes an epoch exactly, also with a
different number of ranks (:func:`remaining_plan`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from geodl_hpc.errors import GeodlError

if TYPE_CHECKING:
    from geodl_hpc.archive.grid import GridSpec


class SamplingError(GeodlError):
    """A sampler or plan cannot be built from the given settings (names the setting and what to change)."""


# --------------------------------------------------------------------------------------------------------------
# Read units
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitGrid:
    """Read units of a raster grid: blocks of ``unit_chunks x unit_chunks`` chunks of ``chunk`` pixels."""

    height: int
    width: int
    chunk: tuple[int, int]
    unit_chunks: int = 1

    def __post_init__(self) -> None:
        if self.unit_chunks < 1 or min(self.chunk) < 1:
            raise SamplingError(f"unit_chunks={self.unit_chunks}, chunk={self.chunk}: both must be positive")

    @property
    def unit_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of a full (non-edge) unit."""
        return (self.chunk[0] * self.unit_chunks, self.chunk[1] * self.unit_chunks)

    @property
    def n_units_yx(self) -> tuple[int, int]:
        """Units along y and x."""
        uy, ux = self.unit_shape
        return (math.ceil(self.height / uy), math.ceil(self.width / ux))

    @property
    def n_units(self) -> int:
        """Number of units."""
        ny, nx = self.n_units_yx
        return ny * nx

    def unit_of(self, positions: np.ndarray) -> np.ndarray:
        """Unit id of each ``(row, col)`` (the unit holding the chip's top-left pixel)."""
        pos = _positions(positions)
        uy, ux = self.unit_shape
        return (pos[:, 0] // uy) * self.n_units_yx[1] + pos[:, 1] // ux

    def window(self, unit: int) -> tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)`` of a unit (clipped at the grid edge)."""
        uy, ux = self.unit_shape
        iy, ix = divmod(int(unit), self.n_units_yx[1])
        return (iy * uy, min((iy + 1) * uy, self.height), ix * ux, min((ix + 1) * ux, self.width))

    def inside_unit(self, positions: np.ndarray, chip: int) -> np.ndarray:
        """True for chips of size ``chip`` that lie wholly inside one unit and the grid."""
        pos = _positions(positions)
        uy, ux = self.unit_shape
        r, c = pos[:, 0], pos[:, 1]
        ok = (r >= 0) & (c >= 0) & (r + chip <= self.height) & (c + chip <= self.width)
        return ok & ((r // uy) == ((r + chip - 1) // uy)) & ((c // ux) == ((c + chip - 1) // ux))


@dataclass(frozen=True)
class WaveUnits:
    """Read units of a waveform archive: ``unit_chunks`` consecutive time chunks of one station."""

    n_stations: int
    n_time: int
    chunk: int
    unit_chunks: int = 1

    @property
    def unit_len(self) -> int:
        """Samples per full unit."""
        return self.chunk * self.unit_chunks

    @property
    def units_per_station(self) -> int:
        """Units along time."""
        return math.ceil(self.n_time / self.unit_len)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return self.n_stations * self.units_per_station

    def unit_of(self, positions: np.ndarray) -> np.ndarray:
        """Unit id of each ``(station, start)``."""
        pos = _positions(positions)
        return pos[:, 0] * self.units_per_station + pos[:, 1] // self.unit_len

    def window(self, unit: int) -> tuple[int, int, int]:
        """``(station, start, stop)`` of a unit."""
        station, iu = divmod(int(unit), self.units_per_station)
        return (station, iu * self.unit_len, min((iu + 1) * self.unit_len, self.n_time))

    def inside_unit(self, positions: np.ndarray, window: int) -> np.ndarray:
        """True for windows of ``window`` samples inside one unit and the record."""
        pos = _positions(positions)
        s, t = pos[:, 0], pos[:, 1]
        ok = (s >= 0) & (s < self.n_stations) & (t >= 0) & (t + window <= self.n_time)
        return ok & ((t // self.unit_len) == ((t + window - 1) // self.unit_len))


def _positions(positions: Any) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.int64)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise SamplingError(f"positions: expected an (n, 2) integer array, got shape {pos.shape}")
    return pos


# --------------------------------------------------------------------------------------------------------------
# Units and validity helpers
# --------------------------------------------------------------------------------------------------------------


def to_pixels(length: float, grid: GridSpec | None = None, units: Literal["px", "crs"] = "px") -> int:
    """A length in pixels (``units="px"``) or CRS units (``"crs"``, needs ``grid``) as whole pixels."""
    if units == "px":
        return round(length)
    if grid is None:
        raise SamplingError(f"units='crs': a length of {length} CRS units needs the grid (GridSpec.from_archive)")
    return round(length / min(grid.resolution))


def xy_to_rowcol(grid: GridSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(row, col)`` pixel indices of CRS points (points off the grid get -1 rows)."""
    a, _, c, _, e, f = grid.transform
    cols = np.floor((np.asarray(x, dtype=np.float64) - c) / a).astype(np.int64)
    rows = np.floor((np.asarray(y, dtype=np.float64) - f) / e).astype(np.int64)
    off = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    rows[off] = -1
    return np.stack([rows, cols], axis=1)


def _integral(mask: np.ndarray) -> np.ndarray:
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=out[1:, 1:])
    return out


def _box_sum(table: np.ndarray, r: np.ndarray, c: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums of the mask over boxes ``[r, r+h) x [c, c+w)`` clipped to the grid."""
    rows, cols = table.shape[0] - 1, table.shape[1] - 1
    r0, r1 = np.clip(r, 0, rows), np.clip(r + h, 0, rows)
    c0, c1 = np.clip(c, 0, cols), np.clip(c + w, 0, cols)
    out: np.ndarray = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return out


def valid_fraction(valid: np.ndarray, positions: np.ndarray, chip: int) -> np.ndarray:
    """Fraction of valid pixels in each chip, from a per-pixel boolean mask the caller loaded once."""
    pos = _positions(positions)
    table = _integral(np.asarray(valid, dtype=bool))
    return _box_sum(table, pos[:, 0], pos[:, 1], chip, chip) / float(chip * chip)


# --------------------------------------------------------------------------------------------------------------
# Raster samplers
# --------------------------------------------------------------------------------------------------------------


def _unit_slack(units: UnitGrid, chip: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit: top-left row and col, and the number of chip positions that fit inside it."""
    ids = np.arange(units.n_units)
    wins = np.array([units.window(int(u)) for u in ids], dtype=np.int64).reshape(-1, 4)
    ny = np.maximum(wins[:, 1] - wins[:, 0] - chip + 1, 0)
    nx = np.maximum(wins[:, 3] - wins[:, 2] - chip + 1, 0)
    return wins, ny, nx


def _check_chip(units: UnitGrid, chip: int) -> None:
    if chip < 1 or chip > min(units.unit_shape):
        raise SamplingError(
            f"chip={chip}: must fit in one read unit of {units.unit_shape} pixels; raise unit_chunks or shrink chip"
        )


def random_chips(
    units: UnitGrid,
    chip: int,
    n: int,
    rng: np.random.Generator,
    *,
    valid: np.ndarray | None = None,
    min_valid: float = 1.0,
    max_tries: int = 20,
) -> np.ndarray:
    """``n`` uniformly random chip positions (never straddling a unit) whose valid fraction is ``>= min_valid``."""
    _check_chip(units, chip)
    wins, ny, nx = _unit_slack(units, chip)
    weight = (ny * nx).astype(np.float64)
    if weight.sum() == 0:
        raise SamplingError(f"chip={chip}: no unit of {units.unit_shape} pixels can hold a chip; shrink chip")
    table = _integral(np.asarray(valid, dtype=bool)) if valid is not None else None
    out: list[np.ndarray] = []
    have = 0
    for _ in range(max_tries):
        want = max(2 * (n - have), 16)
        u = rng.choice(len(weight), size=want, p=weight / weight.sum())
        r = wins[u, 0] + rng.integers(0, ny[u])
        c = wins[u, 2] + rng.integers(0, nx[u])
        if table is not None:
            keep = _box_sum(table, r, c, chip, chip) >= min_valid * chip * chip - 1e-9
            r, c = r[keep], c[keep]
        out.append(np.stack([r, c], axis=1))
        have += len(r)
        if have >= n:
            break
    pos = np.concatenate(out)[:n] if out else np.zeros((0, 2), np.int64)
    if len(pos) < n:
        raise SamplingError(
            f"random_chips: found only {len(pos)} of {n} chips with valid fraction >= {min_valid}; "
            "lower min_valid or ask for fewer chips"
        )
    return pos


def grid_chips(
    units: UnitGrid,
    chip: int,
    *,
    stride: int | None = None,
    overlap: int = 0,
    cover_edges: bool = True,
    valid: np.ndarray | None = None,
    min_valid: float = 1.0,
) -> np.ndarray:
    """Chips on a regular grid inside each unit (``stride = chip - overlap`` unless given), row-major per unit.

    With ``cover_edges`` a last chip flush with each unit's far edge is added, so every pixel of a unit that can
    hold a chip is covered; chips never straddle a unit boundary.
    """
    _check_chip(units, chip)
    step = stride if stride is not None else chip - overlap
    if step < 1:
        raise SamplingError(f"stride={step}: must be positive (overlap {overlap} must be smaller than chip {chip})")
    parts = []
    for u in range(units.n_units):
        r0, r1, c0, c1 = units.window(u)
        rows, cols = _steps(r0, r1, chip, step, cover_edges), _steps(c0, c1, chip, step, cover_edges)
        if len(rows) and len(cols):
            rr, cc = np.meshgrid(rows, cols, indexing="ij")
            parts.append(np.stack([rr.ravel(), cc.ravel()], axis=1))
    pos = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
    if valid is not None and len(pos):
        pos = pos[valid_fraction(valid, pos, chip) >= min_valid - 1e-9]
    return pos.astype(np.int64)


def _steps(lo: int, hi: int, chip: int, step: int, cover: bool) -> np.ndarray:
    if hi - lo < chip:
        return np.zeros(0, np.int64)
    starts = np.arange(lo, hi - chip + 1, step, dtype=np.int64)
    if cover and starts[-1] + chip < hi:
        starts = np.append(starts, hi - chip)
    return starts


def balanced_chips(
    units: UnitGrid,
    chip: int,
    labels: np.ndarray,
    n_pos: int,
    n_neg: int,
    rng: np.random.Generator,
    *,
    buffer: int = 0,
    likely_negative: bool = False,
    pu_distance: int | None = None,
    valid: np.ndarray | None = None,
    min_valid: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced chips: ``n_pos`` chips each holding a labelled pixel, ``n_neg`` holding none.

    ``labels`` are ``(row, col)`` of positive pixels. A negative chip has no positive within ``buffer`` pixels
    of it. With ``likely_negative`` (positive-unlabelled learning) a negative must be at least ``pu_distance``
    pixels (default ``4 * chip``) from every positive, so unlabelled ground near known positives, which is the
    most likely to hold undiscovered positives, is not used as a negative. Returns ``(positions, y)`` with
    ``y = 1`` for positives and ``0`` for negatives; positives come first.
    """
    _check_chip(units, chip)
    lab = _positions(labels)
    lab = lab[(lab[:, 0] >= 0) & (lab[:, 0] < units.height) & (lab[:, 1] >= 0) & (lab[:, 1] < units.width)]
    if n_pos > 0 and len(lab) == 0:
        raise SamplingError("balanced_chips: no labelled pixels on the grid; check the label positions or CRS")
    table = _integral(np.asarray(valid, dtype=bool)) if valid is not None else None
    pos_parts: list[np.ndarray] = []
    have = 0
    for _ in range(20 if n_pos else 0):
        pick = lab[rng.integers(0, len(lab), size=max(2 * (n_pos - have), 16))]
        r, c = pick[:, 0] - rng.integers(0, chip, len(pick)), pick[:, 1] - rng.integers(0, chip, len(pick))
        # Clamp into the unit that holds the labelled pixel: the pixel stays inside the chip.
        uid = units.unit_of(pick)
        wins = np.array([units.window(int(u)) for u in uid], dtype=np.int64).reshape(-1, 4)
        fits = (wins[:, 1] - wins[:, 0] >= chip) & (wins[:, 3] - wins[:, 2] >= chip)
        r = np.clip(r, wins[:, 0], wins[:, 1] - chip)
        c = np.clip(c, wins[:, 2], wins[:, 3] - chip)
        keep = fits
        if table is not None:
            keep = keep & (_box_sum(table, r, c, chip, chip) >= min_valid * chip * chip - 1e-9)
        pos_parts.append(np.stack([r[keep], c[keep]], axis=1))
        have += int(keep.sum())
        if have >= n_pos:
            break
    positives = np.concatenate(pos_parts)[:n_pos] if pos_parts else np.zeros((0, 2), np.int64)
    if len(positives) < n_pos:
        raise SamplingError(f"balanced_chips: only {len(positives)} of {n_pos} positive chips fit; lower n_pos")
    margin = (pu_distance if pu_distance is not None else 4 * chip) if likely_negative else buffer
    label_mask = np.zeros((units.height, units.width), dtype=bool)
    label_mask[lab[:, 0], lab[:, 1]] = True
    ltable = _integral(label_mask)
    neg_parts: list[np.ndarray] = []
    have = 0
    for _ in range(40 if n_neg else 0):
        cand = random_chips(units, chip, max(2 * (n_neg - have), 16), rng, valid=valid, min_valid=min_valid)
        r, c = cand[:, 0] - margin, cand[:, 1] - margin
        keep = _box_sum(ltable, r, c, chip + 2 * margin, chip + 2 * margin) == 0
        neg_parts.append(cand[keep])
        have += int(keep.sum())
        if have >= n_neg:
            break
    negatives = np.concatenate(neg_parts)[:n_neg] if neg_parts else np.zeros((0, 2), np.int64)
    if len(negatives) < n_neg:
        raise SamplingError(
            f"balanced_chips: only {len(negatives)} of {n_neg} negatives lie {margin} px from every positive; "
            "lower buffer/pu_distance or n_neg"
        )
    y = np.concatenate([np.ones(len(positives), np.int8), np.zeros(len(negatives), np.int8)])
    return np.concatenate([positives, negatives]).astype(np.int64), y


# --------------------------------------------------------------------------------------------------------------
# Spatial block folds
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockFolds:
    """Rectangular blocks of the grid, each assigned to one cross-validation fold."""

    row_edges: np.ndarray
    col_edges: np.ndarray
    fold: np.ndarray  # (n_blocks_y, n_blocks_x) fold index

    def fold_of(self, positions: np.ndarray, chip: int) -> np.ndarray:
        """Fold of each chip, or -1 where the chip crosses a block edge (drop those)."""
        pos = _positions(positions)
        by0 = np.searchsorted(self.row_edges, pos[:, 0], side="right") - 1
        by1 = np.searchsorted(self.row_edges, pos[:, 0] + chip - 1, side="right") - 1
        bx0 = np.searchsorted(self.col_edges, pos[:, 1], side="right") - 1
        bx1 = np.searchsorted(self.col_edges, pos[:, 1] + chip - 1, side="right") - 1
        ny, nx = self.fold.shape
        same = (by0 == by1) & (bx0 == bx1) & (by0 >= 0) & (bx0 >= 0) & (by0 < ny) & (bx0 < nx)
        out = np.full(len(pos), -1, dtype=np.int64)
        out[same] = self.fold[by0[same], bx0[same]]
        return out

    def split(self, positions: np.ndarray, chip: int, test_fold: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of training and test chips for ``test_fold``; chips crossing a block edge are in neither."""
        folds = self.fold_of(positions, chip)
        return np.flatnonzero((folds >= 0) & (folds != test_fold)), np.flatnonzero(folds == test_fold)


def block_folds(
    grid_shape: tuple[int, int],
    n_blocks_y: int,
    n_blocks_x: int,
    n_folds: int,
    seed: int,
    *,
    align: tuple[int, int] | None = None,
) -> BlockFolds:
    """Split the grid into ``n_blocks_y x n_blocks_x`` blocks and assign them to ``n_folds`` folds at random
    (balanced block counts). With ``align`` (e.g. the unit shape) block edges snap to its multiples."""
    if n_folds < 2 or n_blocks_y * n_blocks_x < n_folds:
        raise SamplingError(f"n_folds={n_folds}: need 2 <= n_folds <= number of blocks ({n_blocks_y * n_blocks_x})")
    h, w = grid_shape
    edges = []
    for size, nb, step in ((h, n_blocks_y, align[0] if align else 1), (w, n_blocks_x, align[1] if align else 1)):
        e = np.round(np.linspace(0, size, nb + 1) / step).astype(np.int64) * step
        e[-1] = size
        if np.any(np.diff(e) <= 0):
            raise SamplingError(f"block_folds: {nb} blocks aligned to {step} px do not fit {size} px; use fewer")
        edges.append(e)
    rng = np.random.default_rng([seed, 0xF01D])
    order = rng.permutation(n_blocks_y * n_blocks_x)
    fold = np.empty(n_blocks_y * n_blocks_x, dtype=np.int64)
    fold[order] = np.arange(len(order)) % n_folds
    return BlockFolds(edges[0], edges[1], fold.reshape(n_blocks_y, n_blocks_x))


# --------------------------------------------------------------------------------------------------------------
# Waveform windows
# --------------------------------------------------------------------------------------------------------------


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
    max_tries: int = 40,
) -> np.ndarray:
    """``n`` random windows (inside one unit each) with no pick within ``guard`` samples and, given ``valid``
    (``(station, time)`` bool, e.g. all channels valid), no gap."""
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


# --------------------------------------------------------------------------------------------------------------
# Epoch plans, shards and cursors
# --------------------------------------------------------------------------------------------------------------


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
