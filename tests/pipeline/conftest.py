"""Pipeline fixtures: one Ray session for the whole test run, a small real raster stack and a waveform archive."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from geodl_hpc.archive.murchison import build_murchison
from geodl_hpc.archive.waveforms import ingest_waveforms

CHUNK = 32
PICKS_CSV = "station,phase,time\nBW.RJOB,P,2009-08-24T00:20:07.70\nBW.RJOB,S,2009-08-24T00:20:10.00\n"


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local 2-CPU Ray, started once and shut down at the end of the session."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def murchison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Murchison stack at 2 km (202 x 166 pixels, 5 layers, 32-pixel chunks)."""
    out = tmp_path_factory.mktemp("murchison") / "murchison.zarr"
    return build_murchison(out, resolution=2000.0, chunk=CHUNK, progress=False)


@pytest.fixture(scope="session")
def murchison_nodata(murchison: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the stack with a NaN (nodata) block in ``dist_fault``: rows 40-59, cols 50-69."""
    out = tmp_path_factory.mktemp("nodata") / "murchison_nodata.zarr"
    shutil.copytree(murchison, out)
    arr = zarr.open_array(str(out / "dist_fault"), mode="r+")
    arr[40:60, 50:70] = np.nan
    stats = dict(arr.attrs["statistics"])
    stats["valid_fraction"] = 0.99
    arr.attrs["statistics"] = stats
    return out


@pytest.fixture(scope="session")
def rjob_archive(obspy_rjob: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ObsPy's example stream (BW.RJOB, 3-C, 100 Hz, 3000 samples) with two picks, in 512-sample chunks."""
    folder = tmp_path_factory.mktemp("rjob_archive")
    picks = folder / "picks.csv"
    picks.write_text(PICKS_CSV)
    return ingest_waveforms(folder / "rjob.zarr", [obspy_rjob], picks=picks, chunk_samples=512, progress=False)
