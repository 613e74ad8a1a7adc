"""Which job module a config's ``job`` field names; the one place `geodl run`, `geodl submit` and launchers dispatch.

Each job is a module in ``jobs/`` with ``main(config) -> dict`` and a typed config dataclass. The same callable
runs in-process (`geodl run CONFIG`), in submitit's local executor, or on Slurm (`geodl submit JOB CONFIG`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geodl_hpc.config import apply_overrides, from_dict, read_yaml
from geodl_hpc.errors import ConfigError


@dataclass(frozen=True)
class JobEntry:
    """A registered job: its module (``main(config) -> dict``) and its config class ``module:Class``."""

    name: str
    module: str
    config_class: str
    summary: str

    def config_type(self) -> type[Any]:
        module, _, cls = self.config_class.partition(":")
        result: type[Any] = getattr(importlib.import_module(module), cls)
        return result

    def main(self, config: Any) -> dict[str, Any]:
        result: dict[str, Any] = importlib.import_module(self.module).main(config)
        return result


JOBS: dict[str, JobEntry] = {
    entry.name: entry
    for entry in (
        JobEntry(
            "ingest_murchison",
            "jobs.ingest_murchison",
            "geodl_hpc.config:JobConfig",
            "rasterise the built-in GSWA Murchison gold data into a raster stack",
        ),
        JobEntry(
            "train",
            "jobs.train",
            "geodl_hpc.training.config:TrainJobConfig",
            "train a model on chips of a raster archive, or a phase picker on windows of a waveform archive (resumes)",
        ),
        JobEntry(
            "infer",
            "jobs.infer",
            "geodl_hpc.inference.config:InferJobConfig",
            "tiled, seam-free, resumable inference of a model over a raster stack: map.zarr, map.tif, map.png",
        ),
        JobEntry(
            "evaluate_baselines",
            "jobs.evaluate_baselines",
            "geodl_hpc.evaluation.config:EvaluationConfig",
            "spatial block CV of logistic and gradient-boosting baselines: metrics.json, report.md, PNGs",
        ),
        JobEntry(
            "prospectivity",
            "jobs.prospectivity",
            "geodl_hpc.evaluation.prospectivity_config:ProspectivityConfig",
            "the main job: ingest, block-CV CNN training and inference, baselines, map.zarr/tif, PNGs, report",
        ),
        JobEntry(
            "hindcast",
            "jobs.hindcast",
            "geodl_hpc.forecasting.hindcast_config:HindcastConfig",
            "rolling-origin earthquake forecast hindcast: models x windows x CSEP tests, resumable, aggregated",
        ),
        JobEntry(
            "annotate",
            "jobs.annotate",
            "geodl_hpc.inference.annotate_config:AnnotateJobConfig",
            "continuous phase picking over a waveform archive: probability traces (Zarr), picks (CSV, QuakeML)",
        ),
        JobEntry(
            "resume_check",
            "jobs.resume_check",
            "jobs.resume_check:ResumeCheckConfig",
            "count steps, checkpoint on preemption or walltime, resume after requeue",
        ),
        JobEntry(
            "cluster_check",
            "jobs.cluster_check",
            "jobs.cluster_check:ClusterCheckConfig",
            "join one Ray cluster and one Horovod ring across the allocation and allreduce",
        ),
    )
}


def entry(name: str) -> JobEntry:
    """The registered job ``name``; one-line error listing the jobs otherwise."""
    if name not in JOBS:
        raise ConfigError(f"job {name!r}: unknown job; known jobs: {', '.join(sorted(JOBS))}")
    return JOBS[name]


def load(path: Path | None, overrides: Sequence[str] = (), job: str | None = None) -> tuple[str, Any]:
    """Load a job config: the job is ``job`` or the file's ``job`` key (default ingest_murchison)."""
    data = apply_overrides(read_yaml(path) if path is not None else {}, overrides)
    named = data.get("job")
    if job is not None and named is not None and named != job:
        raise ConfigError(f"{path}: job: the config is for {named!r}, not {job!r}; pass JOB {named} or another config")
    name = job or (named if isinstance(named, str) else None) or "ingest_murchison"
    if not isinstance(name, str):
        raise ConfigError(f"job: expected a job name, got {name!r}")
    spec = entry(name)
    data["job"] = name
    return name, from_dict(spec.config_type(), data)


def config_from_dict(name: str, data: dict[str, Any]) -> Any:
    """Rebuild job ``name``'s config from its plain-dict form (what a batch job receives)."""
    return from_dict(entry(name).config_type(), data)


def run(config: Any) -> dict[str, Any]:
    """Run the job ``config.job`` in this process and return its result."""
    return entry(config.job).main(config)
