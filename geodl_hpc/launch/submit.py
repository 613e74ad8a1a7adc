"""Submit a registered job through submitit: Slurm (``SlurmExecutor``) or this machine (``LocalExecutor``).

How the script submitit writes carries the resources ``--dry-run`` shows: a submission builds ONE
:class:`SbatchSpec` from the profile (:func:`profiles.sbatch_spec`); ``render_sbatch(spec)`` is what the user
reviews and what lands in ``RUN/job.sbatch``, and :func:`submitit_parameters` converts the same spec field by
field into submitit's parameters (``mem`` and ``requeue`` through ``additional_parameters``, srun's options
through ``srun_args``). ``tests/launch/test_submit.py`` compares the ``#SBATCH`` lines of both scripts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from geodl_hpc import registry
from geodl_hpc.config import dump_config, to_dict
from geodl_hpc.launch import runs
from geodl_hpc.launch.profiles import ClusterProfile, require_slurm, sbatch_spec
from geodl_hpc.launch.sbatch import LaunchError, SbatchSpec, format_plan, render_sbatch, resource_plan

MAX_REQUEUES = 5  # times one job may be requeued after timeouts before it fails


class JobRunner:
    """The picklable callable submitit runs: rebuilds the config and calls the job's ``main``.

    The runner carries the job's registry entry (import paths), so the batch process imports the job from the
    entry alone and needs no registry of its own (see :mod:`geodl_hpc.registry`).

    ``checkpoint`` makes it checkpointable for submitit: on USR2 it runs the job's preemption hooks and asks
    submitit to requeue the same runner, whose job then resumes from what the hooks saved. A job that handles
    the signal itself (training) returns ``status == "preempted"`` instead; the runner then goes through the same
    submitit handler (one requeue, from rank 0; see ``preemption.requeue_if_preempted``).
    """

    def __init__(self, job: str, config: dict[str, Any]) -> None:
        self.job = job
        self.config = config
        self.entry = registry.entry(job)

    def __call__(self) -> dict[str, Any]:
        from geodl_hpc.archive.integrity import enable_checked_reads
        from geodl_hpc.launch.preemption import requeue_if_preempted, submitit_requeue_handler

        enable_checked_reads()
        handler = submitit_requeue_handler()  # before the job installs its own USR2/TERM handler
        try:
            result = self.entry.main(self.entry.config_from_dict(self.config))
        except BaseException as exc:
            runs.write_outcome("failed", f"{type(exc).__name__}: {exc}")
            raise
        requeue_if_preempted(result, handler)  # a job that caught the signal itself reports "preempted"
        runs.write_outcome("done", str(result.get("status", "")) if isinstance(result, dict) else "")
        return result

    def checkpoint(self) -> Any:
        import submitit

        from geodl_hpc.launch.preemption import run_hooks

        run_hooks()
        return submitit.helpers.DelayedSubmission(self)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A submission before it happens: where it goes, the spec, the script and the resource plan."""

    job: str
    profile: ClusterProfile
    run_dir: Path
    logs: Path
    spec: SbatchSpec
    script: str
    configs: tuple[dict[str, Any], ...]

    def describe(self) -> str:
        """What ``--dry-run`` prints: the script (Slurm) and the resource plan."""
        parts = []
        if self.profile.is_slurm:
            parts += [f"# sbatch script for run folder {self.run_dir}", self.script.rstrip("\n"), ""]
        else:
            parts += [
                f"# --cluster {self.profile.name}: submitit's local executor runs the job on this machine; "
                f"no sbatch script (run folder {self.run_dir})",
                "",
            ]
        parts.append(format_plan(resource_plan(self.spec)))
        return "\n".join(parts)


def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def submitit_command(logs: Path) -> list[str]:
    """The command submitit's sbatch script runs (see ``SlurmExecutor._submitit_command_str``)."""
    return [sys.executable, "-u", "-m", "submitit.core._submit", str(logs)]


