"""A SYNTHETIC ETAS catalog shared by the forecasting tests: California parameters of Mizrahi et al. (2021) over
the California box, 1995-2015 after 100 years of spin-up, seed 1, binned from M3.55 on 1-degree cells (the
box extended to 43.5N so that it holds whole cells)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.forecasting.binning import bin_catalog, window_edges
from geodl_hpc.forecasting.etas import CALIFORNIA_BBOX, CALIFORNIA_MIZRAHI_2021, simulate_etas
from geodl_hpc.forecasting.features import history_features
from geodl_hpc.forecasting.grid import SpaceMagGrid


@dataclass(frozen=True)
class Binned:
    table: pd.DataFrame
    grid: SpaceMagGrid
    edges: np.ndarray
    counts: np.ndarray
    X: np.ndarray


@pytest.fixture(scope="session")
def etas_binned() -> Binned:
    table = simulate_etas(
        CALIFORNIA_MIZRAHI_2021, CALIFORNIA_BBOX, "1995-01-01", "2015-01-01", np.random.default_rng(1)
    )
    grid = SpaceMagGrid.from_bbox((-125.0, 31.5, -113.0, 43.5), 1.0, 3.55, 8.45, 0.1)
    edges = window_edges("1995-01-01", "2015-01-01", 30.0)
    counts = bin_catalog(table, grid, edges)
    return Binned(table, grid, edges, counts, history_features(counts, grid))
