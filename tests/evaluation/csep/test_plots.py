"""CSEP figures: each writes a PNG; the test-result plot marks the real Ridgecrest failures red and the
consistent synthetic catalog's passes green."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geodl_hpc.evaluation.csep import kernels as K
from geodl_hpc.evaluation.csep import plots
from tests.evaluation.csep.conftest import Pair


def _pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(matplotlib.image.imread(str(path)))[..., :3]


def _has_colour(image: np.ndarray, rgb: tuple[float, float, float]) -> bool:
    return bool(np.any(np.all(np.abs(image - np.asarray(rgb)) < 0.02, axis=-1)))


RED = (0.839, 0.153, 0.157)  # matplotlib tab:red
GREEN = (0.173, 0.627, 0.173)  # tab:green


def test_test_results_plot_colours(ridgecrest_pair: Pair, consistent_pair: Pair, tmp_path: Path) -> None:
    failing = [K.s_test(ridgecrest_pair.a.rates, ridgecrest_pair.counts, n_sim=100, seed=0)]
    image = _pixels(plots.plot_test_results(failing, tmp_path / "fail.png", title="Ridgecrest"))
    assert _has_colour(image, RED) and not _has_colour(image, GREEN)
    passing = [
        K.n_test(consistent_pair.a.rates, consistent_pair.counts),
        K.m_test(consistent_pair.a.rates, consistent_pair.counts, n_sim=100, seed=0),
    ]
    image = _pixels(plots.plot_test_results(passing, tmp_path / "pass.png"))
    assert _has_colour(image, GREEN) and not _has_colour(image, RED)


def test_windowed_plots(ridgecrest_pair: Pair, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scale = np.linspace(0.02, 0.1, 5)[:, None, None]
    rates_a, rates_b = ridgecrest_pair.a.rates[None] * scale, ridgecrest_pair.b.rates[None] * scale
    counts = rng.poisson(rates_a).astype(float)
    per_window = K.t_test(rates_a, rates_b, counts)
    path = plots.plot_information_gain(per_window, tmp_path / "ig.png", K.cumulative_t_test(rates_a, rates_b, counts))
    assert _pixels(path).shape[0] > 100
    l_windows = K.l_test(rates_a, counts, n_sim=50, seed=0)
    assert _pixels(plots.plot_test_results([l_windows, per_window], tmp_path / "windows.png")).shape[0] > 300
    curves = plots.plot_molchan_roc(
        {"Helmstetter": ridgecrest_pair.a.rates, "aftershock": ridgecrest_pair.b.rates},
        ridgecrest_pair.counts,
        tmp_path / "molchan.png",
    )
    assert _pixels(curves).shape[1] > 600
    fc_map = plots.plot_forecast_map(
        ridgecrest_pair.a, tmp_path / "map.png", events=(ridgecrest_pair.lon, ridgecrest_pair.lat, ridgecrest_pair.mag)
    )
    assert _has_colour(_pixels(fc_map), (1.0, 0.0, 0.0))  # the events, drawn red
