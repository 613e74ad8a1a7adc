"""Pure geometry: regions own whole chunks and partition the raster; tiles cover each region exactly once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geodl_hpc.errors import ConfigError
from geodl_hpc.inference.geometry import TilePlan, Window, blend_weights_1d, pad_to_window, tile_starts

CASES = [
    # height, width, tile, halo, overlap, chunk, region_chunks
    (1, 1, 8, 2, 0, 4, 1),
    (7, 5, 16, 3, 0, 4, 1),
    (45, 53, 12, 3, 0, 16, 1),
    (45, 53, 12, 3, 5, 16, 2),
    (101, 37, 10, 0, 3, 7, 3),
    (64, 64, 16, 4, 0, 16, 2),
    (33, 97, 9, 1, 8, 10, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stitch", ["crop", "blend"])
def test_regions_partition_raster_and_align_to_chunks(case: tuple[int, ...], stitch: str) -> None:
    h, w, tile, halo, overlap, chunk, rc = case
    plan = TilePlan(h, w, tile, halo, overlap, chunk, rc, stitch)  # type: ignore[arg-type]
    owner = np.zeros((h, w), dtype=np.int64)
    for i in range(plan.n_regions):
        region = plan.region(i)
        owner[region.slices()] += 1
        for edge, n in ((region.r0, h), (region.r1, h), (region.c0, w), (region.c1, w)):
            assert edge % chunk == 0 or edge == n  # whole output chunks only
    assert (owner == 1).all()
    for n_ranks in (1, 2, 3):
        got = sorted(itertools.chain.from_iterable(plan.regions(r, n_ranks) for r in range(n_ranks)))
        assert got == list(range(plan.n_regions))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stitch", ["crop", "blend"])
def test_tiles_cover_each_region(case: tuple[int, ...], stitch: str) -> None:
    h, w, tile, halo, overlap, chunk, rc = case
    plan = TilePlan(h, w, tile, halo, overlap, chunk, rc, stitch)  # type: ignore[arg-type]
    th, tw = plan.tile_shape
    for i in range(plan.n_regions):
        region = plan.region(i)
        count = np.zeros(region.shape, dtype=np.int64)
        weight = np.zeros(region.shape)
        for t in plan.tiles(region):
            assert t.extent.shape == (th, tw) and t.input.shape == plan.input_shape
            assert t.extent.r0 >= 0 and t.extent.r1 <= h and t.extent.c0 >= 0 and t.extent.c1 <= w
            assert t.input == t.extent.grow(halo)
            assert t.write.intersect(t.extent) == t.write and t.write.intersect(region) == t.write
            count[t.write.relative_to(region)] += 1
            weight[t.write.relative_to(region)] += plan.weights(t)[t.write.relative_to(t.extent)]
        if stitch == "crop":
            assert (count == 1).all()  # every pixel written exactly once
        else:
            assert (count >= 1).all() and (weight > 0).all()
        want = plan.input_window(region)
        assert want.r0 <= region.r0 - halo and want.r1 >= region.r1 + halo


def test_tile_starts_snap_last_tile_inside() -> None:
    assert tile_starts(10, 4, 0).tolist() == [0, 4, 6]
    assert tile_starts(10, 4, 2).tolist() == [0, 2, 4, 6]
    assert tile_starts(3, 8, 0).tolist() == [0]


def test_cosine_ramps_sum_to_one() -> None:
    a = blend_weights_1d(12, 4, True, False)
    b = blend_weights_1d(12, 4, False, True)
    np.testing.assert_allclose(a[-4:] + b[:4], 1.0)
    assert (a > 0).all() and (b > 0).all() and a[0] == 1.0 and b[-1] == 1.0


@pytest.mark.parametrize("mode", ["reflect", "zero"])
def test_pad_matches_padding_the_whole_raster(mode: str) -> None:
    rng = np.random.default_rng(0)
    full = rng.normal(size=(2, 9, 11)).astype(np.float32)
    halo = 3
    padded = np.pad(full, [(0, 0), (halo, halo), (halo, halo)], mode="reflect" if mode == "reflect" else "constant")
    for want in (Window(-3, 5, -3, 6), Window(4, 12, 5, 14), Window(-3, 12, 2, 7)):
        have = Window(max(want.r0, 0), min(want.r1, 9), max(want.c0, 0), min(want.c1, 11))
        got = pad_to_window(full[(slice(None), *have.slices())], have, want, mode)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, padded[:, want.r0 + halo : want.r1 + halo, want.c0 + halo : want.c1 + halo])


def test_bad_geometry_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="halo: must be >= 0"):
        TilePlan(10, 10, 4, -1, 0, 4)
    with pytest.raises(ConfigError, match="overlap"):
        TilePlan(10, 10, 4, 0, 4, 4)
    with pytest.raises(ConfigError, match="rank"):
        TilePlan(10, 10, 4, 0, 0, 4).regions(2, 2)
