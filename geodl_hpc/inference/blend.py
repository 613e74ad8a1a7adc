"""Pure stitching of tile predictions into a region: exact centre crops, or cosine-weighted blending.

``"crop"`` copies each tile's own centre part (exact when the model's receptive field fits the halo);
``"blend"`` accumulates ``weight x prediction`` and the weights, and divides at the end, so overlapping
tiles fade into each other without seams (weights come from :meth:`TilePlan.weights`).
"""

from __future__ import annotations

import numpy as np

from geodl_hpc.inference.geometry import Tile, TilePlan, Window


class RegionStitcher:
    """Collects ``(n_layers, tile_rows, tile_cols)`` tile predictions into one region's ``(n_layers, h, w)``."""

    def __init__(self, plan: TilePlan, region: Window, n_layers: int) -> None:
        self.plan = plan
        self.region = region
        h, w = region.shape
        if plan.stitch == "crop":
            self.acc = np.full((n_layers, h, w), np.nan, dtype=np.float32)
            self.wsum: np.ndarray | None = None
        else:
            self.acc = np.zeros((n_layers, h, w), dtype=np.float64)
            self.wsum = np.zeros((h, w), dtype=np.float64)

    def add(self, tile: Tile, pred: np.ndarray) -> None:
        """Add one tile's prediction over ``tile.extent``."""
        dst = tile.write.relative_to(self.region)
        src = tile.write.relative_to(tile.extent)
        if self.wsum is None:
            self.acc[(slice(None), *dst)] = pred[(slice(None), *src)]
            return
        weights = self.plan.weights(tile)[src]
        self.acc[(slice(None), *dst)] += weights * pred[(slice(None), *src)]
        self.wsum[dst] += weights

    def result(self) -> np.ndarray:
        """The stitched region as float32 (``(n_layers, h, w)``)."""
        if self.wsum is None:
            return self.acc
        return (self.acc / self.wsum).astype(np.float32)
