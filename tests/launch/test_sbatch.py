"""The sbatch renderer: golden scripts, nothing user-supplied ever runs as shell code, and the cost numbers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from geodl_hpc.errors import GeodlError
from geodl_hpc.launch.sbatch import (
    LaunchError,
    SbatchSpec,
    array_size,
    format_plan,
    render_sbatch,
    resource_plan,
)

GOLDEN = Path(__file__).parent / "golden"

SPECS = {
    "minimal": SbatchSpec(job_name="hello", command=["echo", "hello"]),
    "gpu_array": SbatchSpec(
        job_name="unet-train.v2",
        command=["python", "-m", "jobs.train", "--config", "configs/unet.yaml", "train.lr=1e-3"],
        partition="gpu,gpu-long",
        account="geo-ml",
        qos="normal",
        nodes=2,
        ntasks_per_node=4,
        gpus_per_node=4,
        cpus_per_task=8,
        mem="200G",
        time_min=1500,
        constraint="a100&ib",
        array="0-99%8",
        output="logs/%x-%A_%a.out",
        error="logs/%x-%A_%a.err",
        chdir="/scratch/geo/run_1",
        signal="USR2@120",
        requeue=True,
        setup_lines=["module load cuda/12.4", "source /opt/venvs/geodl/bin/activate"],
    ),
    "hostile_args": SbatchSpec(
        job_name="safe",
        command=["printf", "%s\\n", "it's", "$(touch PWNED)", "`touch PWNED`", "a\nb; touch PWNED", '"; rm -rf ~ "'],
    ),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_render_matches_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.sbatch"
    text = render_sbatch(SPECS[name])
    if os.environ.get("GEODL_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"{path} missing; run with GEODL_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{path} differs; rerun with GEODL_UPDATE_GOLDEN=1 if the change is intended"


def test_render_is_pure_and_options_are_in_header() -> None:
    spec = SPECS["gpu_array"]
    text = render_sbatch(spec)
    assert text == render_sbatch(spec)
    header = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --time=1-01:00:00" in header and "#SBATCH --requeue" in header
    assert "#SBATCH --gpus-per-node=4" in header and "#SBATCH --signal=USR2@120" in header
    # every #SBATCH line sits before the first command, or sbatch ignores it
    first_code = next(i for i, line in enumerate(text.splitlines()) if line and not line.startswith("#"))
    assert all(i < first_code for i, line in enumerate(text.splitlines()) if line.startswith("#SBATCH"))
    assert "--gpus-per-node" not in render_sbatch(SPECS["minimal"])
    assert "#SBATCH --no-requeue" in render_sbatch(SPECS["minimal"])


HOSTILE = [
    "x; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "x\ntouch PWNED",
    "x\rtouch PWNED",
    "x' ; touch PWNED ; '",
    'x" ; touch PWNED ; "',
    "x && touch PWNED",
    "x | touch PWNED",
    "x > PWNED",
    "${PWNED:=1}",
    "x y",
    "",
]
SBATCH_FIELDS = ["job_name", "partition", "account", "qos", "output", "error", "chdir", "constraint", "signal", "mem"]


@pytest.mark.parametrize("field", [*SBATCH_FIELDS, "array"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_sbatch_values_are_rejected_naming_the_field(field: str, value: str) -> None:
    kwargs: dict[str, Any] = {"job_name": "ok", "command": ["echo"], field: value}
    with pytest.raises(LaunchError, match=rf"^sbatch\.{field}: ") as info:
        SbatchSpec(**kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert isinstance(info.value, GeodlError)


def test_replace_revalidates() -> None:
    with pytest.raises(LaunchError, match=r"^sbatch\.job_name: 'a\$\(id\)' contains '\$'"):
        dataclasses.replace(SPECS["minimal"], job_name="a$(id)")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"nodes": 0}, r"sbatch\.nodes: must be at least 1, got 0"),
        ({"time_min": 0}, r"sbatch\.time_min: must be at least 1"),
        ({"gpus_per_node": -1}, r"sbatch\.gpus_per_node: must be at least 0"),
        ({"cpus_per_task": True}, r"sbatch\.cpus_per_task: expected an integer"),
        ({"ntasks_per_node": "2"}, r"sbatch\.ntasks_per_node: expected an integer"),
        ({"requeue": "yes"}, r"sbatch\.requeue: expected true or false"),
        ({"command": []}, r"sbatch\.command: is empty"),
        ({"command": ["-rf"]}, r"sbatch\.command\[0\]: '-rf' starts with '-'"),
        ({"command": ["echo", "a\0b"]}, r"sbatch\.command\[1\]: .* NUL byte"),
        ({"command": ["echo", 3]}, r"sbatch\.command\[1\]: expected a string, got int"),
        ({"setup_lines": ["module load x\nrm -rf /"]}, r"sbatch\.setup_lines\[0\]: .* is not one line"),
        ({"array": "5-1"}, r"sbatch\.array: range '5-1' ends before it starts"),
        ({"array": "0-99%0"}, r"sbatch\.array: '0-99%0' is malformed"),
        ({"mem": "16GB"}, r"sbatch\.mem: '16GB' contains 'B'"),
        ({"job_name": "x" * 129}, r"sbatch\.job_name: .* is malformed"),
        ({"job_name": None}, r"sbatch\.job_name: expected a string, got NoneType"),
        ({"command": "python train.py"}, r"sbatch\.command: got one string; give a list"),
        ({"setup_lines": "module load x"}, r"sbatch\.setup_lines: got one string; give a list"),
        ({"signal": "USR2@"}, r"sbatch\.signal: 'USR2@' is malformed"),
    ],
)
def test_bad_values_give_one_line_errors(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(LaunchError, match=match):
        dataclasses.replace(SPECS["minimal"], **changes)


def test_valid_unusual_values_are_accepted() -> None:
    spec = SbatchSpec(
        job_name="a.b+c-d_e",
        command=["true"],
        partition="p1,p-2",
        output="/scratch/u@x/%x-%j.out",
        constraint="[rack1|rack2]&(a100|h100)*2",
        signal="B:SIGUSR1@60",
        array="1,3,5-9,20-30:5%2",
        mem="512M",
    )
    assert "#SBATCH --constraint=[rack1|rack2]&(a100|h100)*2" in render_sbatch(spec)


def _fake_srun(tmp_path: Path) -> dict[str, str]:
    """Environment whose `srun` drops its options and runs the rest, so the script runs outside Slurm."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    srun = bindir / "srun"
    srun.write_text('#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


HOSTILE_ARGS = [
    *HOSTILE,
    "it's",
    "'",
    '"',
    "\\",
    "$HOME",
    "$'\\x41'",
    "!!",
    "*",
    "~",
    "-n",
    "#comment",
    "a\n\nb",
    "a\r\nb",
    "tab\there",
    "\x01\x1b[31m\x7f",
    "\\x41\\'",
    "it's\n\\x41\\\x0a'",
    "ünïcödé",
]


def test_hostile_arguments_reach_the_program_unchanged_and_run_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "decoy").write_text("")  # so an unquoted * would expand to something visible
    spec = SbatchSpec(job_name="safe", command=["printf", "%s\\0", *HOSTILE_ARGS], setup_lines=["cd ."])
    script = tmp_path / "job.sbatch"
    text = render_sbatch(spec)
    script.write_text(text)
    assert "\r" not in text and text.splitlines()[-1].startswith("exec srun "), "the command must stay one line"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    done = subprocess.run(["bash", str(script)], cwd=work, env=_fake_srun(tmp_path), capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split("\0")[:-1] == HOSTILE_ARGS
    assert sorted(p.name for p in work.iterdir()) == ["decoy"]


@pytest.mark.parametrize("value", HOSTILE)
def test_echo_of_a_hostile_argument_creates_no_file(tmp_path: Path, value: str) -> None:
    script = tmp_path / "job.sbatch"
    script.write_text(render_sbatch(SbatchSpec(job_name="echo", command=["echo", value])))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    done = subprocess.run(["bash", str(script)], cwd=tmp_path, env=_fake_srun(tmp_path), capture_output=True)
    assert done.returncode == 0 and done.stdout.decode() == value + "\n"
    assert not (tmp_path / "PWNED").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "job.sbatch"]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (None, (1, 1)),
        ("0", (1, 1)),
        ("0-99%8", (100, 8)),
        ("1,3,5-9", (7, 7)),
        ("0-10:2", (6, 6)),
        ("0-3,2-5", (6, 6)),
        ("0-1%8", (2, 2)),
    ],
)
def test_array_size(array: str | None, expected: tuple[int, int]) -> None:
    assert array_size(array) == expected


