"""Data pipeline: chunk-aware read tasks from Zarr archives to shuffled, sharded, resumable torch batches.

Importing this package starts nothing: Ray and torch are imported only when batches are produced.
"""

from __future__ import annotations

from geodl_hpc.pipeline.config import PipelineConfig, PipelineError
from geodl_hpc.pipeline.decode import CutSpec, GroupTask, decode_and_cut
from geodl_hpc.pipeline.loader import ChipPipeline, ensure_ray, rebatch

__all__ = [
    "ChipPipeline",
    "CutSpec",
    "GroupTask",
    "PipelineConfig",
    "PipelineError",
    "decode_and_cut",
    "ensure_ray",
    "rebatch",
]
