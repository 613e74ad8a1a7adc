"""Pure geometry of tiled inference: chunk-aligned regions, a global tile grid with halo, and who writes what.

All windows are half-open pixel ranges ``[start, stop)`` in raster coordinates. Tiles lie on one grid for the
whole raster (not per region), so a pixel's result does not depend on how regions are split over ranks.
Input windows extend ``halo`` pixels beyond a tile and may leave the raster; the reader pads there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from geodl_hpc.errors import ConfigError

Stitch = Literal["crop", "blend"]


@dataclass(frozen=True)
class Window:
    """Rows ``[r0, r1)`` x cols ``[c0, c1)``; may extend outside the raster (input windows with halo)."""

    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.r1 - self.r0, self.c1 - self.c0)

    @property
    def size(self) -> int:
        return (self.r1 - self.r0) * (self.c1 - self.c0)

    def slices(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)

    def relative_to(self, outer: Window) -> tuple[slice, slice]:
        """Slices of this window inside an array that covers ``outer``."""
        return slice(self.r0 - outer.r0, self.r1 - outer.r0), slice(self.c0 - outer.c0, self.c1 - outer.c0)

    def intersect(self, other: Window) -> Window | None:
        r0, r1 = max(self.r0, other.r0), min(self.r1, other.r1)
        c0, c1 = max(self.c0, other.c0), min(self.c1, other.c1)
        return Window(r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None

    def grow(self, margin: int) -> Window:
        return Window(self.r0 - margin, self.r1 + margin, self.c0 - margin, self.c1 + margin)


@dataclass(frozen=True)
class Tile:
    """One model input: ``extent`` (the tile's output pixels), ``input`` (extent + halo) and what it writes.

    ``write`` is the part of ``extent`` this tile contributes to the current region: its own centre crop in
    ``"crop"`` mode, its whole extent clipped to the region in ``"blend"`` mode. ``row``/``col`` index the tile grid.
    """

    row: int
    col: int
    extent: Window
    input: Window
    write: Window


def tile_starts(n: int, tile: int, overlap: int) -> np.ndarray:
    """Starts of tiles of length ``min(tile, n)`` stepping ``tile - overlap``; the last one is snapped to end at n."""
    t = min(tile, n)
    stride = max(1, t - overlap) if t == tile else t
    starts = list(range(0, max(n - t, 0) + 1, stride))
    if starts[-1] + t < n:
        starts.append(n - t)
    return np.asarray(starts, dtype=np.int64)


def crop_bounds(starts: np.ndarray, tile: int, n: int) -> np.ndarray:
    """Boundaries ``b`` (len = tiles + 1) such that tile i owns ``[b[i], b[i+1])``: cuts at overlap midpoints."""
    t = min(tile, n)
    b = np.empty(len(starts) + 1, dtype=np.int64)
    b[0], b[-1] = 0, n
    b[1:-1] = (starts[1:] + starts[:-1] + t) // 2
    return b


def blend_weights_1d(length: int, ramp: int, at_start: bool, at_end: bool) -> np.ndarray:
    """Cosine (Hann) ramps of ``ramp`` pixels on the sides that have a neighbour, 1 elsewhere; all > 0.

    Adjacent tiles overlapping by exactly ``ramp`` have ramps that sum to 1 (sin² + cos² = 1)."""
    w = np.ones(length, dtype=np.float64)
    r = min(ramp, length)
    if r > 0:
        up = np.sin(0.5 * np.pi * (np.arange(r) + 0.5) / r) ** 2
        if not at_start:
            w[:r] *= up
        if not at_end:
            w[length - r :] *= up[::-1]
    return w


@dataclass(frozen=True)
class TilePlan:
    """Regions (whole output chunks) and tiles (with halo and overlap) over a ``height`` x ``width`` raster."""

    height: int
    width: int
    tile: int
    halo: int
    overlap: int
    chunk: int
    region_chunks: int = 1
    stitch: Stitch = "crop"

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"raster: empty raster {self.height} x {self.width}")
        if self.tile < 1:
            raise ConfigError(f"tile: must be at least 1 pixel, got {self.tile}")
        if self.halo < 0:
            raise ConfigError(f"halo: must be >= 0 pixels, got {self.halo}")
        if not 0 <= self.overlap < self.tile:
            raise ConfigError(f"overlap: must be >= 0 and smaller than tile ({self.tile}), got {self.overlap}")
        if self.chunk < 1 or self.region_chunks < 1:
            raise ConfigError(f"chunk/region_chunks: must be positive, got {self.chunk}/{self.region_chunks}")
        if self.stitch not in ("crop", "blend"):
            raise ConfigError(f"stitch: {self.stitch!r} is not one of 'crop', 'blend'")

    # ---- regions -------------------------------------------------------------------------------------------
    @property
    def region_side(self) -> int:
        return self.chunk * self.region_chunks

    @property
    def region_grid(self) -> tuple[int, int]:
        """Regions along ``(rows, cols)``."""
        side = self.region_side
        return math.ceil(self.height / side), math.ceil(self.width / side)

    @property
    def n_regions(self) -> int:
        rows, cols = self.region_grid
        return rows * cols

    def region(self, index: int) -> Window:
        """Region ``index`` (row-major): whole output chunks, clipped at the raster edge."""
        rows, cols = self.region_grid
        if not 0 <= index < rows * cols:
            raise IndexError(f"region {index} out of range 0..{rows * cols - 1}")
        side = self.region_side
        r, c = divmod(index, cols)
        return Window(r * side, min((r + 1) * side, self.height), c * side, min((c + 1) * side, self.width))

    def regions(self, rank: int = 0, n_ranks: int = 1) -> list[int]:
        """The region indices work item ``rank`` of ``n_ranks`` owns: a contiguous row-major block (sizes differ by
        at most one), so each rank's regions are mostly neighbours and their halos reuse decoded input chunks."""
        if n_ranks < 1 or not 0 <= rank < n_ranks:
            raise ConfigError(f"rank/n_ranks: need 0 <= rank < n_ranks, got rank={rank}, n_ranks={n_ranks}")
        n = self.n_regions
        return list(range(rank * n // n_ranks, (rank + 1) * n // n_ranks))

    # ---- tiles ---------------------------------------------------------------------------------------------
    @property
    def tile_shape(self) -> tuple[int, int]:
        return min(self.tile, self.height), min(self.tile, self.width)

    @property
    def input_shape(self) -> tuple[int, int]:
        th, tw = self.tile_shape
        return th + 2 * self.halo, tw + 2 * self.halo

    def _axis(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        starts = tile_starts(n, self.tile, self.overlap)
        return starts, crop_bounds(starts, self.tile, n)

    def tiles(self, region: Window) -> list[Tile]:
        """Every tile contributing to ``region``, row-major, with the part of the region it writes."""
        th, tw = self.tile_shape
        per_axis = []
        for lo, hi, n, t in ((region.r0, region.r1, self.height, th), (region.c0, region.c1, self.width, tw)):
            starts, bounds = self._axis(n)
            picks = []
            for i, s in enumerate(starts.tolist()):
                a, b = (bounds[i], bounds[i + 1]) if self.stitch == "crop" else (s, s + t)
                a, b = max(int(a), lo), min(int(b), hi)
                if a < b:
                    picks.append((i, s, a, b))
            per_axis.append(picks)
        out = []
        for i, rs, ra, rb in per_axis[0]:
            for j, cs, ca, cb in per_axis[1]:
                extent = Window(rs, rs + th, cs, cs + tw)
                out.append(Tile(i, j, extent, extent.grow(self.halo), Window(ra, rb, ca, cb)))
        return out

    def input_window(self, region: Window) -> Window:
        """The union of the input windows of ``region``'s tiles (what a reader fetches once per region)."""
        tiles = self.tiles(region)
        return Window(
            min(t.input.r0 for t in tiles),
            max(t.input.r1 for t in tiles),
            min(t.input.c0 for t in tiles),
            max(t.input.c1 for t in tiles),
        )

    def weights(self, tile: Tile) -> np.ndarray:
        """Blend weights over ``tile.extent`` (float64, all > 0): cosine ramps where a neighbour tile overlaps."""
        th, tw = self.tile_shape
        n_rows = len(tile_starts(self.height, self.tile, self.overlap))
        n_cols = len(tile_starts(self.width, self.tile, self.overlap))
        wr = blend_weights_1d(th, self.overlap, tile.row == 0, tile.row == n_rows - 1)
        wc = blend_weights_1d(tw, self.overlap, tile.col == 0, tile.col == n_cols - 1)
        return np.outer(wr, wc)


def pad_to_window(block: np.ndarray, have: Window, want: Window, mode: Literal["reflect", "zero"]) -> np.ndarray:
    """Pad ``block`` (``(..., rows, cols)`` covering ``have``, the part of ``want`` inside the raster) to ``want``."""
    pads = [
        (have.r0 - want.r0, want.r1 - have.r1),
        (have.c0 - want.c0, want.c1 - have.c1),
    ]
    if not any(p for pair in pads for p in pair):
        return block
    width = [(0, 0)] * (block.ndim - 2) + pads
    if mode == "zero":
        return np.pad(block, width, mode="constant")
    # numpy's reflect repeats the reflection when the pad is wider than the block; a 1-pixel block can only repeat.
    return np.pad(block, width, mode="reflect" if min(block.shape[-2:]) > 1 else "edge")


def clip_to_raster(window: Window, height: int, width: int) -> Window:
    """The part of ``window`` inside a ``height`` x ``width`` raster."""
    return Window(max(window.r0, 0), min(window.r1, height), max(window.c0, 0), min(window.c1, width))
