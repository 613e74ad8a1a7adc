"""One pure renderer for every sbatch script this project hands to Slurm, plus what a job will cost.

``#SBATCH`` lines are comments to the shell, so their values cannot be quoted: each is checked against a strict
pattern and anything else is a :class:`LaunchError` naming the field. The command is argv, every word quoted
(``shlex.quote``, or bash ``$'...'`` escapes for control characters), so job names, paths and arguments never
reach the shell as code. ``setup_lines`` (module loads, venv activation) come from a trusted cluster profile and
are written verbatim.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from geodl_hpc.errors import GeodlError


class LaunchError(GeodlError):
    """A job spec cannot be turned into a safe sbatch script (names the field and what is allowed)."""


# Values written after ``#SBATCH --option=``: (allowed characters, full pattern, what to use instead). None of
# them admits whitespace, quotes, ``$``, backticks, ``;`` or a newline.
_WORD = r"A-Za-z0-9_.+\-"
_PATH_CHARS = r"A-Za-z0-9_./%+,=@:\-"
_RANGE = r"[0-9]+(-[0-9]+(:[1-9][0-9]*)?)?"
_PATH_HELP = "a path of letters, digits and _./%+,=@:- (no spaces or shell characters)"
_RULES: dict[str, tuple[str, str, str]] = {
    "job_name": (_WORD, r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}", "letters, digits and ._+- (at most 128)"),
    "partition": (_WORD + ",", r"[A-Za-z0-9][A-Za-z0-9_.+-]*(,[A-Za-z0-9][A-Za-z0-9_.+-]*)*", "names joined by ,"),
    "account": (_WORD, r"[A-Za-z0-9][A-Za-z0-9_.+-]*", "letters, digits and ._+-"),
    "qos": (_WORD, r"[A-Za-z0-9][A-Za-z0-9_.+-]*", "letters, digits and ._+-"),
    "mem": ("0-9KMGT", r"[1-9][0-9]*[KMGT]?", "a positive integer with an optional K, M, G or T suffix, e.g. 16G"),
    "constraint": (_WORD + r"&|,\[\]*()", r"[A-Za-z0-9_.+\-&|,\[\]*()]+", "feature names joined by & | ,"),
    "array": (r"0-9,:%\-", rf"{_RANGE}(,{_RANGE})*(%[1-9][0-9]*)?", "index ranges like 0-99%8, 1,3,5-9 or 0-10:2"),
    "output": (_PATH_CHARS, f"[{_PATH_CHARS}]+", _PATH_HELP),
    "error": (_PATH_CHARS, f"[{_PATH_CHARS}]+", _PATH_HELP),
    "chdir": (_PATH_CHARS, f"[{_PATH_CHARS}]+", _PATH_HELP),
    "signal": ("A-Z0-9:@", r"([BR]{1,2}:)?([A-Z][A-Z0-9]*|[1-9][0-9]?)(@[0-9]+)?", "e.g. USR2@120 or B:USR1@60"),
}
_CHECKS = {name: (re.compile(f"[^{chars}]"), re.compile(full)) for name, (chars, full, _) in _RULES.items()}
_MAX_ARRAY_TASKS = 10_000_000


def _show(value: str) -> str:
    """A value as one printable line (repr escapes newlines), shortened for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class SbatchSpec:
    """Everything one sbatch job needs; validated on creation, so a spec that exists renders safely."""

    job_name: str
    command: Sequence[str]
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    nodes: int = 1
    ntasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem: str | None = None  # per node, e.g. "16G"
    time_min: int = 60
    constraint: str | None = None
    array: str | None = None  # e.g. "0-99%8"
    output: str | None = None  # Slurm patterns allowed: %j, %x, %A, %a, ...
    error: str | None = None
    chdir: str | None = None
    signal: str | None = None  # e.g. "USR2@120": warn the job 120 s before its time limit
    requeue: bool = False
    setup_lines: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name in ("command", "setup_lines"):
            if isinstance(getattr(self, name), str | bytes):
                raise LaunchError(f"sbatch.{name}: got one string; give a list (one word or line per entry)")
        # Freeze the sequences so a spec cannot change after it was validated.
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "setup_lines", tuple(self.setup_lines))
        _validate(self)


