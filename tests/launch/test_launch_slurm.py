"""geodl submit/status on the real local Slurm: requeue on USR2 and at the walltime, Ray + Horovod, arrays.

Jobs run side by side (the local node claims 8 CPUs) so the whole module takes about two minutes; a requeued
job waits cred_expire (10 s) plus a scheduler pass before it restarts.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from geodl_hpc import registry
from geodl_hpc.launch import runs
from geodl_hpc.launch.profiles import load_profile
from geodl_hpc.launch.submit import plan, submit, wait
from jobs.cli import main
from tests.launch.conftest import Cluster

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]


def _submit(*args: str) -> Path:
    out = Path(next(a.split("=", 1)[1] for a in args if a.startswith("output=")))
    assert main(["submit", *args, "--cluster", "localslurm"]) == 0
    return out


def _state(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((path / "state.json").read_text()) if (path / "state.json").exists() else {}


def test_requeue_on_usr2_and_at_walltime_resumes(slurm_cluster: Cluster, tmp_path: Path) -> None:
    config = str(REPO / "configs" / "resume_check.yaml")
    signalled = _submit("resume_check", config, "steps=12", "step_seconds=1", f"output={tmp_path / 'usr2'}")
    # A 2-minute limit with USR2 60 s before it (Slurm checks every ~30 s, so it comes 30-60 s in; a 1-minute
    # limit can get it before Python has installed its handler). Far more steps than fit: it must requeue.
    walltime = _submit(
        "resume_check", config, "steps=1000", "step_seconds=1", f"output={tmp_path / 'wall'}",
        "cluster.time_min=2", "cluster.signal_delay_s=60",
    )  # fmt: skip
    job_id = runs.read_status(signalled)["job_ids"][0]
    deadline = time.monotonic() + 60
    while not _state(signalled).get("starts") and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a few steps in; the job saves its step only when the hook runs
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)

    deadline = time.monotonic() + 170
    while len(_state(walltime).get("starts", [])) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    wall_id = runs.read_status(walltime)["job_ids"][0]
    subprocess.run(["scancel", wall_id], check=True, timeout=30)  # resumed: that is all this job had to show
    states = runs.wait_for([job_id], first_interval_s=2, max_interval_s=5, timeout_s=120)
    for out in (signalled, walltime):
        state = _state(out)
        assert len(state["starts"]) >= 2, state
        resumed = state["starts"][1]
        assert resumed["from_step"] > 0 and resumed["restart_count"] == 1  # resumed, not restarted from 0
    assert _state(signalled).get("done") and _state(signalled)["step"] == 12
    assert states[job_id].state == "done" and states[job_id].requeues == 1, states
    status, now = runs.run_states(signalled)
    text = runs.format_status(signalled, status, now)
    assert job_id in text and "done" in text and "requeued 1x" in text
    script = (walltime / "job.sbatch").read_text()
    submitted = next((walltime / runs.read_status(walltime)["logs"]).glob("*_submission.sh")).read_text()
    assert "#SBATCH --signal=USR2@60" in script and "#SBATCH --signal=USR2@60" in submitted
    assert "#SBATCH --time=00:02:00" in script and "#SBATCH --time=2" in submitted


def test_two_tasks_join_one_ray_cluster_and_one_horovod_ring(slurm_cluster: Cluster, tmp_path: Path) -> None:
    pytest.importorskip("horovod.torch")
    out = tmp_path / "check"
    args = [f"output={out}", "cluster.ntasks_per_node=2"]
    config = str(REPO / "configs" / "cluster_check.yaml")
    assert main(["submit", "cluster_check", config, *args, "--cluster", "localslurm", "--wait"]) == 0
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["size"] for r in ranks} == {2}
    assert ranks[0]["ray_address"] == ranks[1]["ray_address"]
    assert ranks[0]["ray_nodes"] == ranks[1]["ray_nodes"] and ranks[0]["ray_cpus"] == 2.0  # both tasks' CPUs
    assert [r["allreduce_sum"] for r in ranks] == [3.0, 3.0] and {r["hvd_size"] for r in ranks} == {2}
    job_id = ranks[0]["job_id"]
    assert not Path(f"/tmp/geodl-ray-{job_id}").exists() or not _ray_processes(job_id)


def _ray_processes(job_id: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if f"geodl-ray-{job_id}" in line]


def test_array_of_four_items_two_at_a_time(slurm_cluster: Cluster, tmp_path: Path) -> None:
    profile = load_profile("localslurm", ["array_parallelism=2"])
    configs = [
        registry.load(None, ["steps=2", "step_seconds=0.5", f"output={tmp_path / f'item{i}'}"], "resume_check")[1]
        for i in range(4)
    ]
    p = plan("resume_check", configs, profile, run_dir=tmp_path / "array")
    assert "#SBATCH --array=0-3%2" in p.script
    jobs, status = submit(p)
    assert len(status["job_ids"]) == 1 and len(status["tasks"]) == 4
    submitted = next(p.logs.glob("*_submission.sh")).read_text()
    assert "#SBATCH --array=0-3%2" in submitted
    results = wait(jobs, status, timeout_s=120)
    assert [r["step"] for r in results] == [2, 2, 2, 2]
    _, states = runs.run_states(tmp_path / "array")
    assert sorted(states) == [f"{status['job_ids'][0]}_{i}" for i in range(4)]
    assert {s.state for s in states.values()} == {"done"}
