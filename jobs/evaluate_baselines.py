"""Job: spatial block CV of the classic baselines (logistic, gradient boosting) on a raster archive.

Writes into ``output``: ``metrics.json`` (baselines under ``baselines.*``; CNN keys null), ``report.md``,
``success_rate.png`` and one ``probability_<model>.png`` per baseline, each atomically (temp file + rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from geodl_hpc.config import to_dict
from geodl_hpc.evaluation.baselines import baseline_predictors
from geodl_hpc.evaluation.blockcv import (
    fold_map,
    load_raster,
    make_folds,
    run_blockcv,
)
from geodl_hpc.evaluation.config import EvaluationConfig
from geodl_hpc.evaluation.plots import write_cv_figures
from geodl_hpc.evaluation.report import (
    evaluation_setup,
    metrics_document,
    write_metrics_json,
    write_report_md,
    write_text_atomic,
)


def main(config: EvaluationConfig) -> dict[str, Any]:
    """Run every baseline on the same block folds of ``config.archive``; returns the ``metrics.json`` document."""
    data = load_raster(Path(config.archive), config.layers, config.label, config.mask)
    folds_map = fold_map(
        make_folds(data.shape, (config.blocks[0], config.blocks[1]), config.folds, config.seed), data.shape
    )
    predictors = baseline_predictors(
        data, config.baselines, seed=config.seed, buffer=config.buffer, max_negatives=config.max_negatives
    )
    results = run_blockcv(data, folds_map, predictors)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output / "config.resolved.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    figures = write_cv_figures(output, results, data) if config.plots else {}
    document = metrics_document({n: r.metrics for n, r in results.items()}, evaluation_setup(config, data, folds_map))
    write_metrics_json(output / "metrics.json", document)
    write_report_md(output / "report.md", document, figures)
    return document
