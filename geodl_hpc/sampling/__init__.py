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

Modules: :mod:`~geodl_hpc.sampling.units` (read units, validity helpers), :mod:`~geodl_hpc.sampling.raster`
(chip samplers, block folds), :mod:`~geodl_hpc.sampling.waveform` (pick and noise windows),
:mod:`~geodl_hpc.sampling.plan` (epoch plans, shards, cursors).
"""

from __future__ import annotations

from geodl_hpc.sampling.plan import (
    Cursor,
    Group,
    RankPlan,
    cursor_plan,
    plan_epoch,
    planned_ids,
    remaining_plan,
)
from geodl_hpc.sampling.raster import BlockFolds, balanced_chips, block_folds, grid_chips, random_chips
from geodl_hpc.sampling.units import (
    SamplingError,
    UnitGrid,
    WaveUnits,
    to_pixels,
    valid_fraction,
    xy_to_rowcol,
)
from geodl_hpc.sampling.waveform import noise_windows, pick_windows

__all__ = [
    "BlockFolds",
    "Cursor",
    "Group",
    "RankPlan",
    "SamplingError",
    "UnitGrid",
    "WaveUnits",
    "balanced_chips",
    "block_folds",
    "cursor_plan",
    "grid_chips",
    "noise_windows",
    "pick_windows",
    "plan_epoch",
    "planned_ids",
    "random_chips",
    "remaining_plan",
    "to_pixels",
    "valid_fraction",
    "xy_to_rowcol",
]
