"""Run folders and task states: what was submitted where, and what Slurm says about it now.

A run folder holds ``run.json`` (the status file: job, profile, executor, job ids, log folder),
``config.resolved.yaml``, ``job.sbatch`` (the rendered script) and ``logs/<stamp>/`` (submitit's folder with one
log per rank and task). States come from one batched ``sacct`` call for every job id of a run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geodl_hpc.launch.sbatch import LaunchError
from geodl_hpc.osutil import atomic_write_text, pid_alive

log = logging.getLogger(__name__)

STATUS_FILE = "run.json"
# Slurm states by what they mean for a task; anything unlisted counts as failed.
_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING"}
_RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
_DONE = {"COMPLETED"}
LIVE_STATES = _PENDING | _RUNNING


@dataclasses.dataclass(frozen=True)
class TaskState:
    """One task (a job, or one array element) as ``geodl status`` shows it."""

    task: str
    state: str  # pending | running | done | failed | requeued | unknown (local, result not read)
    slurm_state: str
    requeues: int = 0

    @property
    def live(self) -> bool:
        return self.state in ("pending", "running", "requeued")


def _classify(raw: str, requeues: int) -> str:
    if raw in _PENDING:
        return "requeued" if requeues or raw.startswith("REQUEUE") else "pending"
    if raw in _RUNNING:
        return "running"
    return "done" if raw in _DONE else "failed"


def _expand(task: str) -> list[str]:
    """``12_[2-3%2]`` (pending array tasks in one sacct line) -> ``["12_2", "12_3"]``."""
    match = re.fullmatch(r"(\d+)_\[([0-9,\-]+)(%\d+)?\]", task)
    if match is None:
        return [task]
    base, ranges = match.group(1), match.group(2)
    out: list[str] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        out += [f"{base}_{i}" for i in range(int(first), int(last or first) + 1)]
    return out


def parse_sacct(text: str) -> dict[str, TaskState]:
    """Parse ``sacct -X -D -n -P -o JobID,State`` output: last record wins, earlier ones count as requeues."""
    records: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        job_id, _, state = line.partition("|")
        raw = state.split("|")[0].split(" ")[0].strip()  # "CANCELLED by 0" -> "CANCELLED"
        for task in _expand(job_id.strip()):
            records.setdefault(task, []).append(raw)
    states = {}
    for task, raws in records.items():
        requeues = sum(1 for r in raws[:-1] if r in ("REQUEUED", "PREEMPTED", "TIMEOUT", "NODE_FAIL"))
        states[task] = TaskState(task, _classify(raws[-1], requeues), raws[-1], requeues)
    return states


def sacct_states(job_ids: Sequence[str], runner: Callable[[list[str]], str] | None = None) -> dict[str, TaskState]:
    """States of every task of ``job_ids`` from ONE sacct call (array ids expand to their tasks)."""
    if not job_ids:
        return {}
    args = ["sacct", "-X", "-D", "-n", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)]
    text = (runner or _run)(args)
    return parse_sacct(text)


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise LaunchError(f"{args[0]} is not on PATH; run this where Slurm's commands are installed") from None
    except subprocess.TimeoutExpired:
        raise LaunchError(f"{args[0]} did not answer within 60 s; is slurmdbd up? try again later") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise LaunchError(f"{args[0]} failed: {message}")
    return done.stdout


def _squeue_live(job_ids: Sequence[str]) -> set[str]:
    """Ids among ``job_ids`` that squeue still knows (covers jobs sacct has not recorded yet)."""
    done = subprocess.run(
        ["squeue", "-h", "-o", "%i|%F", "-j", ",".join(job_ids)], capture_output=True, text=True, timeout=60
    )
    live = set()
    for line in done.stdout.splitlines():
        task, _, array_base = line.partition("|")
        live.update({task.strip(), array_base.strip()})
    return live & set(job_ids)


def wait_for(
    job_ids: Sequence[str],
    *,
    first_interval_s: float = 1.0,
    max_interval_s: float = 30.0,
    timeout_s: float | None = None,
    expected_tasks: int | None = None,
    runner: Callable[[list[str]], str] | None = None,
) -> dict[str, TaskState]:
    """Poll sacct (one call for all ids) until every task has ended; the interval grows 1.5x up to a cap."""
    interval = first_interval_s
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        states = sacct_states(job_ids, runner)
        enough = expected_tasks is None or len(states) >= expected_tasks
        if states and enough and not any(s.live for s in states.values()):
            return states
        if deadline is not None and time.monotonic() > deadline:
            raise LaunchError(f"jobs {','.join(job_ids)} still running after {timeout_s:.0f} s; see geodl status")
        time.sleep(interval)
        interval = min(max_interval_s, interval * 1.5)


# ----------------------------------------------------------------------------------------------- status file
def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json``; one-line error when RUN is not a run folder."""
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        raise LaunchError(f"{run_dir}: not a run folder (no {STATUS_FILE}); give the folder geodl submit printed")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LaunchError(f"{path}: unreadable status file ({exc}); resubmit into a fresh folder") from None
    return data