def plan(
    job: str,
    configs: Sequence[Any],
    profile: ClusterProfile,
    run_dir: Path | None = None,
) -> Plan:
    """Plan a submission of ``job`` for one config (a job) or several (an array); nothing is written."""
    if not configs:
        raise LaunchError("nothing to submit: no work items")
    if not profile.is_slurm and profile.nodes != 1:
        raise LaunchError(f"cluster.nodes={profile.nodes}: the local executor runs on one node; use a Slurm profile")
    run_dir = Path(run_dir if run_dir is not None else _run_folder(configs[0])).resolve()
    logs = run_dir / "logs" / _stamp()
    n = len(configs)
    array = f"0-{n - 1}%{min(n, profile.array_parallelism)}" if n > 1 else None
    log_name = "%A_%a_%t_log" if array else "%j_%t_log"
    spec = sbatch_spec(
        profile,
        job_name=f"geodl-{job}".replace("_", "-"),
        command=submitit_command(logs),
        output=str(logs / f"{log_name}.out").replace("%t", "0"),
        error=str(logs / f"{log_name}.err").replace("%t", "0"),
        array=array,
    )
    # Absolute outputs: the job may start in another working directory than the submitter's.
    dicts = tuple({**to_dict(c), "output": str(Path(c.output).resolve())} for c in configs)
    return Plan(job, profile, run_dir, logs, spec, render_sbatch(spec), dicts)


def _run_folder(config: Any) -> str:
    """Where a submission keeps its logs and status: the job's ``run_folder()`` if it has one, else its output."""
    folder = getattr(config, "run_folder", None)
    return str(folder()) if callable(folder) else str(config.output)


def submitit_parameters(spec: SbatchSpec, signal_delay_s: int) -> dict[str, Any]:
    """``SlurmExecutor.update_parameters`` arguments carrying exactly the resources of ``spec``."""
    params: dict[str, Any] = {
        "job_name": spec.job_name,
        "nodes": spec.nodes,
        "ntasks_per_node": spec.ntasks_per_node,
        "cpus_per_task": spec.cpus_per_task,
        "time": spec.time_min,
        "signal_delay_s": signal_delay_s,
        "setup": list(spec.setup_lines),
        # the renderer's srun options; submitit adds --unbuffered, --output and --error itself
        "srun_args": ["--kill-on-bad-exit=1", f"--cpus-per-task={spec.cpus_per_task}"],
        # submitit's own conversion of mem would turn "16G" into a float: pass such values verbatim
        "additional_parameters": {"requeue": True} if spec.requeue else {"no-requeue": True},
    }
    for name in ("partition", "account", "qos", "constraint"):
        if getattr(spec, name) is not None:
            params[name] = getattr(spec, name)
    if spec.gpus_per_node:
        params["gpus_per_node"] = spec.gpus_per_node
    if spec.mem is not None:
        params["additional_parameters"]["mem"] = spec.mem
    if spec.array is not None:
        _, _, limit = spec.array.partition("%")
        params["array_parallelism"] = int(limit) if limit else 256
    return params


def make_executor(plan_: Plan) -> Any:
    """submitit's executor for the plan: Slurm with the plan's sbatch parameters, or local with the profile's."""
    import submitit

    profile = plan_.profile
    if profile.is_slurm:
        executor: Any = submitit.SlurmExecutor(folder=plan_.logs, max_num_timeout=MAX_REQUEUES)
        executor.update_parameters(**submitit_parameters(plan_.spec, profile.signal_delay_s))
    else:
        executor = submitit.LocalExecutor(folder=plan_.logs, max_num_timeout=MAX_REQUEUES)
        executor.update_parameters(
            timeout_min=profile.time_min,
            tasks_per_node=profile.ntasks_per_node,
            signal_delay_s=profile.signal_delay_s,
            setup=list(profile.setup),
        )
    return executor


