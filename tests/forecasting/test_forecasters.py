"""Forecasters on a SYNTHETIC ETAS catalog: baselines integrate to the training rate, no forecaster looks ahead,
and the RNN (trained with the training engine) beats UniformPoisson on held-out windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.etas import CALIFORNIA_MIZRAHI_2021
from geodl_hpc.forecasting.features import history_features
from geodl_hpc.forecasting.forecasters import Forecaster, build_forecaster
from geodl_hpc.forecasting.scores import poisson_log_likelihood
from tests.forecasting.conftest import Binned

RNN = {"epochs": 2, "seq_len": 6, "hidden": 16, "batch_size": 256, "threads": 1}


def _make(name: str, data: Binned, tmp: Path) -> Forecaster:
    options: dict[str, object] = {"grid": data.grid}
    if name == "etas":
        options.update(params=CALIFORNIA_MIZRAHI_2021, table=data.table, edges=data.edges)
    if name == "rnn":
        options.update(output=tmp, **RNN)
    return build_forecaster(name, options)


@pytest.mark.parametrize("name", ["uniform_poisson", "smoothed_gaussian", "smoothed_adaptive"])
def test_baselines_integrate_to_the_training_rate(name: str, etas_binned: Binned, tmp_path: Path) -> None:
    until = 200
    model = _make(name, etas_binned, tmp_path)
    model.fit(etas_binned.counts, etas_binned.X, until)
    rates = model.rates(until)
    assert rates.shape == (etas_binned.grid.n_cells, etas_binned.grid.n_mags) and (rates > 0).all()
    assert rates.sum() == pytest.approx(etas_binned.counts[:until].sum() / until, rel=1e-9)
    np.testing.assert_allclose(model.probability(until), 1 - np.exp(-rates.sum(axis=1)))
    if name != "uniform_poisson":  # smoothing puts more rate where the training events were
        busy = etas_binned.counts[:until].sum(axis=(0, 2)) > 0
        per_area = rates.sum(axis=1) / etas_binned.grid.cell_area_km2()
        assert per_area[busy].mean() > 2 * per_area[~busy].mean()


@pytest.mark.parametrize("name", ["uniform_poisson", "smoothed_gaussian", "smoothed_adaptive", "etas", "rnn"])
def test_no_forecaster_looks_ahead(name: str, etas_binned: Binned, tmp_path: Path) -> None:
    until, w = 150, 160
    model = _make(name, etas_binned, tmp_path / "a")
    model.fit(etas_binned.counts, etas_binned.X, until)
    before, p_before = model.rates(w), model.probability(w)
    # A different future from window w on: counts, the features built from them, and the catalog's events.
    counts = etas_binned.counts.copy()
    counts[w:] = np.random.default_rng(0).poisson(0.5, size=counts[w:].shape)
    table = etas_binned.table.copy()
    later = table["time"] >= pd.Timestamp(etas_binned.edges[w], tz="UTC")
    table.loc[later, "magnitude"] = 7.0
    other = Binned(table, etas_binned.grid, etas_binned.edges, counts, history_features(counts, etas_binned.grid))
    again = _make(name, other, tmp_path / "b")
    again.fit(other.counts, other.X, until)
    np.testing.assert_array_equal(again.rates(w), before)
    np.testing.assert_array_equal(again.probability(w), p_before)
    with pytest.raises(ConfigError, match="inside the fitted period"):
        model.rates(until - 1)


def test_rnn_learns_and_beats_uniform_poisson_on_held_out_windows(etas_binned: Binned, tmp_path: Path) -> None:
    until = 200
    test = range(until, etas_binned.counts.shape[0])
    observed = etas_binned.counts[until:]
    scores = {}
    for name in ("uniform_poisson", "rnn"):
        model = _make(name, etas_binned, tmp_path)
        model.fit(etas_binned.counts, etas_binned.X, until)
        scores[name] = poisson_log_likelihood(np.stack([model.rates(w) for w in test]), observed)
    assert scores["rnn"] > scores["uniform_poisson"]
    records = [json.loads(x) for x in (tmp_path / f"until-{until:05d}" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r["loss"] for r in records if r["kind"] == "epoch"]
    assert len(epochs) == RNN["epochs"] and epochs[-1] < epochs[0]  # the training loss falls
    assert (tmp_path / f"until-{until:05d}" / "checkpoints").is_dir()


def test_unknown_forecaster_is_a_one_line_config_error(etas_binned: Binned) -> None:
    with pytest.raises(ConfigError, match="not one of"):
        build_forecaster("crystal_ball", {"grid": etas_binned.grid})
    with pytest.raises(ConfigError, match="grid"):
        build_forecaster("uniform_poisson", {})


def test_adaptive_bandwidth_is_the_distance_to_the_kth_other_event() -> None:
    from geodl_hpc.forecasting.forecasters import SmoothedSeismicity
    from geodl_hpc.forecasting.grid import SpaceMagGrid

    grid = SpaceMagGrid.from_bbox((0.0, 0.0, 5.0, 1.0), 1.0, 4.0, 4.0)
    model = SmoothedSeismicity(grid, kernel="adaptive", k=2, min_bandwidth_km=1.0)
    xy = np.array([[0.0, 0.0], [30.0, 0.0], [100.0, 0.0]])
    weights = np.array([3, 1, 1])  # three events share the first cell
    h = model._bandwidths(xy, weights)
    # first cell: its 2 other events are at distance 0 -> the minimum; second: 2nd other event is in cell 1 (30 km);
    # third: nearest is cell 2 (70 km, one event), then cell 1 (100 km, three events)
    np.testing.assert_allclose(h, [1.0, 30.0, 100.0])