def write_status(run_dir: Path, data: dict[str, Any]) -> None:
    """Write ``run.json`` atomically."""
    atomic_write_text(Path(run_dir) / STATUS_FILE, json.dumps(data, indent=2) + "\n")


def outcome_path(folder: Path, job_id: str) -> Path:
    """Where a batch task records how it ended, as JSON (``geodl status`` reads this, never a pickle)."""
    return Path(folder) / f"{job_id}_outcome.json"


def write_outcome(state: str, detail: str = "") -> None:
    """Inside a submitit task (rank 0 only): record ``done``/``failed`` as JSON next to submitit's logs."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        if env.global_rank != 0:
            return
        folder = Path(env.paths.folder)
        job_id = str(env.job_id)
    except (ImportError, RuntimeError, KeyError):
        return  # not in a submitit task (a test calling the runner directly)
    record = {"state": state, "detail": detail[:500], "at": time.time()}
    atomic_write_text(outcome_path(folder, job_id), json.dumps(record) + "\n")


def local_states(run_dir: Path, status: dict[str, Any], *, unpickle: bool = False) -> dict[str, TaskState]:
    """States of a local (submitit local executor) run: the process, then the task's own outcome JSON.

    submitit's ``*_result.pkl`` is only unpickled with ``unpickle=True`` (``geodl status --unpickle-results``):
    unpickling runs whatever code the file names, and a run folder may come from someone else.
    """
    logs = Path(run_dir) / status["logs"]
    states = {}
    for job_id in status["job_ids"]:
        outcome = outcome_path(logs, job_id)
        result = logs / f"{job_id}_0_result.pkl"
        if pid_alive(int(job_id)):
            states[job_id] = TaskState(job_id, "running", "RUNNING")
        elif outcome.is_file():
            ok = _outcome_state(outcome) == "done"
            states[job_id] = TaskState(job_id, "done" if ok else "failed", "FINISHED" if ok else "ERROR")
        elif result.exists() and unpickle:
            ok = _result_ok(result)
            states[job_id] = TaskState(job_id, "done" if ok else "failed", "FINISHED" if ok else "ERROR")
        elif result.exists():
            states[job_id] = TaskState(job_id, "unknown", "ENDED (result.pkl not read)")
        else:
            states[job_id] = TaskState(job_id, "failed", "NO RESULT")
    return states


def _outcome_state(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return "failed"
    return str(data.get("state", "failed")) if isinstance(data, dict) else "failed"


def _result_ok(path: Path) -> bool:
    import pickle

    log.warning("%s: unpickling a result file (this runs any code it contains; only for run folders you trust)", path)
    try:
        with path.open("rb") as f:
            outcome = pickle.load(f)
    except Exception:
        return False
    return isinstance(outcome, tuple) and bool(outcome) and outcome[0] == "success"


def run_states(run_dir: Path, *, unpickle: bool = False) -> tuple[dict[str, Any], dict[str, TaskState]]:
    """The status file and every task's state (sacct for Slurm runs, the task's outcome JSON for local runs)."""
    status = read_status(run_dir)
    if status["executor"] == "local":
        return status, local_states(run_dir, status, unpickle=unpickle)
    states = sacct_states(status["job_ids"])
    missing = [j for j in status["job_ids"] if j not in states and not any(t.startswith(f"{j}_") for t in states)]
    if missing:  # submitted a moment ago: slurmdbd has not recorded it yet
        for job_id in _squeue_live(missing):
            states[job_id] = TaskState(job_id, "pending", "PENDING")
    return status, states


def live_tasks(run_dir: Path) -> list[TaskState]:
    """Tasks of the run in ``run_dir`` that are pending or running (empty when no run folder is there)."""
    if not (Path(run_dir) / STATUS_FILE).is_file():
        return []
    try:
        _, states = run_states(run_dir)
    except LaunchError:
        return []
    return [s for s in states.values() if s.live]


def format_status(run_dir: Path, status: dict[str, Any], states: dict[str, TaskState]) -> str:
    """What ``geodl status RUN`` prints: one header line, one line per task, one summary line."""
    head = (
        f"run {run_dir}: job {status['job']} on {status['profile']} ({status['executor']}), "
        f"submitted {status['submitted_at']}"
    )
    if status["executor"] == "local":
        head += "\n  local run: submitit's local executor on this machine, no Slurm; job id = process id"
    lines = [head]
    for task in sorted(states, key=_task_key):
        s = states[task]
        note = f"  requeued {s.requeues}x" if s.requeues else ""
        lines.append(f"  {task:<14} {s.state:<9} {s.slurm_state}{note}")
    if not states:
        lines.append("  no task known to Slurm yet (just submitted, or purged from accounting)")
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines.append(f"  {len(states)} task(s): {summary or 'none'}; logs in {Path(run_dir) / status['logs']}")
    return "\n".join(lines)


def _task_key(task: str) -> tuple[int, int, str]:
    base, _, index = task.partition("_")
    return (int(base) if base.isdigit() else 0, int(index) if index.isdigit() else -1, task)