@contextlib.contextmanager
def detached_stdio(detach: bool) -> Iterator[None]:
    """Let a local job's controller inherit /dev/null, not our stdout/stderr: a caller reading our output
    (a pipe, ``subprocess.run``) would otherwise wait for the job to end. Its logs go to the run folder."""
    if not detach:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in zip((0, 1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


def submit_calls(executor: Any, calls: Sequence[Any], *, detach: bool) -> list[Any]:
    """Submit each callable through ``executor``: one job, or one array (a batch) for several."""
    with detached_stdio(detach):
        if len(calls) == 1:
            return [executor.submit(calls[0])]
        with executor.batch():
            jobs = [executor.submit(c) for c in calls]
    return jobs


def status_record(plan_: Plan, jobs: Sequence[Any]) -> dict[str, Any]:
    """The run folder's status record of submitted ``jobs`` (callers add their own keys)."""
    profile = plan_.profile
    return {
        "job": plan_.job,
        "profile": profile.name,
        "executor": profile.executor,
        "submitted_at": dt.datetime.now().isoformat(timespec="seconds"),
        "job_ids": sorted({str(j.job_id).split("_")[0] for j in jobs}),
        "tasks": [str(j.job_id) for j in jobs],
        "array": len(jobs) > 1,
        "logs": str(plan_.logs.relative_to(plan_.run_dir)),
    }


def ensure_free(run_dir: Path) -> None:
    """One-line error when a live job still uses ``run_dir``."""
    live = runs.live_tasks(run_dir)
    if live:
        ids = ", ".join(sorted({t.task.split("_")[0] for t in live}))
        raise LaunchError(
            f"{run_dir}: run folder in use by live job {ids} ({live[0].state}); wait for it (geodl status "
            f"{run_dir}), cancel it (scancel {ids}), or choose another output="
        )


def submit(plan_: Plan) -> tuple[list[Any], dict[str, Any]]:
    """Submit a planned job or array; write the run folder; return submitit's jobs and the status record."""
    profile = plan_.profile
    require_slurm(profile)
    ensure_free(plan_.run_dir)
    configs = [registry.config_from_dict(plan_.job, c) for c in plan_.configs]
    plan_.logs.mkdir(parents=True, exist_ok=True)
    dump_config(configs[0], plan_.run_dir / "config.resolved.yaml")
    if profile.is_slurm:
        (plan_.run_dir / "job.sbatch").write_text(plan_.script)
    executor = make_executor(plan_)
    runners = [JobRunner(plan_.job, c) for c in plan_.configs]
    try:
        jobs = submit_calls(executor, runners, detach=not profile.is_slurm)
    except Exception as exc:  # submitit raises sbatch's stderr as FailedJobError
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        raise LaunchError(f"--cluster {profile.name}: submission refused: {reason}") from None
    status = {**status_record(plan_, jobs), "resources": dict(resource_plan(plan_.spec))}
    runs.write_status(plan_.run_dir, status)
    return jobs, status


def wait(jobs: Sequence[Any], status: dict[str, Any], timeout_s: float | None = None) -> list[Any]:
    """Wait (batched, backing-off sacct polls on Slurm) until every job ended; return results, in order."""
    if status["executor"] == "slurm":
        states = runs.wait_for(status["job_ids"], timeout_s=timeout_s, expected_tasks=len(jobs))
        failed = [s for s in states.values() if s.state != "done"]
        if failed:
            s = failed[0]
            raise LaunchError(f"job {s.task} ended {s.slurm_state}; see its log in {status['logs']}")
    results = []
    for job in jobs:
        try:
            # a multi-task job returns one result per rank: report rank 0's, as single-task jobs do
            results.append(job.results()[0])
        except Exception as exc:  # submitit re-raises the job's error with its traceback text
            last = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise LaunchError(f"job {job.job_id} failed: {last[-1] if last else exc}; see {job.paths.stderr}") from None
    return results
