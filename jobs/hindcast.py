"""Job: a hindcast campaign of earthquake forecasters over rolling-origin test windows, tested with CSEP tests.

``main(config)`` prepares the binned catalog, runs (or resumes) every model x window-block work item with the
configured executor (in-process, Ray tasks, or Slurm array tasks), aggregates ``results.parquet``/``.csv`` with
the information gain against the reference model, and writes ``plots/`` and ``report.md``. Run it again after a
crash: only the items without a result are computed; on a finished campaign it only redraws the report.
"""

from __future__ import annotations

from typing import Any

from geodl_hpc.forecasting.hindcast_config import HindcastConfig


def main(config: HindcastConfig) -> dict[str, Any]:
    """Run the hindcast campaign of ``config``; returns the summary also written to ``OUTPUT/summary.json``."""
    from geodl_hpc.forecasting.hindcast import run_hindcast

    return run_hindcast(config)
