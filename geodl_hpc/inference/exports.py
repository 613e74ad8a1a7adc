"""Exports of an inference map: a Cloud-Optimised GeoTIFF (GDAL/QGIS) and PNG previews with km axes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.export import export_geotiff
from geodl_hpc.archive.store import require_complete


def export_map_geotiff(map_zarr: Path, out: Path, *, overwrite: bool = False) -> Path:
    """The map's layers (probability, uncertainty and attributions if present) as bands of one COG with overviews."""
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


def plot_attribution(map_zarr: Path, png: Path, *, max_pixels: int = 250_000) -> Path | None:
    """One panel per ``attribution_<layer>`` band on km axes, on a shared symmetric colour scale; None if none.

    Red: the layer raises the probability there; blue: it lowers it (occlusion: probability minus probability
    with the layer at its mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import zarr

    from geodl_hpc.inference.writer import ATTRIBUTION_PREFIX

    require_complete(Path(map_zarr), "raster")
    group = zarr.open_group(str(map_zarr), mode="r")
    names = [str(n) for n in group.attrs.get("layers") or [] if str(n).startswith(ATTRIBUTION_PREFIX)]  # type: ignore[union-attr]
    if not names:
        return None
    height, width = (int(v) for v in group[names[0]].shape)  # type: ignore[union-attr]
    step = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    planes = [np.asarray(group[n][::step, ::step], dtype=np.float32) for n in names]  # type: ignore[index]
    finite = [np.abs(p[np.isfinite(p)]) for p in planes]
    scale = max((float(np.percentile(f, 99)) for f in finite if f.size), default=0.0) or 1e-6
    bounds: Any = group.attrs["bounds"]
    left, bottom, right, top = (float(v) / 1000.0 for v in bounds)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    aspect = height / max(width, 1)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1, 3.2 * rows * aspect + 0.6), squeeze=False)
    image = None
    for ax, name, plane in zip(axes.flat, names, planes, strict=False):
        image = ax.imshow(plane, extent=(left, right, bottom, top), cmap="RdBu_r", vmin=-scale, vmax=scale,
                          interpolation="nearest")  # fmt: skip
        ax.set_title(name.removeprefix(ATTRIBUTION_PREFIX), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="occlusion attribution (probability change)")
    fig.supxlabel("x (km)", fontsize=9)
    fig.supylabel("y (km)", fontsize=9)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return Path(png)
