"""Checkpoint hooks for preemption and walltime: what a job saves when Slurm says it must stop.

A job registers a hook while it works (``with on_preemption(save_state): ...``). When Slurm sends USR2 (the
profile's ``signal_delay_s`` before the time limit, ``scancel --signal=USR2``, or preemption), submitit calls
the runner's ``checkpoint`` method in the job's main thread; that runs every registered hook, then submitit
requeues the job and the new run resumes from what the hooks saved. The hooks are plain callables so the
training and inference loops can supply their own without importing submitit.

Jobs that catch USR2/TERM themselves (the training loop does, so that every rank agrees on the step to stop at)
take the other path: they checkpoint, then return a result with ``status`` :data:`PREEMPTED`. The launcher
(``JobRunner``) sees that status and calls :func:`requeue_if_preempted`, which runs submitit's own
checkpoint-and-requeue handler: on rank 0 the hooks run, the job is resubmitted (``scontrol requeue`` on Slurm,
counted against ``max_num_timeout`` near the walltime) and the task exits; every other rank returns its result and
exits cleanly, so one job gets exactly one requeue. The job code never learns about Slurm or submitit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from geodl_hpc.osutil import atomic_write_text, pid_alive


class PreemptionHook(Protocol):
    """Saves everything the job needs to resume; called once, in the main thread, before the job is requeued."""

    def __call__(self) -> None: ...


_HOOKS: list[PreemptionHook] = []

PREEMPTED = "preempted"  # a job result's ``status`` that asks the launcher to requeue the job

RequeueHandler = Callable[[int, object], None]


@contextlib.contextmanager
def on_preemption(hook: PreemptionHook) -> Iterator[None]:
    """Run ``hook`` if the job is preempted or reaches its time limit while inside this block."""
    _HOOKS.append(hook)
    try:
        yield
    finally:
        _HOOKS.remove(hook)


def run_hooks() -> int:
    """Call every registered hook, newest first; return how many ran."""
    hooks = list(reversed(_HOOKS))
    for hook in hooks:
        hook()
    return len(hooks)


def restart_count() -> int:
    """How many times Slurm has requeued this job (0 on the first run and outside Slurm)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def save_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a requeued job) never sees a half-written file."""
    atomic_write_text(Path(path), json.dumps(data))


def submitit_requeue_handler() -> RequeueHandler | None:
    """submitit's checkpoint-and-requeue handler of this process (installed before the job starts), else None.

    Call it when the job starts, before the job's code can replace the USR2 handler with its own.
    """
    handler = signal.getsignal(signal.SIGUSR2)
    try:
        from submitit.core.job_environment import SignalHandler
    except ImportError:
        return None
    if isinstance(getattr(handler, "__self__", None), SignalHandler):
        return handler  # type: ignore[return-value]
    return None


def requeue_if_preempted(result: Any, handler: RequeueHandler | None) -> None:
    """Requeue the job when ``result`` reports ``status == PREEMPTED`` and the job runs under submitit.

    Rank 0 runs the hooks, resubmits and exits (``SystemExit``; submitit's ``UncompletedJobError`` once the job
    timed out too often); any other rank returns so that it ends cleanly. Outside submitit this does nothing:
    the caller gets the result and reruns the job on the same output to resume.
    """
    if not (isinstance(result, dict) and result.get("status") == PREEMPTED) or handler is None:
        return
    print(f"[launch] job returned status {PREEMPTED!r}: checkpoint-and-requeue through submitit", file=sys.stderr)
    wait_for_other_ranks()
    handler(signal.SIGUSR2, None)


def _marker(folder: Path, job_id: str, rank: int) -> Path:
    return Path(folder) / f".{job_id}_{rank}_preempted.json"


def wait_for_other_ranks(timeout_s: float = 60.0) -> bool:
    """Order the ranks of a multi-task submitit job before its requeue (which stops every task of the job).

    Every other rank leaves a marker (host, pid, restart count) in submitit's folder and goes on to end
    normally (its result written, the process exiting); rank 0 waits until each of them has exited (a process on
    its own node) or written this run's result (another node; then a short grace), so that no rank is cut off.
    True when all were seen (or there is nothing to wait for), False after ``timeout_s``.
    """
    try:
        import submitit
        from submitit.core.utils import JobPaths

        env = submitit.JobEnvironment()
        folder = env.paths.folder
    except (ImportError, KeyError, RuntimeError):
        return True
    if env.num_tasks <= 1:
        return True
    host, restart = socket.gethostname(), restart_count()
    if env.global_rank != 0:
        mark = {"host": host, "pid": os.getpid(), "restart": restart}
        save_json_atomic(_marker(folder, env.job_id, env.global_rank), mark)
        return True
    deadline = time.monotonic() + timeout_s
    pending = set(range(1, env.num_tasks))
    while pending and time.monotonic() < deadline:
        for rank in sorted(pending):
            with contextlib.suppress(OSError, ValueError):
                mark = json.loads(_marker(folder, env.job_id, rank).read_text())
                if mark["restart"] != restart:
                    continue  # the marker of a run before the last requeue
                if mark["host"] == host:
                    if not pid_alive(int(mark["pid"])):
                        pending.discard(rank)
                    continue
                result = JobPaths(folder, job_id=env.job_id, task_id=rank).result_pickle
                if result.exists() and result.stat().st_mtime >= _marker(folder, env.job_id, rank).stat().st_mtime:
                    time.sleep(1.0)  # another node: its result is written; let the process end
                    pending.discard(rank)
        time.sleep(0.1)
    if pending:
        print(f"[launch] ranks {sorted(pending)} still running after {timeout_s:.0f} s; requeueing", file=sys.stderr)
    return not pending
