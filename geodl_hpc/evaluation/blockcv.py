"""Spatial block cross-validation over a raster stack: per-pixel fold maps and out-of-fold probability maps.

Folds come from :func:`geodl_hpc.sampling.block_folds`, the same blocks the CNN's chip sampler splits on, so a
CNN and the pixel baselines are scored on the same held-out ground. A model is any callable that, given a fold
and the training/test masks, returns a probability map; :func:`pixel_predictor` turns a per-pixel
``fit_predict(X_train, y_train, X_test)`` (scikit-learn style) into one.

Labels: a pixel is positive when it holds a deposit (``label > 0``). With ``buffer = N`` the *training*
positives also include every valid pixel within N pixels (Euclidean) of a training deposit, inside the training
blocks only (a held-out deposit never labels training ground). Negatives are all other valid training pixels,
optionally a seeded random subset of ``max_negatives``. Evaluation always uses the unbuffered deposits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.errors import ArchiveError, GeodlError
from geodl_hpc.evaluation.metrics import prospectivity_metrics, roc_auc, success_rate_curve
from geodl_hpc.sampling import BlockFolds, block_folds

FoldPredictor = Callable[[int, np.ndarray, np.ndarray], np.ndarray]
"""``(fold, train_mask, test_mask) -> probabilities``: a full ``(H, W)`` map or one value per test pixel."""

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(X_train, y_train, X_test) -> P(positive)`` for pixel feature rows ``(n, n_layers)``."""


class EvaluationError(GeodlError):
    """Block CV cannot run on these data or settings (names the layer, fold or setting and what to change)."""


