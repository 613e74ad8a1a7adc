"""Rendered scripts and submitit jobs on a real single-node Slurm cluster (``slurm/local-cluster up``).

The cluster lives in ``$GEODL_SLURM_DIR`` (default ``/tmp/geodl-slurm``) and is left running for the next session.
Under ``CI=true`` a cluster that cannot be brought up fails these tests; elsewhere they skip without root or apt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from geodl_hpc.launch.sbatch import SbatchSpec, render_sbatch

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "slurm" / "local-cluster"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"}


@dataclass(frozen=True)
class Cluster:
    dir: Path
    partition: str


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"local Slurm cluster unavailable under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    """Bring the local cluster up (idempotent, seconds when already running) and point SLURM_CONF at it."""
    cluster_dir = Path(os.environ.get("GEODL_SLURM_DIR", "/tmp/geodl-slurm"))
    partition = os.environ.get("GEODL_SLURM_PARTITION", "debug")
    if os.geteuid() != 0:
        _unavailable("slurm/local-cluster needs root to start munge, MariaDB and the Slurm daemons")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        _unavailable("Slurm is not installed and apt-get is missing to install it")
    try:
        up = subprocess.run(
            [str(SCRIPT), "up", str(cluster_dir)], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"slurm/local-cluster up {cluster_dir} took more than 600 s")
    if up.returncode != 0:
        pytest.fail(f"slurm/local-cluster up {cluster_dir} failed:\n{up.stdout}{up.stderr}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(cluster_dir / "etc" / "slurm.conf"))
        yield Cluster(cluster_dir, partition)


def _run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout.strip()


def _sbatch(spec: SbatchSpec, folder: Path) -> str:
    script = folder / f"{spec.job_name}.sbatch"
    script.write_text(render_sbatch(spec))
    return _run("sbatch", "--parsable", str(script), cwd=folder).split(";")[0]


def _wait_for_record(job_id: str, timeout_s: float = 60) -> dict[str, str]:
    """The job's final accounting record (sacct, hence slurmdbd): State, JobName, Partition."""
    deadline = time.monotonic() + timeout_s
    record: dict[str, str] = {}
    while time.monotonic() < deadline:
        line = _run("sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,JobName,Partition")
        if line:
            state, name, partition = line.splitlines()[0].split("|")
            record = {"State": state.split(" ")[0], "JobName": name, "Partition": partition}
            # A job that starts and ends within a second can reach slurmdbd by its completion message first
            # (named "allocation", no partition); the start message completes the record a moment later.
            if record["State"] in TERMINAL and record["Partition"]:
                return record
        time.sleep(0.5)
    pytest.fail(f"job {job_id} has no final accounting record after {timeout_s:.0f} s (last: {record})")


def test_rendered_script_runs_and_is_accounted(slurm_cluster: Cluster, tmp_path: Path) -> None:
    hostile = "it's $(touch PWNED) `touch PWNED`; touch PWNED"
    spec = SbatchSpec(
        job_name="geodl-render-test",
        command=["sh", "-c", 'printf "%s|%s" "$SLURM_JOB_ID" "$1" > result.txt', "sh", hostile],
        partition=slurm_cluster.partition,
        time_min=5,
        mem="200M",
        chdir=str(tmp_path),
        output=str(tmp_path / "%x-%j.out"),
    )
    job_id = _sbatch(spec, tmp_path)
    record = _wait_for_record(job_id)
    assert record["State"] == "COMPLETED", (tmp_path / f"geodl-render-test-{job_id}.out").read_text()
    assert (record["JobName"], record["Partition"]) == ("geodl-render-test", slurm_cluster.partition)
    assert (tmp_path / "result.txt").read_text() == f"{job_id}|{hostile}"
    assert not (tmp_path / "PWNED").exists()


def test_two_tasks_each_run_the_command_once(slurm_cluster: Cluster, tmp_path: Path) -> None:
    spec = SbatchSpec(
        job_name="geodl-two-tasks",
        command=["sh", "-c", 'echo "$SLURM_NTASKS" > "rank-$SLURM_PROCID.txt"'],
        partition=slurm_cluster.partition,
        ntasks_per_node=2,
        time_min=5,
        chdir=str(tmp_path),
        output=str(tmp_path / "%x-%j.out"),
    )
    job_id = _sbatch(spec, tmp_path)
    assert _wait_for_record(job_id)["State"] == "COMPLETED"
    assert sorted(p.name for p in tmp_path.glob("rank-*.txt")) == ["rank-0.txt", "rank-1.txt"]
    assert {p.read_text() for p in tmp_path.glob("rank-*.txt")} == {"2\n"}


def test_submitit_job_returns_its_value(slurm_cluster: Cluster, tmp_path: Path) -> None:
    import submitit

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(slurm_partition=slurm_cluster.partition, timeout_min=5, mem_gb=1)
    job = executor.submit(os.getenv, "SLURM_JOB_ID")  # os.getenv pickles by reference: reads the job's env
    deadline = time.monotonic() + 90
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job.done(), f"submitit job {job.job_id} not done after 90 s: {job.state}"
    assert job.result() == job.job_id
    assert _wait_for_record(job.job_id)["State"] == "COMPLETED"
