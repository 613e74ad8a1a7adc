"""Quick-look plots: a PNG per raster stack or waveform archive, and a clear error for other kinds."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest

from geodl_hpc.archive.catalog import ingest_catalog
from geodl_hpc.archive.murchison import build_murchison
from geodl_hpc.archive.preview import plot_archive
from geodl_hpc.archive.waveforms import ingest_waveforms
from geodl_hpc.errors import ArchiveError


def _assert_png(path: Path) -> None:
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 0.01  # not a blank canvas


def test_raster_stack_plot(tmp_path: Path) -> None:
    archive = build_murchison(tmp_path / "m.zarr", resolution=4000, progress=False)
    _assert_png(plot_archive(archive, tmp_path / "m.png"))


def test_waveform_plot(tmp_path: Path, obspy_rjob: Path) -> None:
    archive = ingest_waveforms(tmp_path / "w.zarr", [obspy_rjob], progress=False)
    _assert_png(plot_archive(archive, tmp_path / "w.png"))


def test_catalog_has_no_plot_yet(tmp_path: Path, comcat_csv: Path) -> None:
    archive = ingest_catalog(tmp_path / "c.parquet", comcat_csv)
    with pytest.raises(ArchiveError, match="no quick-look plot for catalog archives"):
        plot_archive(archive, tmp_path / "c.png")