@dataclass(frozen=True)
class RasterData:
    """Evidence layers, label counts and masks of one raster stack, all on its ``(H, W)`` grid."""

    features: np.ndarray  # (n_layers, H, W) float
    layers: tuple[str, ...]
    deposits: np.ndarray  # (H, W) counts; 0 where invalid
    valid: np.ndarray  # (H, W) bool: every layer and the label are finite
    mask: np.ndarray | None = None  # (H, W) bool, e.g. greenstone
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # pixel-centre coordinates (CRS units)
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the grid."""
        return (int(self.deposits.shape[0]), int(self.deposits.shape[1]))

    @property
    def positives(self) -> np.ndarray:
        """Valid pixels holding at least one deposit."""
        return self.valid & (self.deposits > 0)


def load_raster(archive: Path, layers: Sequence[str], label: str, mask: str | None = None) -> RasterData:
    """Read ``layers``, the ``label`` counts and the optional ``mask`` layer (``> 0.5`` is inside) into memory."""
    import xarray as xr

    from geodl_hpc.archive.store import require_complete

    archive = Path(archive)
    require_complete(archive, "raster")
    ds = xr.open_zarr(archive, consolidated=False)
    available = [str(v) for v in ds.attrs.get("layers", list(ds.data_vars))]
    for role, name in [("label", label), *(("evidence", n) for n in layers), ("mask", mask)]:
        if name is not None and name not in ds.data_vars:
            raise ArchiveError(
                f"{archive}: has no {role} layer {name!r}; its layers are {', '.join(available)} (fix the config)"
            )
    if not layers:
        raise EvaluationError("layers: no evidence layers given; name at least one layer of the archive")
    if label in layers:
        raise EvaluationError(f"layers: the label {label!r} is also an evidence layer; remove it from layers")
    features = np.stack([ds[n].values.astype(np.float64) for n in layers])
    counts = ds[label].values.astype(np.float64)
    valid = np.isfinite(features).all(axis=0) & np.isfinite(counts)
    deposits = np.where(valid, np.nan_to_num(counts, nan=0.0), 0.0)
    mask_map = None
    if mask is not None:
        m = ds[mask].values
        mask_map = np.isfinite(m) & (np.nan_to_num(m) > 0.5)
    return RasterData(features, tuple(layers), deposits, valid, mask_map, ds["x"].values.copy(), ds["y"].values.copy())


def make_folds(
    shape: tuple[int, int],
    blocks: tuple[int, int] = (5, 5),
    n_folds: int = 5,
    seed: int = 0,
    *,
    align: tuple[int, int] | None = None,
) -> BlockFolds:
    """``blocks[0] x blocks[1]`` rectangular blocks dealt to ``n_folds`` folds (the sampler's own block folds)."""
    return block_folds(shape, blocks[0], blocks[1], n_folds, seed, align=align)


def fold_map(folds: BlockFolds, shape: tuple[int, int]) -> np.ndarray:
    """Fold index of every pixel of an ``(H, W)`` grid (constant over each block)."""
    rows = np.searchsorted(folds.row_edges, np.arange(shape[0]), side="right") - 1
    cols = np.searchsorted(folds.col_edges, np.arange(shape[1]), side="right") - 1
    rows = np.clip(rows, 0, folds.fold.shape[0] - 1)
    cols = np.clip(cols, 0, folds.fold.shape[1] - 1)
    return folds.fold[rows[:, None], cols[None, :]]


def check_folds(folds_map: np.ndarray, positives: np.ndarray, valid: np.ndarray) -> None:
    """Every fold must hold valid pixels and at least one positive in its held-out blocks."""
    for k in range(int(folds_map.max()) + 1):
        held = (folds_map == k) & valid
        if not held.any():
            raise EvaluationError(f"fold {k}: has no valid pixels; use fewer folds or blocks")
        if not (held & positives).any():
            raise EvaluationError(
                f"fold {k}: its held-out blocks hold no deposits, so it can be neither trained against nor scored; "
                "use fewer blocks or folds, or another seed"
            )


def buffer_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (Euclidean disc); ``radius = 0`` returns a copy."""
    m = np.asarray(mask, dtype=bool)
    if radius < 0:
        raise EvaluationError(f"buffer={radius}: must be >= 0 pixels")
    out = m.copy()
    h, w = m.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if (dy or dx) and dy * dy + dx * dx <= radius * radius:
                src = m[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
                out[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)] |= src
    return out


def training_pixels(
    data: RasterData,
    train_mask: np.ndarray,
    *,
    buffer: int = 0,
    max_negatives: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices and 0/1 labels to train on inside ``train_mask`` (positives first)."""
    usable = train_mask & data.valid
    pos = buffer_mask(data.positives & usable, buffer) & usable
    neg_idx = np.flatnonzero(usable & ~pos)
    if max_negatives is not None and len(neg_idx) > max_negatives:
        rng = rng or np.random.default_rng(0)
        neg_idx = np.sort(rng.choice(neg_idx, size=max_negatives, replace=False))
    pos_idx = np.flatnonzero(pos)
    idx = np.concatenate([pos_idx, neg_idx])
    y = np.concatenate([np.ones(len(pos_idx), np.int8), np.zeros(len(neg_idx), np.int8)])
    return idx, y


def pixel_predictor(
    data: RasterData,
    fit_predict: FitPredict,
    *,
    buffer: int = 0,
    max_negatives: int | None = None,
    seed: int = 0,
) -> FoldPredictor:
    """A fold predictor that trains ``fit_predict`` on the training blocks' pixels and scores the test pixels."""
    rows = data.features.reshape(len(data.layers), -1).T

    def predict(fold: int, train_mask: np.ndarray, test_mask: np.ndarray) -> np.ndarray:
        idx, y = training_pixels(
            data, train_mask, buffer=buffer, max_negatives=max_negatives, rng=np.random.default_rng([seed, fold])
        )
        if not y.any():
            raise EvaluationError(
                f"fold {fold}: the training blocks hold no deposits; use fewer blocks or folds, or another seed"
            )
        return fit_predict(rows[idx], y, rows[np.flatnonzero(test_mask)])

    return predict


def train_mask_for(folds_map: np.ndarray, valid: np.ndarray, held_out: Sequence[int], gap: int = 0) -> np.ndarray:
    """Training pixels without the folds ``held_out`` and, with ``gap = N``, without every pixel within N pixels
    of them (buffered block CV: no training cell touches the test blocks' neighbourhood)."""
    held = np.isin(folds_map, list(held_out))
    return valid & ~(buffer_mask(held, gap) if gap > 0 else held)


def out_of_fold(folds_map: np.ndarray, valid: np.ndarray, predictor: FoldPredictor, *, gap: int = 0) -> np.ndarray:
    """Probability map where each valid pixel is predicted by the model trained without its fold (NaN elsewhere);
    ``gap`` pixels around the held-out fold are dropped from training too (buffered CV)."""
    out = np.full(folds_map.shape, np.nan)
    for k in range(int(folds_map.max()) + 1):
        test = (folds_map == k) & valid
        train = train_mask_for(folds_map, valid, [k], gap)
        pred = np.asarray(predictor(k, train, test), dtype=np.float64)
        if pred.shape == folds_map.shape:
            out[test] = pred[test]
        elif pred.shape == (int(test.sum()),):
            out[test] = pred
        else:
            raise EvaluationError(
                f"fold {k}: the model returned shape {pred.shape}; expected a {folds_map.shape} map "
                f"or {int(test.sum())} test-pixel values"
            )
    return out


@dataclass(frozen=True)
class CVResult:
    """One model's out-of-fold probability map, its contract metrics and its per-fold AUC."""

    name: str
    probability: np.ndarray
    metrics: dict[str, Any]
    area: np.ndarray  # success-rate curve
    captured: np.ndarray


def score_map(name: str, probability: np.ndarray, data: RasterData, folds_map: np.ndarray) -> CVResult:
    """Contract metrics of an out-of-fold map on the unbuffered deposits, plus AUC per held-out fold."""
    metrics: dict[str, Any] = dict(prospectivity_metrics(probability, data.deposits, valid=data.valid, mask=data.mask))
    per_fold: list[float | None] = []
    for k in range(int(folds_map.max()) + 1):
        held = (folds_map == k) & data.valid
        try:
            per_fold.append(roc_auc(probability, data.deposits, held))
        except GeodlError:
            per_fold.append(None)
    metrics["auc_per_fold"] = per_fold
    area, captured = success_rate_curve(probability, data.deposits, data.valid)
    return CVResult(name, probability, metrics, area, captured)


def run_blockcv(
    data: RasterData,
    folds_map: np.ndarray,
    models: Mapping[str, FoldPredictor],
    *,
    gap: int = 0,
) -> dict[str, CVResult]:
    """Out-of-fold maps and metrics of every model on the same folds (checked first); ``gap``: buffered CV."""
    check_folds(folds_map, data.positives, data.valid)
    return {
        name: score_map(name, out_of_fold(folds_map, data.valid, p, gap=gap), data, folds_map)
        for name, p in models.items()
    }
