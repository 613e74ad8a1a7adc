"""The real ``copper`` data (Berman 1986, Queensland) from spatstat.data as a raster stack.

67 copper deposits and 146 geological lineaments in a 70 x 158 km window, read from the Debian package
r-cran-spatstat.data's lazy-load database with the tolerant reader (:mod:`geodl_hpc.archive.rdb`; the data set
is fetched by ``tools/fetch_data.sh spatstat_data``). Coordinates are a local planar frame in kilometres with no
published datum: the stack is in metres in a local engineering CRS (``COPPER_WKT``), so it opens in GIS tools but
does not overlay any map. Layers: ``dist_lineament`` and ``lineament_density`` (evidence), ``deposits`` (label).
There is no lithology layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import BlockSource, write_stack
from geodl_hpc.archive.store import CodecSpec, mark_complete_zarr, provenance, staged_output
from geodl_hpc.archive.vector import LineSource, PointCountSource
from geodl_hpc.errors import InputDataError

DATASET = "spatstat_data"
COPPER_WKT = (
    'LOCAL_CS["copper (Berman 1986) local planar frame, metres",LOCAL_DATUM["unknown",32767],'
    'UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
)
ATTRIBUTION = (
    "Copper deposits and lineaments: Berman, M. (1986) Testing for spatial association between a point process "
    "and another stochastic process. Applied Statistics 35, 54-62. Data via the R package spatstat.data 3.0-0 "
    "(Baddeley, Turner, Rubak; GPL-2.0-or-later)."
)
LINEAMENT_DENSITY_RADIUS_M = 5000.0


def read_copper(prefix: Path | None = None) -> dict[str, Any]:
    """Deposits ``(67, 2)``, lineament segments ``(146, 2, 2)`` and the window ``(left, bottom, right, top)``,
    all in metres, from spatstat.data's ``copper`` object (the full window, not the southern subset)."""
    from geodl_hpc.archive.rdb import LazyLoadDB
    from geodl_hpc.archive.sources import data_file

    prefix = prefix or data_file(DATASET, "data", "Rdata.rdb").with_suffix("")
    copper = LazyLoadDB(prefix).read("copper")
    try:
        points, lines, window = copper["Points"], copper["Lines"], copper["FullWindow"]
        scale = 1000.0 * float(np.asarray(window["units"]["multiplier"]).ravel()[0])
        if window["units"]["singular"] != ["km"]:
            raise KeyError("units")
        deposits = np.column_stack([points["x"], points["y"]]).astype(np.float64) * scale
        ends = lines["ends"][["x0", "y0", "x1", "y1"]].to_numpy(np.float64) * scale
        xr, yr = np.asarray(window["xrange"]) * scale, np.asarray(window["yrange"]) * scale
    except (KeyError, TypeError) as exc:
        raise InputDataError(f"{prefix}.rdb: object 'copper' lacks the expected field {exc}; fetch it again") from None
    return {
        "deposits": deposits,
        "segments": ends.reshape(-1, 2, 2),
        "window": (float(xr[0]), float(yr[0]), float(xr[1]), float(yr[1])),
        "files": [Path(f"{prefix}.rdx"), Path(f"{prefix}.rdb")],
    }


def copper_grid(resolution: float = 500.0, prefix: Path | None = None) -> GridSpec:
    """The copper window's grid at ``resolution`` metres (snapped outward to whole pixels)."""
    return GridSpec.from_bounds(COPPER_WKT, resolution, read_copper(prefix)["window"])


def build_copper(
    out: Path,
    *,
    resolution: float = 500.0,
    chunk: int = 256,
    codec: CodecSpec = CodecSpec(),  # noqa: B008 - frozen dataclass, safe default
    overwrite: bool = False,
    progress: bool = True,
    prefix: Path | None = None,
    extra_provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``dist_lineament``, ``lineament_density`` and ``deposits`` (the label) as a raster stack at ``out``."""
    import shapely

    data = read_copper(prefix)
    grid = GridSpec.from_bounds(COPPER_WKT, resolution, data["window"])
    lines = shapely.linestrings(data["segments"])
    sources: list[BlockSource] = [
        LineSource(
            lines,
            grid,
            distance_name="dist_lineament",
            density_name="lineament_density",
            source="copper$Lines",
            radius=LINEAMENT_DENSITY_RADIUS_M,
        ),
        PointCountSource(
            data["deposits"],
            grid,
            name="deposits",
            source="copper$Points",
            long_name="copper deposits per pixel (label)",
        ),
    ]
    extra: dict[str, Any] = {
        "attribution": ATTRIBUTION,
        "dataset": "copper (Berman 1986) from spatstat.data 3.0-0 (Debian r-cran-spatstat.data 3.0-0-1)",
        "crs_note": "local planar frame (kilometres in the source, metres here); no datum: overlays no map",
        "options": {"kind": "raster", "builtin": "copper", "resolution": resolution,
                    "lineament_density_radius_m": LINEAMENT_DENSITY_RADIUS_M, "grid": grid.root_attrs()},
    }  # fmt: skip
    extra.update(extra_provenance or {})
    record = provenance(data["files"], chunks={"y": chunk, "x": chunk}, codec=codec, extra=extra)
    with staged_output(Path(out), overwrite=overwrite) as tmp:
        write_stack(tmp, grid, sources, chunk=chunk, codec=codec, provenance_record=record, progress=progress)
        mark_complete_zarr(tmp)
    return Path(out)
