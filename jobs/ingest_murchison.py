"""Job: rasterise the built-in GSWA Murchison gold data into a raster stack (the main job's default input)."""

from __future__ import annotations

from typing import Any

from geodl_hpc.archive.murchison import ARCHIVE_NAME, ingest_murchison
from geodl_hpc.config import JobConfig

__all__ = ["ARCHIVE_NAME", "main"]


def main(config: JobConfig) -> dict[str, Any]:
    """Build ``OUTPUT/murchison.zarr`` (skipped when an identical complete one exists) and describe it."""
    return ingest_murchison(config)