def _validate(spec: SbatchSpec) -> None:
    for name, (bad_char, full) in _CHECKS.items():
        value = getattr(spec, name)
        if value is None and name != "job_name":
            continue
        if not isinstance(value, str):
            raise LaunchError(f"sbatch.{name}: expected a string, got {type(value).__name__}")
        if full.fullmatch(value) is None:
            bad = bad_char.search(value)
            what = f"contains {bad.group()!r}" if bad else "is malformed"
            raise LaunchError(f"sbatch.{name}: {_show(value)} {what}; use {_RULES[name][2]}")
    minimum = {"nodes": 1, "ntasks_per_node": 1, "gpus_per_node": 0, "cpus_per_task": 1, "time_min": 1}
    for name, low in minimum.items():
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise LaunchError(f"sbatch.{name}: expected an integer, got {value!r}")
        if value < low:
            raise LaunchError(f"sbatch.{name}: must be at least {low}, got {value}")
    array_size(spec.array)  # ranges that end before they start
    if not isinstance(spec.requeue, bool):
        raise LaunchError(f"sbatch.requeue: expected true or false, got {spec.requeue!r}")
    if not spec.command:
        raise LaunchError("sbatch.command: is empty; give the program and its arguments as a list")
    for i, word in enumerate(spec.command):
        if not isinstance(word, str):
            raise LaunchError(f"sbatch.command[{i}]: expected a string, got {type(word).__name__}")
        if "\0" in word:
            raise LaunchError(f"sbatch.command[{i}]: {_show(word)} contains a NUL byte, which no program can receive")
    if spec.command[0].startswith("-"):
        raise LaunchError(f"sbatch.command[0]: {_show(spec.command[0])} starts with '-'; it must name a program")
    for i, line in enumerate(spec.setup_lines):
        if not isinstance(line, str):
            raise LaunchError(f"sbatch.setup_lines[{i}]: expected a string, got {type(line).__name__}")
        if any(c in line for c in "\n\r\0"):
            raise LaunchError(f"sbatch.setup_lines[{i}]: {_show(line)} is not one line; give one entry per line")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _quote(word: str) -> str:
    """``shlex.quote``, except that words with control characters become bash ``$'...'`` with ``\\xHH`` escapes.

    That keeps the command on one line: sbatch refuses scripts with ``\\r\\n`` in them, and a quoted newline
    would otherwise split the command over lines.
    """
    if _CONTROL.search(word) is None:
        return shlex.quote(word)
    escaped = word.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped) + "'"


