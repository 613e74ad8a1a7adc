"""Inhomogeneous Poisson point-process model with a log-linear intensity, fitted by maximum likelihood.

``log lambda(u) = b0 + b . Z(u)`` in the covariates ``Z`` (the evidence layers, standardised on the training
pixels; ``terms="quadratic"`` adds their squares). The log-likelihood of the deposit pattern in the training
window ``W`` is ``sum_i log lambda(x_i) - integral_W lambda``; with the pixel grid as quadrature (deposits counted
per pixel, each pixel of area ``a``) it is ``sum_j [n_j log lambda_j - a lambda_j]``, the Poisson GLM that
spatstat's ``ppm(X ~ Z, method="mpl")`` solves on a pixel quadrature. It is maximised by Newton-Raphson with a
tiny ridge for stability. The map scored is the fitted intensity (deposits per pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodl_hpc.evaluation.blockcv import EvaluationError, FoldPredictor, RasterData


@dataclass(frozen=True)
class PoissonFit:
    """Coefficients on the standardised design, the standardisation, and the maximised log-likelihood."""

    coef: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    quadratic: bool
    loglik: float
    iterations: int


def design(z: np.ndarray, mean: np.ndarray, std: np.ndarray, quadratic: bool) -> np.ndarray:
    """Intercept, standardised covariates (and their squares) as a design matrix."""
    s = (z - mean) / std
    cols = [np.ones((len(z), 1)), s, s**2] if quadratic else [np.ones((len(z), 1)), s]
    return np.hstack(cols)


def fit_poisson(
    z: np.ndarray, counts: np.ndarray, area: float = 1.0, *, quadratic: bool = False, ridge: float = 1e-6
) -> PoissonFit:
    """Maximum-likelihood fit of ``counts_j ~ Poisson(area * exp(X_j b))`` over quadrature pixels ``z``."""
    z = np.asarray(z, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    if n.sum() <= 0:
        raise EvaluationError("point process: no deposits in the training window; use fewer blocks or folds")
    mean, std = z.mean(axis=0), z.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = design(z, mean, std, quadratic)
    b = np.zeros(x.shape[1])
    b[0] = np.log(n.sum() / (area * len(n)))
    penalty = ridge * np.eye(len(b))
    penalty[0, 0] = 0.0

    def loglik(beta: np.ndarray) -> float:
        eta = x @ beta
        return float(n @ eta - area * np.exp(eta).sum() - 0.5 * beta @ penalty @ beta)

    current, iterations = loglik(b), 0
    for iterations in range(1, 101):  # noqa: B007 - reported below
        mu = area * np.exp(x @ b)
        grad = x.T @ (n - mu) - penalty @ b
        hess = (x * mu[:, None]).T @ x + penalty
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6:  # halve until the likelihood does not fall (Newton can overshoot far from the optimum)
            trial = loglik(b + t * step)
            if trial >= current - 1e-12:
                break
            t /= 2
        b, previous, current = b + t * step, current, loglik(b + t * step)
        if abs(current - previous) < 1e-9 * (1 + abs(current)):
            break
    return PoissonFit(b, mean, std, quadratic, current, iterations)


def intensity(fit: PoissonFit, z: np.ndarray, area: float = 1.0) -> np.ndarray:
    """Fitted expected count per quadrature pixel at covariates ``z``."""
    return area * np.exp(design(np.asarray(z, dtype=np.float64), fit.mean, fit.std, fit.quadratic) @ fit.coef)


def ppm_predictor(data: RasterData, *, quadratic: bool = False) -> FoldPredictor:
    """A fold predictor: fit on the training pixels' deposit counts, return the intensity of the test pixels."""
    rows = data.features.reshape(len(data.layers), -1).T
    counts = data.deposits.ravel()

    def predict(fold: int, train_mask: np.ndarray, test_mask: np.ndarray) -> np.ndarray:
        train = np.flatnonzero(train_mask & data.valid)
        fit = fit_poisson(rows[train], counts[train], quadratic=quadratic)
        return intensity(fit, rows[np.flatnonzero(test_mask)])

    return predict