def test_resource_plan_numbers() -> None:
    plan = resource_plan(SPECS["gpu_array"])
    assert plan["nodes"] == 2 and plan["gpus_per_node"] == 4 and plan["gpus"] == 8
    assert plan["tasks"] == 8 and plan["cpus"] == 64
    assert plan["walltime"] == "1-01:00:00" and plan["walltime_min"] == 1500
    assert plan["array_tasks"] == 100 and plan["array_concurrent"] == 8
    assert plan["gpu_hours"] == 8 * 25 * 100 == 20000
    assert plan["cpu_hours"] == 64 * 25 * 100 == 160000
    text = format_plan(plan)
    assert "2 node(s) x 4 GPUs (8 GPUs)" in text
    assert "8 task(s) (4 per node) x 8 CPU(s) = 64 CPUs, 200G memory per node" in text
    assert "walltime limit 1-01:00:00 x 100 array tasks (8 at a time)" in text
    assert "at most 20000 GPU-hours, 160000 CPU-hours" in text


def test_array_size_rejects_malformed_input() -> None:
    with pytest.raises(LaunchError, match=r"^sbatch\.array: '1-x' is malformed"):
        array_size("1-x")


def test_plan_hours_are_plain_numbers() -> None:
    spec = SbatchSpec(job_name="big", command=["true"], nodes=64, gpus_per_node=8, time_min=2880, array="0-9")
    text = format_plan(resource_plan(spec))
    assert "at most 245760 GPU-hours, 30720 CPU-hours" in text
    quarter = SbatchSpec(job_name="short", command=["true"], time_min=15)
    assert "at most 0 GPU-hours, 0.25 CPU-hours" in format_plan(resource_plan(quarter))


def test_resource_plan_without_gpus() -> None:
    plan = resource_plan(SbatchSpec(job_name="cpu", command=["true"], cpus_per_task=4, time_min=90))
    assert (plan["gpus"], plan["gpu_hours"], plan["cpu_hours"], plan["walltime"]) == (0, 0.0, 6.0, "01:30:00")
    text = format_plan(plan)
    assert "(no GPUs)" in text and "array" not in text and "at most 0 GPU-hours, 6 CPU-hours" in text
