"""The job registry: which job module a config's ``job`` field names. The library owns it; ``jobs/`` fills it.

Each job is a module ``jobs/NAME.py`` with ``main(config) -> dict`` and a typed config dataclass. The library
never imports ``jobs``: ``jobs/entries.py`` calls :func:`register` for every job, and the processes that dispatch
by name fill the registry first:

- the ``geodl`` console script is ``jobs.cli:main``, which calls ``jobs.entries.register_all()`` and then the
  library's CLI (:func:`geodl_hpc.cli.main`); local ranks (``geodl train --np N``) start ``python -m jobs.cli``;
- batch processes (submitit's local executor, Slurm) need no registry: ``launch.submit.JobRunner`` carries the
  :class:`JobEntry` itself, and the entry names its module and config class as import paths;
- Ray workers run library functions, never a job by name.

A notebook either calls a job's ``main`` directly (``jobs.infer.main(config)``) or registers the jobs first:
``import jobs.entries; jobs.entries.register_all(); registry.run(registry.load(path)[1])``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geodl_hpc.config import apply_overrides, from_dict, read_yaml
from geodl_hpc.errors import ConfigError

DEFAULT_JOB = "ingest_murchison"  # what a config without a ``job`` key runs


@dataclass(frozen=True)
class JobEntry:
    """A registered job: its module (``main(config) -> dict``) and its config class ``module:Class``.

    Both are import paths, so an entry is cheap to register (nothing heavy is imported until the job runs) and
    pickles by value into a batch process, which imports the job from the entry alone.
    """

    name: str
    module: str
    config_class: str
    summary: str

    def config_type(self) -> type[Any]:
        """The job's config dataclass."""
        module, _, cls = self.config_class.partition(":")
        result: type[Any] = getattr(importlib.import_module(module), cls)
        return result

    def main(self, config: Any) -> dict[str, Any]:
        """Run the job in this process."""
        result: dict[str, Any] = importlib.import_module(self.module).main(config)
        return result

    def config_from_dict(self, data: dict[str, Any]) -> Any:
        """The job's config from its plain-dict form (what a batch job receives)."""
        return from_dict(self.config_type(), data)


_JOBS: dict[str, JobEntry] = {}


def register(job: JobEntry) -> JobEntry:
    """Add ``job`` to the registry (registering the same entry again is a no-op); return it."""
    known = _JOBS.get(job.name)
    if known is not None and known != job:
        raise ConfigError(f"job {job.name!r}: registered twice ({known.module} and {job.module}); rename one")
    _JOBS[job.name] = job
    return job


def registered() -> dict[str, JobEntry]:
    """Every registered job by name (a copy)."""
    return dict(_JOBS)


def entry(name: str) -> JobEntry:
    """The registered job ``name``; one-line error listing the jobs otherwise."""
    if name not in _JOBS:
        if not _JOBS:
            raise ConfigError(
                f"job {name!r}: no jobs are registered in this process; start geodl as `geodl` or "
                "`python -m jobs.cli`, or call jobs.entries.register_all() first"
            )
        raise ConfigError(f"job {name!r}: unknown job; known jobs: {', '.join(sorted(_JOBS))}")
    return _JOBS[name]


def load(path: Path | None, overrides: Sequence[str] = (), job: str | None = None) -> tuple[str, Any]:
    """Load a job config: the job is ``job`` or the file's ``job`` key (default ingest_murchison)."""
    data = apply_overrides(read_yaml(path) if path is not None else {}, overrides)
    named = data.get("job")
    if job is not None and named is not None and named != job:
        raise ConfigError(f"{path}: job: the config is for {named!r}, not {job!r}; pass JOB {named} or another config")
    name = job or (named if isinstance(named, str) else None) or DEFAULT_JOB
    if not isinstance(name, str):
        raise ConfigError(f"job: expected a job name, got {name!r}")
    spec = entry(name)
    data["job"] = name
    return name, spec.config_from_dict(data)


def config_from_dict(name: str, data: dict[str, Any]) -> Any:
    """Rebuild job ``name``'s config from its plain-dict form."""
    return entry(name).config_from_dict(data)


def run(config: Any) -> dict[str, Any]:
    """Run the job ``config.job`` in this process and return its result."""
    return entry(config.job).main(config)
