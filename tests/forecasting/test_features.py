"""History features: row w never depends on windows >= w, and the values mean what their names say."""

from __future__ import annotations

import numpy as np

from geodl_hpc.forecasting.features import FEATURE_NAMES, feature_names, history_features
from geodl_hpc.forecasting.grid import SpaceMagGrid
from tests.forecasting.conftest import Binned

GRID = SpaceMagGrid.from_bbox((0.0, 0.0, 3.0, 2.0), 1.0, 4.0, 4.5, 0.1)  # 6 cells, 6 magnitude bins


def test_no_look_ahead_changing_the_future_never_changes_row_w(etas_binned: Binned) -> None:
    counts, grid = etas_binned.counts, etas_binned.grid
    base = history_features(counts, grid)
    assert base.shape == (counts.shape[0], grid.n_cells, len(FEATURE_NAMES)) and base.dtype == np.float32
    rng = np.random.default_rng(0)
    for w in (0, 1, 37, counts.shape[0] - 1):
        future = counts.copy()
        future[w:] = rng.poisson(3.0, size=future[w:].shape)
        changed = history_features(future, grid)
        np.testing.assert_array_equal(changed[: w + 1], base[: w + 1])
        if w + 1 < counts.shape[0]:
            assert not np.array_equal(changed[w + 1 :], base[w + 1 :])


def test_feature_values_on_a_hand_made_history() -> None:
    counts = np.zeros((6, GRID.n_cells, GRID.n_mags), dtype=np.int64)
    counts[1, 0, 0] = 2  # cell 0 (lon 0, lat 0): two M4.0 events in window 1
    counts[3, 0, 5] = 1  # and one M4.5+ in window 3
    counts[3, 2, 1] = 1  # cell 2 (lon 1, lat 0), a neighbour of cell 0
    X = history_features(counts, GRID, lookbacks=(1, 3))
    col = {name: i for i, name in enumerate(feature_names((1, 3)))}
    assert X[1, 0, col["log_count_1"]] == 0.0  # window 1 itself is not history for row 1
    np.testing.assert_allclose(X[2, 0, col["log_count_1"]], np.log1p(2))
    np.testing.assert_allclose(X[4, 0, col["log_count_3"]], np.log1p(3))  # windows 1..3
    np.testing.assert_allclose(X[5, 0, col["log_count_3"]], np.log1p(1))  # windows 2..4
    np.testing.assert_allclose(X[5, 0, col["log_windows_since_last"]], np.log1p(2))  # last event in window 3
    np.testing.assert_allclose(X[0, 0, col["log_windows_since_last"]], np.log1p(1))  # none yet: w + 1
    np.testing.assert_allclose(X[4, 0, col["max_mag_excess_3"]], 0.6, atol=1e-6)  # top bin 4.5: 0.5 + 0.1
    np.testing.assert_allclose(X[3, 0, col["max_mag_excess_3"]], 0.1, atol=1e-6)  # first bin: 0 + 0.1
    np.testing.assert_allclose(X[4, 0, col["log_neighbour_count_1"]], np.log1p(1))
    np.testing.assert_allclose(X[4, 1, col["log_region_count_3"]], np.log1p(4))  # whole region, windows 1..3
    np.testing.assert_allclose(X[4, :, col["b_value_region"]], 1.0)  # fewer than 10 events: the default
