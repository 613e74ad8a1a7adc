"""Job: spatial block CV of the classic baselines (logistic, gradient boosting) on a raster archive.

Writes into ``output``: ``metrics.json`` (baselines under ``baselines.*``; CNN keys null), ``report.md``,
``success_rate.png`` and one ``probability_<model>.png`` per baseline, each atomically (temp file + rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from geodl_hpc.config import to_dict
from geodl_hpc.evaluation.baselines import baseline_predictors
from geodl_hpc.evaluation.blockcv import (
    CVResult,
    RasterData,
    fold_map,
    load_raster,
    make_folds,
    run_blockcv,
)
from geodl_hpc.evaluation.config import EvaluationConfig
from geodl_hpc.evaluation.report import (
    DATA_NAME,
    metrics_document,
    write_metrics_json,
    write_report_md,
    write_text_atomic,
)


def _setup(config: EvaluationConfig, data: RasterData, folds_map: np.ndarray) -> dict[str, Any]:
    """What was evaluated and how: data, attribution, layers, fold setup and per-fold deposit counts."""
    from geodl_hpc.archive.murchison import ATTRIBUTION

    res = abs(float(data.x[1] - data.x[0])) if len(data.x) > 1 else None
    return {
        "data": DATA_NAME,
        "attribution": ATTRIBUTION,
        "archive": str(config.archive),
        "resolution": res,
        "shape": list(data.shape),
        "layers": list(data.layers),
        "label": config.label,
        "mask": config.mask,
        "folds": config.folds,
        "blocks": list(config.blocks),
        "seed": config.seed,
        "buffer": config.buffer,
        "max_negatives": config.max_negatives,
        "n_deposits": int(data.deposits.sum()),
        "n_positive_pixels": int(data.positives.sum()),
        "n_valid_pixels": int(data.valid.sum()),
        "deposits_per_fold": [int(data.deposits[folds_map == k].sum()) for k in range(config.folds)],
    }


def write_figures(output: Path, results: dict[str, CVResult], data: RasterData) -> dict[str, str]:
    """The success-rate PNG and one probability map PNG per model; returns ``{caption: file name}``."""
    from geodl_hpc.evaluation.plots import plot_probability_map, plot_success_rate

    curves = {name: (r.area, r.captured) for name, r in results.items()}
    figures = {"Success-rate curves": plot_success_rate(curves, output / "success_rate.png").name}
    for name, r in results.items():
        path = plot_probability_map(
            r.probability,
            data.deposits,
            data.x,
            data.y,
            output / f"probability_{name}.png",
            title=f"{name}: out-of-fold probability with deposits",
        )
        figures[f"{name} probability map"] = path.name
    return figures


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
    figures = write_figures(output, results, data) if config.plots else {}
    document = metrics_document({n: r.metrics for n, r in results.items()}, _setup(config, data, folds_map))
    write_metrics_json(output / "metrics.json", document)
    write_report_md(output / "report.md", document, figures)
    return document
