"""Profiles, the submitit/renderer parity, templates, sacct parsing, polling, allocation maths: no Slurm needed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from geodl_hpc import registry
from geodl_hpc.errors import GeodlError
from geodl_hpc.launch import runs
from geodl_hpc.launch.allocation import Allocation, horovod_env, ports_for, ray_start_command
from geodl_hpc.launch.profiles import available_profiles, load_profile
from geodl_hpc.launch.submit import JobRunner, plan, submitit_parameters
from geodl_hpc.launch.templates import SLURM_DIR, templates

REPO = Path(__file__).resolve().parents[2]
RESOURCE_KEYS = {
    "job-name", "partition", "account", "qos", "nodes", "ntasks-per-node", "cpus-per-task", "gpus-per-node",
    "mem", "time", "constraint", "array", "signal", "requeue", "output", "error",
}  # fmt: skip


def _sbatch_options(text: str) -> dict[str, str]:
    options = {}
    for line in text.splitlines():
        match = re.fullmatch(r"#SBATCH --([a-z-]+)(?:=(.*))?", line)
        if match:
            options[match.group(1)] = (match.group(2) or "true").strip("'")
    return options


def _minutes(value: str) -> int:
    if value.isdigit():
        return int(value)  # submitit writes minutes
    days, _, hms = value.rpartition("-")
    h, m, _ = (int(x) for x in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m


def test_shipped_profiles_load() -> None:
    assert {"local", "localslurm", "slurm-example"} <= set(available_profiles())
    example = load_profile("slurm-example")
    assert example.is_slurm and example.partition == "gpu" and example.setup[0].startswith("module load")
    assert not load_profile("local").is_slurm
    assert load_profile("localslurm", ["ntasks_per_node=2"]).ntasks_per_node == 2


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [
        ("nope", [], r"^--cluster nope: unknown cluster profile; available: .*local.*localslurm.*slurm-example"),
        ("slurm-example", ["nodes=99"], r"^cluster\.nodes=99: profile slurm-example can give at most 16"),
        ("slurm-example", ["time_min=99999"], r"^cluster\.time_min=99999: .* at most 2880"),
        ("slurm-example", ["nodes=16", "time_min=2880"], r"GPU-hours asked, profile slurm-example allows at most"),
        ("slurm-example", ["limits.nodes=100"], r"cannot change the profile's limits"),
        ("localslurm", ["gpus_per_node=1"], r"^cluster\.gpus_per_node=1: profile localslurm can give at most 0"),
        ("localslurm", ["bogus=1"], r"^cluster\.bogus: unknown key"),
    ],
)
def test_bad_profile_requests_are_one_line_errors(name: str, overrides: list[str], match: str) -> None:
    with pytest.raises(GeodlError, match=match) as info:
        load_profile(name, overrides)
    assert "\n" not in str(info.value)


def test_submitit_script_carries_the_rendered_resources(tmp_path: Path) -> None:
    """The parity contract: submitit's sbatch file has the same #SBATCH resources as render_sbatch shows."""
    from submitit.slurm.slurm import _make_sbatch_string

    profile = load_profile("slurm-example", ["nodes=2", "mem=64G", "time_min=90"])
    _, config = registry.load(REPO / "configs" / "demo.yaml", [f"output={tmp_path}"])
    for configs in ([config], [config] * 3):
        p = plan("ingest_murchison", configs, profile)
        ours = _sbatch_options(p.script)
        params = submitit_parameters(p.spec, profile.signal_delay_s)
        theirs = _sbatch_options(
            _make_sbatch_string(
                command=" ".join(p.spec.command),
                folder=p.logs,
                map_count=len(configs) if len(configs) > 1 else None,
                **params,
            )
        )
        assert set(ours) <= RESOURCE_KEYS
        for key in ours.keys() - {"time", "output", "error"}:
            assert theirs[key] == ours[key], key
        assert _minutes(theirs["time"]) == _minutes(ours["time"]) == 90
        for key in ("output", "error"):  # same files: submitit names them %j_%t_log (%A_%a_%t_log in arrays)
            assert theirs[key] == ours[key]
        assert "--no-requeue" not in theirs and ours["requeue"] == "true"
        assert p.spec.setup_lines[0] in p.script


def test_dry_run_plan_numbers(tmp_path: Path) -> None:
    profile = load_profile("slurm-example", ["nodes=2"])
    _, config = registry.load(REPO / "configs" / "demo.yaml", [f"output={tmp_path}"])
    text = plan("ingest_murchison", [config], profile).describe()
    assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=4" in text
    assert "2 node(s) x 4 GPUs (8 GPUs)" in text and "at most 96 GPU-hours" in text
    assert not (tmp_path / "run.json").exists()


