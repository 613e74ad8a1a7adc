"""Exports of an inference map: a Cloud-Optimised GeoTIFF (GDAL/QGIS) and a PNG preview with km axes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.export import export_geotiff
from geodl_hpc.archive.store import require_complete


def export_map_geotiff(map_zarr: Path, out: Path, *, overwrite: bool = False) -> Path:
    """The map's layers (probability, and uncertainty if present) as bands of one COG with overviews."""
    return export_geotiff(Path(map_zarr), Path(out), overwrite=overwrite)


def plot_map(map_zarr: Path, png: Path, *, layer: str = "probability", max_pixels: int = 1_000_000) -> Path:
    """A PNG of one map layer (decimated to about ``max_pixels``) on km axes with a colorbar."""
    import matplotlib

    matplotlib.use("Agg")  # file output only; no display on cluster nodes
    import matplotlib.pyplot as plt
    import zarr

    require_complete(Path(map_zarr), "raster")
    group = zarr.open_group(str(map_zarr), mode="r")
    array = group[layer]
    height, width = (int(v) for v in array.shape)  # type: ignore[union-attr]
    step = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    values = np.asarray(array[::step, ::step], dtype=np.float32)  # type: ignore[index]
    bounds: Any = group.attrs["bounds"]
    left, bottom, right, top = (float(v) / 1000.0 for v in bounds)
    epsg = group.attrs.get("crs_epsg")
    fig, ax = plt.subplots(figsize=(7, 7 * height / max(width, 1) + 0.8))
    image = ax.imshow(values, extent=(left, right, bottom, top), cmap="magma", vmin=0.0, vmax=1.0 if layer ==
                      "probability" else None, interpolation="nearest")  # fmt: skip
    fig.colorbar(image, ax=ax, shrink=0.8, label=layer)
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_title(f"{Path(map_zarr).name}: {layer} ({'EPSG:' + str(epsg) if epsg else 'custom CRS'})", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
