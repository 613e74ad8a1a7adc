"""Block CV on small synthetic rasters: fold maps, training labels without leakage, out-of-fold maps, errors."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_hpc.evaluation.blockcv import (
    EvaluationError,
    RasterData,
    buffer_mask,
    fold_map,
    make_folds,
    out_of_fold,
    pixel_predictor,
    run_blockcv,
    training_pixels,
)
from geodl_hpc.sampling import UnitGrid, grid_chips


def _data(h: int = 50, w: int = 40, seed: int = 0) -> RasterData:
    rng = np.random.default_rng(seed)
    signal = rng.random((h, w))
    deposits = (rng.random((h, w)) < 0.1 * signal**3).astype(float)
    features = np.stack([signal, rng.random((h, w))])
    return RasterData(features, ("signal", "noise"), deposits, np.ones((h, w), bool), signal > 0.5)


def _mean_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    return np.asarray(x_test[:, 0])


def test_fold_map_follows_blocks_and_folds_are_balanced() -> None:
    shape = (53, 47)
    folds = make_folds(shape, (5, 5), 5, seed=7)
    fm = fold_map(folds, shape)
    assert fm.shape == shape
    # each block is one fold, and every fold holds 5 of the 25 blocks
    for i in range(5):
        for j in range(5):
            block = fm[folds.row_edges[i] : folds.row_edges[i + 1], folds.col_edges[j] : folds.col_edges[j + 1]]
            assert np.all(block == folds.fold[i, j])
    assert np.bincount(folds.fold.ravel(), minlength=5).tolist() == [5, 5, 5, 5, 5]
    # chips the sampler assigns to a fold lie wholly inside that fold on the pixel map; the others are dropped
    chips = grid_chips(UnitGrid(*shape, chunk=(53, 47)), 8, stride=3)
    chip_folds = folds.fold_of(chips, 8)
    assert (chip_folds >= 0).any() and (chip_folds < 0).any()
    for (r, c), k in zip(chips.tolist(), chip_folds.tolist(), strict=True):
        if k >= 0:
            assert np.unique(fm[r : r + 8, c : c + 8]).tolist() == [k]
        else:  # dropped chips straddle a block edge
            crosses_row = np.any((folds.row_edges > r) & (folds.row_edges < r + 8))
            crosses_col = np.any((folds.col_edges > c) & (folds.col_edges < c + 8))
            assert crosses_row or crosses_col


def test_buffered_training_positives_stay_in_training_blocks() -> None:
    data = _data()
    train = np.zeros(data.shape, bool)
    train[:, :20] = True
    idx, y = training_pixels(data, train, buffer=2)
    _, cols = np.unravel_index(idx, data.shape)
    assert np.all(cols < 20)  # nothing from the held-out half, buffered or not
    pos = np.zeros(data.shape, bool)
    pos.flat[idx[y == 1]] = True
    want = buffer_mask(data.positives & train, 2) & train
    np.testing.assert_array_equal(pos, want)
    dot = np.zeros((9, 9), bool)
    dot[4, 4] = True
    assert [int(buffer_mask(dot, r).sum()) for r in (0, 1, 2)] == [1, 5, 13]  # Euclidean discs


def test_negative_subsample_is_seeded() -> None:
    data = _data()
    train = np.ones(data.shape, bool)
    a = training_pixels(data, train, max_negatives=100, rng=np.random.default_rng(1))
    b = training_pixels(data, train, max_negatives=100, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
    assert int((a[1] == 0).sum()) == 100


def test_out_of_fold_map_is_predicted_without_its_fold() -> None:
    data = _data()
    fm = fold_map(make_folds(data.shape, (5, 5), 5, 0), data.shape)
    seen: list[tuple[int, bool]] = []

    def predictor(fold: int, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        seen.append((fold, bool((train & test).any())))
        return np.full(data.shape, float(fold))

    oof = out_of_fold(fm, data.valid, predictor)
    np.testing.assert_array_equal(oof, fm.astype(float))
    assert seen == [(k, False) for k in range(5)]


def test_run_blockcv_scores_an_informative_layer() -> None:
    data = _data()
    fm = fold_map(make_folds(data.shape, (5, 5), 5, 0), data.shape)
    result = run_blockcv(data, fm, {"signal": pixel_predictor(data, _mean_score)})["signal"]
    assert result.metrics["auc_blockcv"] > 0.6
    assert len(result.metrics["auc_per_fold"]) == 5


def test_fold_without_deposits_is_named() -> None:
    data = _data()
    fm = fold_map(make_folds(data.shape, (5, 5), 5, 0), data.shape)
    deposits = np.where(fm == 3, 0.0, data.deposits)
    empty = RasterData(data.features, data.layers, deposits, data.valid, data.mask)
    with pytest.raises(EvaluationError, match=r"^fold 3: its held-out blocks hold no deposits") as err:
        run_blockcv(empty, fm, {"signal": pixel_predictor(empty, _mean_score)})
    assert "\n" not in str(err.value)


def test_model_returning_wrong_shape_is_named() -> None:
    data = _data()
    fm = fold_map(make_folds(data.shape, (5, 5), 5, 0), data.shape)
    with pytest.raises(EvaluationError, match="fold 0: the model returned shape"):
        out_of_fold(fm, data.valid, lambda k, tr, te: np.zeros(3))
