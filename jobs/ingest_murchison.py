"""Job: rasterise the built-in GSWA Murchison gold data into a raster stack (the main job's default input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodl_hpc.archive.inspect import describe
from geodl_hpc.archive.murchison import build_murchison
from geodl_hpc.archive.store import archive_kind
from geodl_hpc.config import JobConfig, dump_config, to_dict
from geodl_hpc.errors import ArchiveError

ARCHIVE_NAME = "murchison.zarr"


def _up_to_date(archive: Path, config: JobConfig) -> bool:
    """True when ``archive`` is complete and was built with the same murchison and storage options."""
    if not archive.exists():
        return False
    _, complete = archive_kind(archive)
    if not complete:
        return False
    built = (describe(archive)["provenance"] or {}).get("config", {})
    wanted = to_dict(config)
    return all(built.get(key) == wanted[key] for key in ("murchison", "storage"))


def main(config: JobConfig) -> dict[str, Any]:
    """Build ``OUTPUT/murchison.zarr`` (skipped when an identical complete one exists) and describe it."""
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
