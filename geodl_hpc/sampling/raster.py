"""Raster samplers (random, grid, class-balanced chips) and spatial block folds; chips never straddle a unit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodl_hpc.sampling.units import SamplingError, UnitGrid, _box_sum, _integral, _positions, valid_fraction


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
