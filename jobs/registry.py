"""Which job module a config's ``job`` field names; the one place `geodl run` and launchers dispatch."""

from __future__ import annotations

from typing import Any

from geodl_hpc.config import JobConfig


def run(config: JobConfig) -> dict[str, Any]:
    """Run the job ``config.job`` in this process and return its result."""
    if config.job == "ingest_murchison":
        from jobs import ingest_murchison

        return ingest_murchison.main(config)
    raise AssertionError(f"unhandled job {config.job!r}")  # config validation lists every job