def _minutes_to_slurm(minutes: int) -> str:
    """Slurm's time format: ``HH:MM:SS``, or ``D-HH:MM:SS`` from one day up."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours:02d}:{mins:02d}:00"


def render_sbatch(spec: SbatchSpec) -> str:
    """The sbatch script for ``spec``: ``#SBATCH`` header, setup lines, then the command under ``srun``.

    The command runs as one ``srun`` step with ``exec``, so signals from ``--signal`` (with or without ``B:``)
    reach it and every task of a multi-task job runs it once. Pure: same spec, same text.
    """
    _validate(spec)
    options: list[tuple[str, str | None]] = [("job-name", spec.job_name)]
    for name in ("partition", "account", "qos"):
        value = getattr(spec, name)
        if value is not None:
            options.append((name, value))
    options += [
        ("nodes", str(spec.nodes)),
        ("ntasks-per-node", str(spec.ntasks_per_node)),
        ("cpus-per-task", str(spec.cpus_per_task)),
    ]
    if spec.gpus_per_node:
        options.append(("gpus-per-node", str(spec.gpus_per_node)))
    if spec.mem is not None:
        options.append(("mem", spec.mem))
    options.append(("time", _minutes_to_slurm(spec.time_min)))
    for name in ("constraint", "array", "output", "error", "chdir", "signal"):
        value = getattr(spec, name)
        if value is not None:
            options.append((name, value))
    options.append(("requeue" if spec.requeue else "no-requeue", None))

    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH --{key}" if value is None else f"#SBATCH --{key}={value}" for key, value in options]
    lines += ["", "# Rendered by geodl_hpc.launch.sbatch: change the spec, not this file.", "set -eo pipefail"]
    if spec.setup_lines:
        lines += ["", "# Setup from the cluster profile.", *spec.setup_lines]
    srun = ["srun", "--unbuffered", "--kill-on-bad-exit=1", f"--cpus-per-task={spec.cpus_per_task}"]
    lines += ["", "exec " + " ".join(srun + [_quote(word) for word in spec.command]), ""]
    return "\n".join(lines)


class ResourcePlan(TypedDict):
    """What a job asks for at most: every number assumes each array task runs to its time limit."""

    job_name: str
    nodes: int
    gpus_per_node: int
    gpus: int
    tasks_per_node: int
    tasks: int
    cpus_per_task: int
    cpus: int
    mem_per_node: str | None
    walltime: str
    walltime_min: int
    array_tasks: int
    array_concurrent: int
    gpu_hours: float
    cpu_hours: float


def array_size(array: str | None) -> tuple[int, int]:
    """Number of array tasks in ``array`` (e.g. ``"0-99%8"``) and how many run at once (all if no ``%``)."""
    if array is None:
        return 1, 1
    if _CHECKS["array"][1].fullmatch(array) is None:
        raise LaunchError(f"sbatch.array: {_show(array)} is malformed; use {_RULES['array'][2]}")
    body, _, limit = array.partition("%")
    indices: set[int] = set()
    for part in body.split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        start, stop = int(first), int(last or first)
        if stop < start:
            raise LaunchError(f"sbatch.array: range {part!r} ends before it starts")
        if stop - start > _MAX_ARRAY_TASKS:
            raise LaunchError(f"sbatch.array: range {part!r} has more than {_MAX_ARRAY_TASKS} tasks")
        indices.update(range(start, stop + 1, int(step or 1)))
    count = len(indices)
    return count, min(count, int(limit)) if limit else count


def resource_plan(spec: SbatchSpec) -> ResourcePlan:
    """Nodes x GPUs, tasks, walltime and the GPU-hours / CPU-hours the job may use, for review before sbatch."""
    _validate(spec)
    array_tasks, concurrent = array_size(spec.array)
    gpus = spec.nodes * spec.gpus_per_node
    tasks = spec.nodes * spec.ntasks_per_node
    cpus = tasks * spec.cpus_per_task
    hours = spec.time_min / 60 * array_tasks
    return ResourcePlan(
        job_name=spec.job_name,
        nodes=spec.nodes,
        gpus_per_node=spec.gpus_per_node,
        gpus=gpus,
        tasks_per_node=spec.ntasks_per_node,
        tasks=tasks,
        cpus_per_task=spec.cpus_per_task,
        cpus=cpus,
        mem_per_node=spec.mem,
        walltime=_minutes_to_slurm(spec.time_min),
        walltime_min=spec.time_min,
        array_tasks=array_tasks,
        array_concurrent=concurrent,
        gpu_hours=round(gpus * hours, 2),
        cpu_hours=round(cpus * hours, 2),
    )


def _hours(value: float) -> str:
    """1600.0 -> "1600", 0.25 -> "0.25": plain digits, never exponent notation."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def format_plan(plan: ResourcePlan) -> str:
    """The plan as a few lines a user reads before submitting."""
    gpu_part = f" x {plan['gpus_per_node']} GPUs ({plan['gpus']} GPUs)" if plan["gpus"] else " (no GPUs)"
    mem = f", {plan['mem_per_node']} memory per node" if plan["mem_per_node"] else ""
    lines = [
        f"job {plan['job_name']}: {plan['nodes']} node(s){gpu_part}",
        f"  {plan['tasks']} task(s) ({plan['tasks_per_node']} per node) x {plan['cpus_per_task']} CPU(s)"
        f" = {plan['cpus']} CPUs{mem}",
        f"  walltime limit {plan['walltime']}"
        + (
            f" x {plan['array_tasks']} array tasks ({plan['array_concurrent']} at a time)"
            if plan["array_tasks"] > 1
            else ""
        ),
        f"  at most {_hours(plan['gpu_hours'])} GPU-hours, {_hours(plan['cpu_hours'])} CPU-hours",
    ]
    return "\n".join(lines)
