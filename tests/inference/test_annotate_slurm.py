"""Annotation as a real Slurm array on the local cluster: two array tasks (rank 0 and 1 of 2) share the blocks,
the last one completes the output, and the result equals an in-process run. Data: synthetic Gaussian noise
(see test_annotate.noise_archive); model: an untrained picker run folder (test_annotate_job.picker_run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from geodl_hpc.inference.annotate_config import AnnotateJobConfig
from tests.inference.test_annotate import noise_archive
from tests.launch.conftest import Cluster, slurm_cluster

pytestmark = pytest.mark.slurm
__all__ = ["slurm_cluster"]  # the session fixture, used here by name


def test_two_array_tasks_complete_the_same_output_as_one_process(
    slurm_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`geodl annotate ARCHIVE --model RUN --cluster localslurm n_ranks=2`: one array task per rank."""
    import json

    from jobs.annotate import main
    from jobs.cli import main as cli
    from tests.inference.test_annotate_job import picker_run

    archive = noise_archive(tmp_path / "noise.zarr")
    run = picker_run(tmp_path / "picker", archive, rate=100.0, window=200)
    base = AnnotateJobConfig(archive=str(archive), model=str(run), stride=100, progress=False, threads=1)
    local = main(base.replace(output=str(tmp_path / "local.zarr")))
    assert local["status"] == "complete"

    capsys.readouterr()
    argv = ["annotate", str(archive), "--model", str(run), "--output", str(tmp_path / "slurm.zarr")]
    argv += ["--cluster", "localslurm", "stride=100", "progress=false", "threads=1", "n_ranks=2"]
    assert cli(argv) == 0
    results = json.loads(capsys.readouterr().out)
    assert "#SBATCH --array=0-1%" in (tmp_path / "slurm.run" / "job.sbatch").read_text()
    assert sorted(r["status"] for r in results) in (["complete", "partial"], ["complete", "complete"])
    computed = sorted(i for r in results for i in r["computed"])
    assert computed == list(range(local["blocks_total"]))  # every block once, split by rank
    a = xr.open_zarr(str(tmp_path / "slurm.zarr"), consolidated=False)
    b = xr.open_zarr(str(tmp_path / "local.zarr"), consolidated=False)
    assert a.attrs["geodl_complete"] is True
    assert np.abs(a["probabilities"].values - b["probabilities"].values).max() <= 1e-6
    np.testing.assert_array_equal(a["pick_sample"].values, b["pick_sample"].values)
    assert Path(str(tmp_path / "slurm.picks.xml")).exists()
