"""Tiled inference: seam-free maps of a model over a raster stack, written region by region to Zarr.

The geometry and stitching kernels are pure numpy; ``infer`` (torch, zarr) is imported lazily.
"""

from __future__ import annotations

from typing import Any

from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.geometry import TilePlan, Window

__all__ = ["InferJobConfig", "TilePlan", "Window", "infer"]


def infer(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """See :func:`geodl_hpc.inference.runner.infer` (imported on first use: it needs torch)."""
    from geodl_hpc.inference.runner import infer as _infer

    return _infer(*args, **kwargs)
