"""Evaluation: prospectivity metrics (pure numpy), spatial block CV with out-of-fold maps, baselines and reports.

Modules: :mod:`~geodl_hpc.evaluation.metrics` (ROC AUC, success-rate curve, capture at top k % of area),
:mod:`~geodl_hpc.evaluation.blockcv` (fold maps from the sampler's block folds, out-of-fold prediction),
:mod:`~geodl_hpc.evaluation.baselines` (logistic and gradient boosting; scikit-learn imported on use),
:mod:`~geodl_hpc.evaluation.plots` and :mod:`~geodl_hpc.evaluation.report` (PNGs, ``metrics.json``, ``report.md``),
:mod:`~geodl_hpc.evaluation.config` (the ``evaluate_baselines`` job's settings).
"""

from __future__ import annotations

from geodl_hpc.evaluation.blockcv import (
    CVResult,
    EvaluationError,
    RasterData,
    fold_map,
    load_raster,
    make_folds,
    out_of_fold,
    pixel_predictor,
    run_blockcv,
    score_map,
)
from geodl_hpc.evaluation.metrics import (
    MetricError,
    capture_at,
    prospectivity_metrics,
    roc_auc,
    roc_auc_within,
    success_rate_curve,
)

__all__ = [
    "CVResult",
    "EvaluationError",
    "MetricError",
    "RasterData",
    "capture_at",
    "fold_map",
    "load_raster",
    "make_folds",
    "out_of_fold",
    "pixel_predictor",
    "prospectivity_metrics",
    "roc_auc",
    "roc_auc_within",
    "run_blockcv",
    "score_map",
    "success_rate_curve",
]
