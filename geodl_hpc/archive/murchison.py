"""The built-in Murchison (GSWA) gold-prospectivity data as a raster stack on the study-area window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import BlockSource, write_stack
from geodl_hpc.archive.store import CodecSpec, mark_complete_zarr, provenance, staged_output
from geodl_hpc.archive.vector import LineSource, PointCountSource, PolygonSource, read_vector
from geodl_hpc.errors import ArchiveError, InputDataError

if TYPE_CHECKING:
    from geodl_hpc.config import JobConfig

MURCHISON_DIR = Path(__file__).resolve().parent.parent / "data" / "murchison"
MURCHISON_CRS = "EPSG:32750"
DATA_FILES = ("gold_deposits.csv", "faults.csv", "greenstone.geojson", "study_area.geojson")
ATTRIBUTION = (
    "Murchison gold deposits, faults and greenstone: Watkins, K.P. and Hickman, A.H. (1990) Geological evolution "
    "and mineralization of the Murchison Province, Western Australia. Bulletin 137, Geological Survey of Western "
    "Australia (GSWA); deposits from the GSWA Minedex database. Data via the R package spatstat.data 3.0-0 "
    "(Baddeley, Turner, Rubak; GPL-2.0-or-later), provided by Dr Carl Knox-Robinson (UWA) with permission of "
    "Dr Tim Griffin (GSWA)."
)
FAULT_DENSITY_RADIUS_M = 5000.0


def study_area_bounds(folder: Path = MURCHISON_DIR) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of the study-area rectangle in ``study_area.geojson``."""
    path = folder / "study_area.geojson"
    try:
        ring = json.loads(path.read_text())["features"][0]["geometry"]["coordinates"][0]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InputDataError(f"{path}: unreadable study area ({exc.__class__.__name__}); reinstall geodl_hpc") from None
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return (min(xs), min(ys), max(xs), max(ys))


def murchison_grid(resolution: float = 500.0) -> GridSpec:
    """The study-area grid in EPSG:32750 at ``resolution`` metres (snapped outward to whole pixels)."""
    return GridSpec.from_bounds(MURCHISON_CRS, resolution, study_area_bounds())


def build_murchison(
    out: Path,
    *,
    resolution: float = 500.0,
    chunk: int = 256,
    codec: CodecSpec = CodecSpec(),  # noqa: B008 - frozen dataclass, safe default
    overwrite: bool = False,
    progress: bool = True,
    extra_provenance: dict[str, Any] | None = None,
) -> Path:
    """Write the Murchison layers ``greenstone``, ``dist_greenstone``, ``dist_fault``, ``fault_density`` and
    ``deposits`` (the label) as a raster stack at ``out``; returns ``out``."""
    out = Path(out)
    files = [MURCHISON_DIR / name for name in DATA_FILES]
    for path in files:
        if not path.is_file():
            raise InputDataError(f"{path}: built-in Murchison data file is missing; reinstall geodl_hpc")
    grid = murchison_grid(resolution)
    gold = read_vector(MURCHISON_DIR / "gold_deposits.csv", grid)
    faults = read_vector(MURCHISON_DIR / "faults.csv", grid)
    green = read_vector(MURCHISON_DIR / "greenstone.geojson", grid)
    sources: list[BlockSource] = [
        PolygonSource(
            green.geometries, grid, indicator_name="greenstone", distance_name="dist_greenstone", source=green.path.name
        ),
        LineSource(
            faults.geometries,
            grid,
            distance_name="dist_fault",
            density_name="fault_density",
            source=faults.path.name,
            radius=FAULT_DENSITY_RADIUS_M,
        ),
        PointCountSource(
            gold.points, grid, name="deposits", source=gold.path.name, long_name="gold deposits per pixel (label)"
        ),
    ]
    extra: dict[str, Any] = {
        "attribution": ATTRIBUTION,
        "dataset": "murchison (GSWA) from spatstat.data 3.0-0; see geodl_hpc/data/murchison/README.md",
        "crs_note": "coordinates are planar metres labelled EPSG:32750; datum uncertain by about 200 m",
        "options": {
            "kind": "raster",
            "builtin": "murchison",
            "resolution": resolution,
            "fault_density_radius_m": FAULT_DENSITY_RADIUS_M,
            "grid": grid.root_attrs(),
        },
    }
    extra.update(extra_provenance or {})
    record = provenance(files, chunks={"y": chunk, "x": chunk}, codec=codec, extra=extra)
    with staged_output(out, overwrite=overwrite) as tmp:
        write_stack(tmp, grid, sources, chunk=chunk, codec=codec, provenance_record=record, progress=progress)
        mark_complete_zarr(tmp)
    return out


ARCHIVE_NAME = "murchison.zarr"  # inside the ingest output folder


def _up_to_date(archive: Path, config: JobConfig) -> bool:
    """True when ``archive`` is complete and was built with the same murchison and storage options."""
    from geodl_hpc.archive.inspect import describe
    from geodl_hpc.archive.store import archive_kind
    from geodl_hpc.config import to_dict

    if not archive.exists():
        return False
    _, complete = archive_kind(archive)
    if not complete:
        return False
    built = (describe(archive)["provenance"] or {}).get("config", {})
    wanted = to_dict(config)
    return all(built.get(key) == wanted[key] for key in ("murchison", "storage"))


def ingest_murchison(config: JobConfig) -> dict[str, Any]:
    """Build ``OUTPUT/murchison.zarr`` (skipped when an identical complete one exists) and describe it; the
    ``ingest_murchison`` job and the main job's first stage."""
    from geodl_hpc.archive.inspect import describe
    from geodl_hpc.config import dump_config, to_dict

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    archive = output / ARCHIVE_NAME
    if _up_to_date(archive, config):
        info = describe(archive)
        info["skipped"] = True
        return info
    if archive.exists() and not config.overwrite:
        raise ArchiveError(
            f"{archive}: exists and was built with other options; set overwrite=true or choose another output"
        )
    dump_config(config, output / "config.resolved.yaml")
    build_murchison(
        archive,
        resolution=config.murchison.resolution,
        chunk=config.storage.chunk,
        codec=config.storage.codec_spec(),
        overwrite=archive.exists(),
        extra_provenance={"config": to_dict(config)},
    )
    info = describe(archive)
    info["skipped"] = False
    return info
