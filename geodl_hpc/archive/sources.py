"""Where fetched real data sets live: the data cache that ``tools/fetch_data.sh`` fills, one folder per data set."""

from __future__ import annotations

import os
from pathlib import Path

from geodl_hpc.errors import InputDataError


def data_root() -> Path:
    """The data cache: ``$GEODL_DATA_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/geodl_hpc/data``."""
    explicit = os.environ.get("GEODL_DATA_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "geodl_hpc" / "data"


def data_file(dataset: str, *parts: str) -> Path:
    """A file of fetched data set ``dataset``; a one-line error saying how to fetch it when it is missing."""
    folder = data_root() / dataset
    path = folder.joinpath(*parts)
    if not (folder / ".complete").exists() or not path.exists():
        raise InputDataError(
            f"{path}: data set {dataset!r} is not in the data cache; run `tools/fetch_data.sh {dataset}` "
            "(or `make setup`), or point GEODL_DATA_DIR at a cache that has it"
        )
    return path