def test_slurm_templates_are_current() -> None:
    for name, text in templates().items():
        path = SLURM_DIR / name
        if os.environ.get("GEODL_UPDATE_TEMPLATES") == "1":
            path.write_text(text)
        assert path.exists() and path.read_text() == text, (
            f"{path} is stale; run `python -m geodl_hpc.launch.templates` (or GEODL_UPDATE_TEMPLATES=1 pytest)"
        )


def test_parse_sacct_counts_requeues_and_expands_pending_arrays() -> None:
    text = "7|REQUEUED\n7|RUNNING\n8|COMPLETED\n9_0|FAILED\n9_1|COMPLETED\n9_[2-3%2]|PENDING\n10|CANCELLED by 0\n"
    states = runs.parse_sacct(text)
    assert states["7"].state == "running" and states["7"].requeues == 1
    assert states["8"].state == "done" and states["9_0"].state == "failed"
    assert states["9_2"].state == states["9_3"].state == "pending"
    assert states["10"].state == "failed" and states["10"].slurm_state == "CANCELLED"
    assert runs.parse_sacct("7|REQUEUED\n7|PENDING\n")["7"].state == "requeued"


def test_wait_polls_once_per_round_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    sleeps: list[float] = []
    answers = iter(["1_0|RUNNING\n1_1|PENDING\n"] * 4 + ["1_0|COMPLETED\n1_1|COMPLETED\n"])

    def fake_sacct(args: list[str]) -> str:
        calls.append(args)
        return next(answers)

    monkeypatch.setattr(runs.time, "sleep", sleeps.append)
    states = runs.wait_for(["1"], first_interval_s=1, max_interval_s=2, runner=fake_sacct)
    assert {s.state for s in states.values()} == {"done"}
    assert len(calls) == 5 and all(c[c.index("-j") + 1] == "1" for c in calls)  # one call for every task
    assert sleeps == [1, 1.5, 2, 2]


def test_allocation_from_slurm_env_and_per_job_ports() -> None:
    env = {
        "SLURM_JOB_ID": "4242", "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_TASKS_PER_NODE": "4(x2)",
        "SLURM_CPUS_ON_NODE": "32", "SLURM_GPUS_ON_NODE": "4", "SLURM_MEM_PER_NODE": "1000",
    }  # fmt: skip
    alloc = Allocation.from_env(env)
    assert (alloc.rank, alloc.size, alloc.local_rank, alloc.local_size, alloc.node_index) == (5, 8, 1, 4, 1)
    assert alloc.hosts == ("gpu01", "gpu02") and alloc.head_host == "gpu01" and alloc.gpus_on_node == 4
    assert ports_for("4242") == ports_for("4242") and ports_for("4242") != ports_for("4243")
    a, b = ports_for("4242"), ports_for("4243")
    assert max(vars(a).values()) < min(vars(b).values()) or max(vars(b).values()) < min(vars(a).values())
    hvd = horovod_env(alloc, "10.0.0.1", "ib0")
    assert hvd["HOROVOD_RANK"] == "5" and hvd["HOROVOD_CROSS_RANK"] == "1" and hvd["HOROVOD_CROSS_SIZE"] == "2"
    assert hvd["HOROVOD_GLOO_RENDEZVOUS_PORT"] == str(alloc.ports.horovod_rendezvous)
    assert hvd["HOROVOD_CONTROLLER"] == hvd["HOROVOD_CPU_OPERATIONS"] == "gloo"
    head = ray_start_command(Allocation.from_env({**env, "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "localhost"}), "x")
    assert "--head" in head and f"--port={alloc.ports.ray_gcs}" in head and "--temp-dir=/tmp/geodl-ray-4242" in head
    assert "--num-cpus=32" in head and "--object-store-memory=314572800" in head


def test_job_runner_checkpoint_runs_hooks_and_requeues_itself() -> None:
    from geodl_hpc.launch.preemption import on_preemption

    saved: list[int] = []
    runner = JobRunner("resume_check", {"job": "resume_check", "steps": 1})
    with on_preemption(lambda: saved.append(1)):
        delayed = runner.checkpoint()
    assert saved == [1] and delayed.function is runner


def test_local_executor_run_and_status(tmp_path: Path) -> None:
    from jobs.cli import main

    config = REPO / "configs" / "resume_check.yaml"
    out = tmp_path / "rc"
    assert main(["run", str(config), "--cluster", "local", "steps=2", "step_seconds=0.05", f"output={out}"]) == 0
    status, states = runs.run_states(out)
    assert status["executor"] == "local" and [s.state for s in states.values()] == ["done"]
    text = runs.format_status(out, status, states)
    assert "local run: submitit's local executor on this machine, no Slurm" in text
    assert (out / "config.resolved.yaml").exists() and (out / "state.json").exists()
