"""Every job's registry entry: the one module that tells the library's registry which jobs exist.

Add a job: write ``jobs/NAME.py`` with ``main(config) -> dict`` and a config dataclass (in the job, or in the
library's config room when the library needs it too), then add its ``JobEntry`` below. Nothing else: the ``geodl``
console script (``jobs.cli``) registers these before it parses, and batch processes get the entry with the job.
"""

from __future__ import annotations

from geodl_hpc import registry
from geodl_hpc.registry import JobEntry

ENTRIES: tuple[JobEntry, ...] = (
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


def register_all() -> None:
    """Register every job above with :mod:`geodl_hpc.registry` (idempotent)."""
    for job in ENTRIES:
        registry.register(job)
