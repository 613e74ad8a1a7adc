"""Export raster stack layers to a Cloud-Optimised GeoTIFF that GDAL/QGIS open with the right CRS and nodata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.store import require_complete, staged_output
from geodl_hpc.errors import ArchiveError


def export_geotiff(
    archive: Path, out: Path, *, layers: Sequence[str] | None = None, overwrite: bool = False, chunk: int = 1024
) -> Path:
    """Write ``layers`` (default: all) of a raster stack as bands of one COG at ``out``, window by window.

    Bands carry the layer names as descriptions; NaN is the nodata value. The file appears at ``out`` only when
    complete (COG with overviews), so an interrupted export leaves nothing that looks finished.
    """
    import rasterio
    import rasterio.shutil
    import zarr
    from rasterio.windows import Window

    require_complete(archive, "raster")
    grid = GridSpec.from_archive(archive)
    group = zarr.open_group(str(archive), mode="r")
    available = [str(name) for name in group.attrs.get("layers") or []]  # type: ignore[union-attr]
    names = [str(name) for name in layers] if layers else available
    arrays: dict[str, Any] = {name: group[name] for name in names if name in available}
    missing = [n for n in names if n not in available]
    if missing:
        raise ArchiveError(f"{archive}: no layer {missing[0]!r}; layers are {', '.join(available)}")
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": len(names),
        "dtype": "float32",
        "crs": grid.crs_wkt,
        "transform": grid.affine,
        "nodata": float("nan"),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "zstd",
        "BIGTIFF": "IF_SAFER",
    }
    with staged_output(Path(out), overwrite=overwrite) as tmp:
        plain = tmp.with_name(tmp.name + ".tif")
        try:
            with rasterio.open(plain, "w", **profile) as dst:
                for band, name in enumerate(names, start=1):
                    dst.set_band_description(band, name)
                    units = arrays[name].attrs.get("units")
                    if units:
                        dst.update_tags(band, units=str(units))
                for rows, cols in grid.chunk_windows(chunk):
                    block = np.stack([np.asarray(arrays[name][rows, cols], dtype=np.float32) for name in names])
                    window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
                    dst.write(block, window=window)
            rasterio.shutil.copy(plain, tmp, driver="COG", compress="zstd", overviews="auto", resampling="average")
        finally:
            plain.unlink(missing_ok=True)
    return Path(out)
