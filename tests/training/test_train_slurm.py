"""The train job on the real local Slurm (tests marked ``slurm``): two tasks form one Horovod ring through the
allocation, and ``scancel --signal=USR2`` -> rank-agreed checkpoint -> one requeue -> exact resume.

Both jobs use the tiny config of ``conftest.job_dict`` with ``train.backend=horovod`` and
``cluster.ntasks_per_node=2`` and run side by side (the local node claims 8 CPUs): the uninterrupted one is the
reference of the signalled one. The signalled job is slowed by ``GEODL_TRAIN_STEP_SLEEP`` (a test hook of the
loop, exported to the job with the submitter's environment) so that it is still training when the signal comes;
its requeue waits cred_expire (10 s) plus a scheduler pass. About a minute and a half in all.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geodl_hpc import registry
from geodl_hpc.launch import runs
from geodl_hpc.launch.allocation import Allocation, ports_for, torch_dist_env
from geodl_hpc.launch.preemption import requeue_if_preempted, submitit_requeue_handler
from geodl_hpc.launch.profiles import load_profile
from geodl_hpc.launch.submit import plan, submit
from geodl_hpc.training.loop import STEP_SLEEP_ENV
from tests.launch.conftest import Cluster, slurm_cluster
from tests.training.conftest import job_dict, need_horovod

__all__ = ["slurm_cluster"]  # the session fixture, used here by name


def _submit(archive: Path, out: Path, backend: str = "horovod") -> tuple[list[Any], dict[str, Any]]:
    profile = load_profile("localslurm", ["ntasks_per_node=2"])
    config = registry.config_from_dict("train", job_dict(archive, out, backend=backend))
    return submit(plan("train", [config], profile))


def _results(jobs: list[Any], status: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both ranks' results, in rank order, once the job ended ``done``."""
    job_id = status["job_ids"][0]
    states = runs.wait_for([job_id], first_interval_s=2, max_interval_s=5, timeout_s=timeout_s)
    assert states[job_id].state == "done", states
    r0, r1 = sorted(jobs[0].results(), key=lambda r: r["rank"])
    return r0, r1


def test_only_a_preempted_result_under_submitit_is_requeued() -> None:
    calls: list[int] = []

    def handler(signum: int, frame: object) -> None:
        calls.append(signum)

    requeue_if_preempted({"status": "completed"}, handler)
    requeue_if_preempted({"status": "preempted"}, None)  # not under submitit: the caller reruns it
    assert calls == [] and submitit_requeue_handler() is None
    requeue_if_preempted({"status": "preempted"}, handler)
    assert calls == [signal.SIGUSR2]


def test_torch_gets_its_rendezvous_from_the_allocation() -> None:
    env = {"SLURM_JOB_ID": "77", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1",
           "SLURM_TASKS_PER_NODE": "2", "SLURM_JOB_NODELIST": "localhost"}  # fmt: skip
    alloc = Allocation.from_env(env)
    got = torch_dist_env(alloc, "10.0.0.1")
    assert got == {
        "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": str(ports_for("77").torch_master), "RANK": "1",
        "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
    }  # fmt: skip


@pytest.fixture(scope="module")
def reference(
    slurm_cluster: Cluster, tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """The uninterrupted 2-task run, submitted first so that it runs beside the signalled one."""
    need_horovod()
    yield _submit(tiny_archive, tmp_path_factory.mktemp("slurm_train") / "reference")


@pytest.mark.slurm
def test_two_task_horovod_job_forms_one_ring_and_ends_with_identical_weights(
    reference: tuple[list[Any], dict[str, Any]],
) -> None:
    r0, r1 = _results(*reference, timeout_s=150)
    assert [r0["rank"], r1["rank"]] == [0, 1] and r0["size"] == r1["size"] == 2, (r0, r1)
    assert r0["backend"] == r1["backend"] == "horovod"
    assert r0["status"] == r1["status"] == "completed" and r0["step"] == r1["step"] > 0
    assert r0["param_checksum"] == r1["param_checksum"]


@pytest.mark.slurm
def test_two_task_torch_job_gets_its_rendezvous_from_the_allocation(
    slurm_cluster: Cluster, tiny_archive: Path, tmp_path: Path
) -> None:
    r0, r1 = _results(*_submit(tiny_archive, tmp_path / "torch", backend="torch"), timeout_s=150)
    assert [r0["rank"], r1["rank"]] == [0, 1] and r0["size"] == r1["size"] == 2 and r0["backend"] == "torch"
    assert r0["status"] == r1["status"] == "completed" and r0["param_checksum"] == r1["param_checksum"]


@pytest.mark.slurm
def test_usr2_checkpoints_requeues_once_and_resumes_to_the_uninterrupted_weights(
    reference: tuple[list[Any], dict[str, Any]],
    tiny_archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "signalled"
    monkeypatch.setenv(STEP_SLEEP_ENV, "2")
    jobs, status = _submit(tiny_archive, out)
    monkeypatch.delenv(STEP_SLEEP_ENV)
    job_id = status["job_ids"][0]
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 90
    while not (metrics.exists() and metrics.read_text().strip()):  # training has taken its first step
        assert time.monotonic() < deadline, "the job did not start training within 90 s"
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)

    r0, r1 = _results(jobs, status, timeout_s=150)
    states = runs.wait_for([job_id], timeout_s=10)
    assert states[job_id].requeues == 1, states  # rank 0 requeued, rank 1 just ended: one requeue
    assert r0["status"] == r1["status"] == "completed" and r0["step"] == r1["step"] > 0
    log = Path(jobs[0].paths.stderr).read_text()  # rank 0's log of the requeued run
    resumed = re.search(r"resumed from step (\d+)", log)
    assert resumed and 0 < int(resumed.group(1)) < r0["step"], log[-2000:]
    assert "task 1: Terminated" not in log  # rank 0 requeued only after rank 1 had ended by itself
    ref0, _ = _results(*reference, timeout_s=150)
    assert r0["param_checksum"] == r1["param_checksum"] == ref0["param_checksum"]
