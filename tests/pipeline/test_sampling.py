"""Pure sampling and planning: no Ray, no torch, no archive."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.sampling import (
    Cursor,
    SamplingError,
    UnitGrid,
    WaveUnits,
    balanced_chips,
    block_folds,
    cursor_plan,
    grid_chips,
    noise_windows,
    pick_windows,
    plan_epoch,
    random_chips,
    remaining_plan,
    to_pixels,
    valid_fraction,
    xy_to_rowcol,
)

UNITS = UnitGrid(200, 170, (32, 32))  # 7 x 6 units, ragged last row/col (8 and 10 px)


def _one_each(plans: list, n: int) -> None:
    order = np.concatenate([p.order for p in plans])
    assert np.array_equal(np.sort(order), np.arange(n))


def test_planner_imports_no_engine() -> None:
    import subprocess

    code = "import geodl_hpc.sampling, geodl_hpc.pipeline, sys; print('ray' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unit_grid_geometry() -> None:
    assert UNITS.n_units_yx == (7, 6) and UNITS.n_units == 42
    assert UNITS.window(41) == (192, 200, 160, 170)
    pos = np.array([[0, 0], [31, 0], [30, 10], [192, 160]])
    assert UNITS.unit_of(pos).tolist() == [0, 0, 0, 41]
    assert UNITS.inside_unit(pos, 2).tolist() == [True, False, True, True]
    assert UNITS.inside_unit(pos, 16).tolist() == [True, False, False, False]


def test_random_chips_stay_in_units_and_valid_data() -> None:
    rng = np.random.default_rng(0)
    pos = random_chips(UNITS, 16, 500, rng)
    assert pos.shape == (500, 2) and UNITS.inside_unit(pos, 16).all()
    valid = np.ones((200, 170), bool)
    valid[:, :80] = False
    pos = random_chips(UNITS, 16, 200, rng, valid=valid, min_valid=1.0)
    assert (pos[:, 1] >= 80).all() and (valid_fraction(valid, pos, 16) == 1.0).all()
    half = random_chips(UNITS, 16, 200, rng, valid=valid, min_valid=0.5)
    assert (valid_fraction(valid, half, 16) >= 0.5).all()
    with pytest.raises(SamplingError, match="chip=40"):
        random_chips(UNITS, 40, 1, rng)
    with pytest.raises(SamplingError, match="min_valid"):
        random_chips(UNITS, 16, 10, rng, valid=np.zeros((200, 170), bool))


def test_grid_chips_stride_overlap_cover() -> None:
    pos = grid_chips(UNITS, 16)
    assert UNITS.inside_unit(pos, 16).all()
    # Full units hold 2 x 2 chips; the 8-px bottom row of units holds none; the 10-px column none.
    assert len(pos) == 6 * 5 * 4
    over = grid_chips(UNITS, 16, overlap=8)
    assert len(over) == 6 * 5 * 9
    covered = np.zeros((200, 170), bool)
    for r, c in grid_chips(UnitGrid(64, 64, (32, 32)), 12, stride=12):
        covered[r : r + 12, c : c + 12] = True
    assert covered[:64, :64].all()
    with pytest.raises(SamplingError, match="stride"):
        grid_chips(UNITS, 16, overlap=16)


def test_balanced_chips_positives_negatives_and_pu() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([[50, 50], [100, 120], [20, 150]])
    pos, y = balanced_chips(UNITS, 16, labels, 30, 40, rng, buffer=8)
    assert y.tolist() == [1] * 30 + [0] * 40 and UNITS.inside_unit(pos, 16).all()
    for r, c in pos[:30]:
        assert any(r <= lr < r + 16 and c <= lc < c + 16 for lr, lc in labels)
    for r, c in pos[30:]:
        assert all(not (r - 8 <= lr < r + 24 and c - 8 <= lc < c + 24) for lr, lc in labels)
    pu, y_pu = balanced_chips(UNITS, 16, labels, 0, 40, rng, likely_negative=True, pu_distance=30)
    for r, c in pu:
        assert all(not (r - 30 <= lr < r + 46 and c - 30 <= lc < c + 46) for lr, lc in labels)
    assert (y_pu == 0).all()


def test_crs_units_helpers() -> None:
    grid = GridSpec("", None, (500.0, 0.0, 1000.0, 0.0, -500.0, 9000.0), 10, 8)
    assert to_pixels(2000.0, grid, "crs") == 4 and to_pixels(7, None) == 7
    rc = xy_to_rowcol(grid, np.array([1250.0, 99999.0]), np.array([8750.0, 8750.0]))
    assert rc[0].tolist() == [0, 0] and rc[1, 0] == -1
    with pytest.raises(SamplingError, match="needs the grid"):
        to_pixels(1.0, None, "crs")


def test_block_folds_no_chip_crosses_a_fold() -> None:
    folds = block_folds((200, 170), 4, 3, 3, seed=7, align=UNITS.unit_shape)
    assert (folds.row_edges % 32 == 0)[:-1].all() and sorted(np.bincount(folds.fold.ravel())) == [4, 4, 4]
    pos = grid_chips(UNITS, 16, overlap=4)
    f = folds.fold_of(pos, 16)
    for (r, c), k in zip(pos, f, strict=True):
        by = np.searchsorted(folds.row_edges, [r, r + 15], side="right") - 1
        bx = np.searchsorted(folds.col_edges, [c, c + 15], side="right") - 1
        assert (k == -1) == (by[0] != by[1] or bx[0] != bx[1])
    train, test = folds.split(pos, 16, 0)
    assert not set(train) & set(test) and (f[test] == 0).all()
    assert np.array_equal(block_folds((200, 170), 4, 3, 3, seed=7).fold, block_folds((200, 170), 4, 3, 3, 7).fold)


def test_plan_exact_once_groups_and_determinism() -> None:
    pos = random_chips(UNITS, 16, 700, np.random.default_rng(2))
    uid = UNITS.unit_of(pos)
    (plan,) = plan_epoch(uid, seed=3, epoch=0, mix_units=3)
    _one_each([plan], 700)
    seen_units = [u for g in plan.groups for u in g.units]
    assert len(seen_units) == len(set(seen_units)) == len(np.unique(uid))  # each unit decoded in one group
    for g in plan.groups:
        assert len(g.units) <= 3 and set(uid[g.samples]) == set(g.units)
    again = plan_epoch(uid, seed=3, epoch=0, mix_units=3)[0]
    assert np.array_equal(plan.order, again.order)
    assert not np.array_equal(plan.order, plan_epoch(uid, seed=3, epoch=1, mix_units=3)[0].order)
    assert not np.array_equal(plan.order, plan_epoch(uid, seed=4, epoch=0, mix_units=3)[0].order)


@pytest.mark.parametrize("n_ranks", [2, 3, 5])
def test_plan_equal_shards(n_ranks: int) -> None:
    pos = random_chips(UNITS, 16, 701, np.random.default_rng(5))
    uid = UNITS.unit_of(pos)
    plans = plan_epoch(uid, seed=0, epoch=2, mix_units=2, n_ranks=n_ranks)
    assert len({len(p) for p in plans}) == 1
    _one_each([type(p)(p.rank, p.groups, p.n_real) for p in plan_epoch(uid, 0, 2, n_ranks=n_ranks, pad=False)], 701)
    for p in plans:  # padding comes from the rank's own first samples
        assert np.array_equal(p.order[p.n_real :], p.order[: len(p) - p.n_real])
    rank_units = [set(uid[p.order[: p.n_real]].tolist()) for p in plans]  # each unit is read by one rank
    assert sum(len(s) for s in rank_units) == len(set().union(*rank_units)) == len(np.unique(uid))


def test_more_ranks_than_units_still_equal() -> None:
    uid = np.array([0, 0, 0, 1, 1])
    plans = plan_epoch(uid, seed=0, epoch=0, n_ranks=3)
    assert [len(p) for p in plans] == [3, 3, 3]


def test_cursor_round_trip() -> None:
    cur = Cursor(3, 4, 128, ((2, 64),))
    assert Cursor.from_dict(json.loads(json.dumps(cur.to_dict()))) == cur
    with pytest.raises(SamplingError, match="cursor"):
        Cursor.from_dict({"position": 1})


@pytest.mark.parametrize(("old", "new"), [(1, 1), (2, 2), (2, 3), (3, 1), (1, 4)])
def test_resume_gives_exactly_the_remaining_samples(old: int, new: int) -> None:
    pos = random_chips(UNITS, 16, 600, np.random.default_rng(9))
    uid = UNITS.unit_of(pos)
    full = plan_epoch(uid, seed=1, epoch=4, mix_units=2, n_ranks=old)
    position = 77
    consumed = np.concatenate([p.order[:position] for p in full])
    rest, cur = remaining_plan(uid, 1, Cursor(4, old, position), new, mix_units=2)
    assert len({len(p) for p in rest}) == 1  # equal shards after resuming too
    remaining = np.concatenate([p.order for p in rest])
    real = np.concatenate([p.order[: p.n_real] for p in rest])
    assert len(real) == len(np.unique(real))
    assert np.array_equal(np.union1d(consumed, remaining), np.arange(600))
    if old == new:
        assert cur.position == position
        for f, r in zip(full, rest, strict=True):  # the same plan continues: identical order
            assert np.array_equal(f.order[position:], r.order)
    else:
        assert not set(real.tolist()) & set(np.unique(consumed).tolist())
        assert np.array_equal(np.union1d(consumed, real), np.arange(600))
        # A second resume continues from the recorded segment.
        rest2, cur2 = remaining_plan(uid, 1, cur.advanced(20), 2, mix_units=2)
        used2 = np.concatenate([p.order[:20] for p in cursor_plan(uid, 1, cur, mix_units=2)])
        left = np.concatenate([p.order[: p.n_real] for p in rest2])
        assert np.array_equal(np.sort(np.concatenate([np.unique(consumed), np.unique(used2), left])), np.arange(600))
        assert len(cur2.history) == 2


def test_wave_units_and_windows() -> None:
    units = WaveUnits(2, 3000, 512)
    assert units.units_per_station == 6 and units.window(7) == (1, 512, 1024)
    rng = np.random.default_rng(0)
    st, ps = np.array([0, 0, 1, 1]), np.array([470, 700, 100, 2999])
    win = pick_windows(units, st, ps, 200, rng, jitter=20)
    assert len(win) == 4  # the pick at 2999 lies in the 440-sample tail unit, which still holds a window
    assert units.inside_unit(win, 200).all()
    for (_s, t), p in zip(win, ps, strict=True):
        assert t <= p < t + 200
    noise = noise_windows(units, 50, 200, rng, pick_station=st, pick_sample=ps, guard=30)
    assert units.inside_unit(noise, 200).all()
    for s, t in noise:
        assert not any(ss == s and t - 30 <= pp < t + 230 for ss, pp in zip(st, ps, strict=True))
    with pytest.raises(SamplingError, match="jitter"):
        pick_windows(units, st, ps, 200, rng, jitter=100)
