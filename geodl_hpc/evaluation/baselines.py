"""Classic pixel baselines for prospectivity (scikit-learn, imported only when a baseline runs).

- ``logistic``: spatial-logistic / weights-of-evidence style regression on standardised evidence layers with
  balanced class weights (so ~250 deposit pixels are not swamped by ~500,000 background pixels).
- ``gboost``: :class:`sklearn.ensemble.HistGradientBoostingClassifier` on the raw layers (trees need no scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geodl_hpc.errors import MissingDependencyError
from geodl_hpc.evaluation.blockcv import EvaluationError, FitPredict, FoldPredictor, RasterData, pixel_predictor

BASELINES = ("logistic", "gboost")


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError:
        raise MissingDependencyError(
            "the logistic and gboost baselines need scikit-learn; install it with `pip install scikit-learn`"
        ) from None
    return sklearn


def logistic_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """P(deposit) from a class-balanced logistic regression on standardised layers."""
    _sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    model.fit(x_train, y_train)
    return np.asarray(model.predict_proba(x_test)[:, 1], dtype=np.float64)


def gboost_fit_predict_factory(seed: int) -> FitPredict:
    """A seeded histogram gradient boosting ``fit_predict`` (class-balanced, fixed iteration count)."""

    def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        _sklearn()
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            max_leaf_nodes=15,
            min_samples_leaf=20,
            class_weight="balanced",
            early_stopping=False,
            random_state=seed,
        )
        model.fit(x_train, y_train)
        return np.asarray(model.predict_proba(x_test)[:, 1], dtype=np.float64)

    return fit_predict


def baseline(name: str, seed: int = 0) -> FitPredict:
    """The ``fit_predict`` of baseline ``name`` (one of :data:`BASELINES`)."""
    if name == "logistic":
        return logistic_fit_predict
    if name == "gboost":
        return gboost_fit_predict_factory(seed)
    raise EvaluationError(f"baselines: unknown baseline {name!r}; choose from {', '.join(BASELINES)}")


def baseline_predictors(
    data: RasterData, names: Sequence[str], *, seed: int, buffer: int, max_negatives: int | None
) -> dict[str, FoldPredictor]:
    """Out-of-fold predictors of the named baselines, all with the same labels, buffer and negative sampling."""
    return {
        name: pixel_predictor(data, baseline(name, seed), buffer=buffer, max_negatives=max_negatives, seed=seed)
        for name in names
    }
