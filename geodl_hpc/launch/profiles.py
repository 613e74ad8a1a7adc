"""Cluster profiles: YAML files in ``configs/clusters/`` that say where a job runs and what it may ask for.

A profile holds default requests (partition, nodes, GPUs, CPUs, memory, time, setup lines) and ``limits``, the
most a submission may ask. ``cluster.KEY=VALUE`` overrides change the requests, never the limits, and never the
``setup`` lines: those are shell, and only a profile file (which the user chose with ``--cluster``) may carry them.
The profile turns into one :class:`~geodl_hpc.launch.sbatch.SbatchSpec`, the single source of the sbatch script shown by
``--dry-run`` and of the parameters handed to submitit.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from geodl_hpc.config import apply_overrides, from_dict, read_yaml
from geodl_hpc.launch.sbatch import LaunchError, SbatchSpec, resource_plan

PROFILE_DIR_ENV = "GEODL_CLUSTERS"
_REPO_PROFILES = Path(__file__).resolve().parents[2] / "configs" / "clusters"
# Profile keys written verbatim into the job script as shell: a profile file may set them, no override may.
_SHELL_KEYS = frozenset({"setup"})


@dataclasses.dataclass(frozen=True)
class Limits:
    """The most a submission may ask of a profile; None means no limit."""

    nodes: int | None = None
    ntasks_per_node: int | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    time_min: int | None = None
    gpu_hours: float | None = None


@dataclasses.dataclass(frozen=True)
class ClusterProfile:
    """Where a job runs (``executor``) and the resources each submission asks for by default."""

    executor: Literal["local", "slurm"] = "slurm"
    description: str = ""
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    nodes: int = 1
    ntasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem: str | None = None
    time_min: int = 60
    constraint: str | None = None
    signal_delay_s: int = 120
    array_parallelism: int = 8
    setup: list[str] = dataclasses.field(default_factory=list)
    limits: Limits = dataclasses.field(default_factory=Limits)
    name: str = "custom"

    def __post_init__(self) -> None:
        for key in ("nodes", "ntasks_per_node", "cpus_per_task", "time_min", "signal_delay_s", "array_parallelism"):
            if getattr(self, key) < 1:
                raise LaunchError(f"cluster.{key}: must be at least 1, got {getattr(self, key)}")
        if self.gpus_per_node < 0:
            raise LaunchError(f"cluster.gpus_per_node: must be at least 0, got {self.gpus_per_node}")

    @property
    def is_slurm(self) -> bool:
        return self.executor == "slurm"


def profile_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins: ``$GEODL_CLUSTERS``, ./configs/clusters, the repo's."""
    dirs = [Path(os.environ[PROFILE_DIR_ENV])] if os.environ.get(PROFILE_DIR_ENV) else []
    dirs += [Path("configs") / "clusters", _REPO_PROFILES]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != u.resolve() for u in unique):
            unique.append(d)
    return unique


def available_profiles() -> list[str]:
    """Names of every profile that ``--cluster NAME`` accepts."""
    return sorted({p.stem for d in profile_dirs() for p in d.glob("*.yaml")})


def _find(name: str) -> Path:
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise LaunchError(f"--cluster {name}: no such profile file")
        return path
    for d in profile_dirs():
        path = d / f"{name}.yaml"
        if path.is_file():
            return path
    known = ", ".join(available_profiles()) or "none (no configs/clusters folder found)"
    raise LaunchError(f"--cluster {name}: unknown cluster profile; available: {known} (or a path to a YAML file)")


def check_overrides(overrides: Sequence[str], where: str = "cluster.") -> None:
    """One-line error for an override no submission may make: shell ``setup`` lines, limits, the executor.

    ``where`` says where the overrides came from in the message (``cluster.`` on the command line,
    ``campaign.cluster_overrides: `` in a config)."""
    for text in overrides:
        key = str(text).split("=", 1)[0].strip().split(".", 1)[0]
        if key in _SHELL_KEYS:
            raise LaunchError(
                f"{where}{key}: setup lines become shell in the job script, so only a cluster profile file may "
                f"carry them; put them in configs/clusters/NAME.yaml and use --cluster NAME"
            )
        if key in ("limits", "executor", "name"):
            raise LaunchError(f"{where}{text}: a submission cannot change the profile's limits or executor")


def load_profile(name: str, overrides: Sequence[str] = ()) -> ClusterProfile:
    """Load profile ``name`` (or a YAML path), apply ``KEY=VALUE`` request overrides, and check the limits."""
    path = _find(name)
    check_overrides(overrides)
    data = apply_overrides(read_yaml(path), overrides)
    data["name"] = Path(path).stem
    profile = from_dict(ClusterProfile, data, "cluster")
    check_limits(profile)
    return profile


def check_limits(profile: ClusterProfile, array_tasks: int = 1) -> None:
    """One-line error when the requested resources exceed what ``profile.limits`` can give."""
    limits = profile.limits
    for key in ("nodes", "ntasks_per_node", "gpus_per_node", "cpus_per_task", "time_min"):
        most = getattr(limits, key)
        asked = getattr(profile, key)
        if most is not None and asked > most:
            raise LaunchError(
                f"cluster.{key}={asked}: profile {profile.name} can give at most {most}; ask for less "
                f"or use another --cluster"
            )
    if limits.gpu_hours is not None:
        gpu_hours = profile.nodes * profile.gpus_per_node * profile.time_min / 60 * array_tasks
        if gpu_hours > limits.gpu_hours:
            raise LaunchError(
                f"cluster: {gpu_hours:g} GPU-hours asked, profile {profile.name} allows at most "
                f"{limits.gpu_hours:g} per submission; lower nodes, gpus_per_node or time_min"
            )


def require_slurm(profile: ClusterProfile) -> None:
    """One-line error when ``profile`` needs Slurm and ``sbatch`` is not on PATH."""
    if profile.is_slurm and shutil.which("sbatch") is None:
        raise LaunchError(
            f"--cluster {profile.name} submits to Slurm but no sbatch is on PATH; install Slurm (or run on the "
            "cluster's login node) or use --cluster local"
        )


def sbatch_spec(
    profile: ClusterProfile,
    job_name: str,
    command: Sequence[str],
    *,
    output: str | None = None,
    error: str | None = None,
    array: str | None = None,
    requeue: bool = True,
) -> SbatchSpec:
    """The one spec a submission is rendered from (for review) and converted from (for submitit)."""
    spec = SbatchSpec(
        job_name=job_name,
        command=command,
        partition=profile.partition,
        account=profile.account,
        qos=profile.qos,
        nodes=profile.nodes,
        ntasks_per_node=profile.ntasks_per_node,
        gpus_per_node=profile.gpus_per_node,
        cpus_per_task=profile.cpus_per_task,
        mem=profile.mem,
        time_min=profile.time_min,
        constraint=profile.constraint,
        array=array,
        output=output,
        error=error,
        signal=f"USR2@{profile.signal_delay_s}",
        requeue=requeue,
        setup_lines=profile.setup,
    )
    check_limits(profile, resource_plan(spec)["array_tasks"])
    return spec
