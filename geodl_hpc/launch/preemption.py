"""Checkpoint hooks for preemption and walltime: what a job saves when Slurm says it must stop.

A job registers a hook while it works (``with on_preemption(save_state): ...``). When Slurm sends USR2 (the
profile's ``signal_delay_s`` before the time limit, ``scancel --signal=USR2``, or preemption), submitit calls
the runner's ``checkpoint`` method in the job's main thread; that runs every registered hook, then submitit
requeues the job and the new run resumes from what the hooks saved. The hooks are plain callables so the
training and inference loops can supply their own without importing submitit.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol


class PreemptionHook(Protocol):
    """Saves everything the job needs to resume; called once, in the main thread, before the job is requeued."""

    def __call__(self) -> None: ...


_HOOKS: list[PreemptionHook] = []


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
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
