"""Forecasters in one framework: each fits on windows ``< until`` and forecasts window ``w`` from history
``< w`` only, as expected counts (n_cells, n_mags) and P(N >= 1) per cell.

``UniformPoisson`` (training mean rate, uniform in area), ``SmoothedSeismicity`` (Gaussian kernel, fixed or
Helmstetter-style adaptive bandwidth), ``ETASForecaster`` (expected rates of given ETAS parameters) and
``RNNForecaster`` (a GRU/LSTM trained with the training engine). ``build_forecaster(name, options)`` makes one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.gr import b_value_from_counts, gr_fractions
from geodl_hpc.forecasting.grid import KM_PER_DEGREE, SpaceMagGrid

if TYPE_CHECKING:
    import pandas as pd

    from geodl_hpc.forecasting.etas import ETASParams
    from geodl_hpc.models.forecast_rnn import ForecastRNN


class TrainingPreempted(Exception):
    """``RNNForecaster.fit`` stopped at a preemption signal with a checkpoint: return so the job is requeued; the
    next ``fit`` with the same output and ``until`` resumes from that checkpoint."""


class Forecaster(Protocol):
    """``fit(counts (W, C, M), X (W, C, F), until)`` reads windows ``< until`` only; ``rates(w)`` and
    ``probability(w)`` (for ``w >= until``) read counts of windows ``< w`` and features of windows ``<= w``
    (feature row ``w`` is itself built from windows ``< w``)."""

    name: str

    def fit(self, counts: np.ndarray, X: np.ndarray, until: int) -> None: ...

    def rates(self, window: int) -> np.ndarray: ...

    def probability(self, window: int) -> np.ndarray: ...


class _Fitted:
    """Shared bookkeeping: the grid, the fitted ``until`` and the check that forecasts are out of sample."""

    name = "forecaster"

    def __init__(self, grid: SpaceMagGrid) -> None:
        self.grid = grid
        self.until: int | None = None

    def _check_fit(self, counts: np.ndarray, until: int) -> np.ndarray:
        counts = np.asarray(counts)
        if counts.ndim != 3 or counts.shape[1:] != (self.grid.n_cells, self.grid.n_mags):
            raise ConfigError(
                f"{self.name}: counts {counts.shape} do not match the grid ({self.grid.n_cells}, {self.grid.n_mags})"
            )
        if not 1 <= until <= counts.shape[0]:
            raise ConfigError(f"{self.name}: until={until} must be in [1, {counts.shape[0]}] windows")
        self.until = until
        return counts

    def _check_window(self, window: int) -> None:
        if self.until is None:
            raise ConfigError(f"{self.name}: call fit() before forecasting")
        if window < self.until:
            raise ConfigError(
                f"{self.name}: window {window} is inside the fitted period (< {self.until}); fit with until <= window"
            )

    def probability(self, window: int) -> np.ndarray:
        """P(N >= 1 event >= Mc) per cell under the Poisson rates."""
        return 1.0 - np.exp(-self.rates(window).sum(axis=1))

    def rates(self, window: int) -> np.ndarray:
        raise NotImplementedError


def _area_fractions(grid: SpaceMagGrid) -> np.ndarray:
    area = grid.cell_area_km2()
    return area / area.sum()


class UniformPoisson(_Fitted):
    """The training-period mean count per window, spread uniformly in area and over magnitudes by GR (b fitted
    on the training period)."""

    name = "uniform_poisson"

    def fit(self, counts: np.ndarray, X: np.ndarray, until: int) -> None:
        counts = self._check_fit(counts, until)
        train = counts[:until]
        self.total_rate = float(train.sum()) / until
        self.b = b_value_from_counts(train.sum(axis=(0, 1)), np.asarray(self.grid.mag_edges))
        self._rates = np.outer(self.total_rate * _area_fractions(self.grid), gr_fractions(self.b, self.grid.mag_edges))

    def rates(self, window: int) -> np.ndarray:
        self._check_window(window)
        return self._rates.copy()


class SmoothedSeismicity(_Fitted):
    """Training-period epicentres (cell centres, weighted by counts) smoothed with a Gaussian kernel, normalised
    to the training-period mean count per window, mixed with ``floor`` of a uniform rate so no cell has zero.

    ``kernel="gaussian"``: fixed ``bandwidth_km``. ``kernel="adaptive"``: each epicentre's bandwidth is the
    distance to its ``k``-th nearest other epicentre, at least ``min_bandwidth_km`` (Helmstetter, Kagan &
    Jackson 2007, SRL 78(1)).
    """

    def __init__(
        self,
        grid: SpaceMagGrid,
        *,
        kernel: str = "gaussian",
        bandwidth_km: float = 50.0,
        k: int = 5,
        min_bandwidth_km: float | None = None,
        floor: float = 0.01,
    ) -> None:
        super().__init__(grid)
        if kernel not in ("gaussian", "adaptive"):
            raise ConfigError(f"smoothed.kernel: {kernel!r} is not one of 'gaussian', 'adaptive'")
        if bandwidth_km <= 0 or k < 1 or not 0 <= floor < 1:
            raise ConfigError("smoothed: bandwidth_km > 0, k >= 1 and 0 <= floor < 1 are required")
        self.kernel, self.bandwidth_km, self.k, self.floor = kernel, bandwidth_km, k, floor
        cell_km = grid.dh * KM_PER_DEGREE * math.cos(math.radians((grid.lat_min + grid.lat_max) / 2))
        self.min_bandwidth_km = min_bandwidth_km if min_bandwidth_km is not None else cell_km / 2
        self.name = f"smoothed_{kernel}"

    def _xy_km(self) -> np.ndarray:
        c = self.grid.centers
        lat0 = math.radians((self.grid.lat_min + self.grid.lat_max) / 2)
        return np.column_stack([c[:, 0] * KM_PER_DEGREE * math.cos(lat0), c[:, 1] * KM_PER_DEGREE])

    def _bandwidths(self, xy: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Distance from each occupied cell to its k-th nearest other event (events share their cell's centre)."""
        if self.kernel == "gaussian":
            return np.full(len(xy), self.bandwidth_km)
        from scipy.spatial import cKDTree

        # every occupied cell holds >= 1 event, so the k-th other event is among the k + 1 nearest cells
        n_near = min(self.k + 1, len(xy))
        dist, idx = cKDTree(xy).query(xy, k=n_near)
        dist, idx = dist.reshape(len(xy), n_near), idx.reshape(len(xy), n_near)
        others = weights[idx].astype(np.float64)
        others[idx == np.arange(len(xy))[:, None]] -= 1.0  # not itself
        reached = np.cumsum(others, axis=1) >= self.k
        first = np.where(reached.any(axis=1), np.argmax(reached, axis=1), n_near - 1)
        return np.maximum(dist[np.arange(len(xy)), first], self.min_bandwidth_km)

    def fit(self, counts: np.ndarray, X: np.ndarray, until: int) -> None:
        counts = self._check_fit(counts, until)
        train = counts[:until]
        per_cell = train.sum(axis=(0, 2)).astype(np.float64)
        self.total_rate = float(per_cell.sum()) / until
        self.b = b_value_from_counts(train.sum(axis=(0, 1)), np.asarray(self.grid.mag_edges))
        uniform = _area_fractions(self.grid)
        occupied = np.flatnonzero(per_cell > 0)
        if occupied.size == 0:
            density = uniform
        else:
            xy = self._xy_km()
            w = per_cell[occupied]
            h = self._bandwidths(xy[occupied], w)
            area = self.grid.cell_area_km2()
            smooth = np.zeros(self.grid.n_cells)
            for i0 in range(0, occupied.size, 256):  # blocks bound the (block, n_cells) kernel matrix
                sl = slice(i0, i0 + 256)
                d2 = ((xy[occupied[sl]][:, None, :] - xy[None, :, :]) ** 2).sum(-1)
                kern = np.exp(-0.5 * d2 / (h[sl, None] ** 2)) * area[None, :]
                kern /= kern.sum(axis=1, keepdims=True)  # each event's mass stays in the grid
                smooth += (w[sl, None] * kern).sum(axis=0)
            smooth /= w.sum()
            density = (1.0 - self.floor) * smooth + self.floor * uniform
        self.density = density
        self._rates = np.outer(self.total_rate * density, gr_fractions(self.b, self.grid.mag_edges))

    def rates(self, window: int) -> np.ndarray:
        self._check_window(window)
        return self._rates.copy()


class ETASForecaster(_Fitted):
    """Expected counts of given ETAS parameters from the catalog ``table``'s events before each window start
    (``edges`` the window edges); ``fit`` only records ``until`` (the parameters are not re-estimated).

    ``n_sims > 0``: the mean of that many simulated continuations (includes triggering inside the window);
    ``n_sims = 0``: the analytic rate of past events only (a lower bound in active sequences, faster).
    """

    name = "etas"

    def __init__(
        self, grid: SpaceMagGrid, params: ETASParams, table: pd.DataFrame, edges: np.ndarray, n_sims: int = 100,
        seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(grid)
        self.params, self.table, self.edges = params, table, np.asarray(edges, dtype="datetime64[ms]")
        self.n_sims, self.seed = n_sims, seed

    def fit(self, counts: np.ndarray, X: np.ndarray, until: int) -> None:
        self._check_fit(counts, until)

    def rates(self, window: int) -> np.ndarray:
        from geodl_hpc.forecasting.etas import etas_expected_rates, etas_simulated_rates

        self._check_window(window)
        if window + 1 >= len(self.edges):
            raise ConfigError(f"etas: window {window} has no end edge ({len(self.edges) - 1} windows)")
        span = (self.edges[window], self.edges[window + 1])
        if self.n_sims > 0:
            return etas_simulated_rates(self.table, self.params, self.grid, span, n_sims=self.n_sims, seed=self.seed)
        return etas_expected_rates(self.table, self.params, self.grid, span)


class RNNForecaster(_Fitted):
    """A :class:`~geodl_hpc.models.forecast_rnn.ForecastRNN` trained with ``geodl_hpc.training.loop.train`` on
    the sequences of windows ``1 .. until - 1`` (checkpoints and exact resume in ``output/until-NNNNN``).

    Rates: the predicted expected count spread over magnitudes by GR (b of the training period); probability:
    the occurrence head's sigmoid. A preemption signal during training raises :class:`TrainingPreempted`.
    """

    name = "rnn"

    def __init__(
        self,
        grid: SpaceMagGrid,
        output: Path | str,
        *,
        seq_len: int = 12,
        hidden: int = 32,
        layers: int = 1,
        cell: str = "gru",
        epochs: int = 3,
        batch_size: int = 256,
        lr: float = 3e-3,
        seed: int = 0,
        threads: int = 0,
    ) -> None:
        super().__init__(grid)
        self.output = Path(output)
        self.seq_len, self.hidden, self.layers, self.cell = seq_len, hidden, layers, cell
        self.epochs, self.batch_size, self.lr, self.seed, self.threads = epochs, batch_size, lr, seed, threads
        self.model: ForecastRNN | None = None
        self.result: dict[str, Any] = {}

    def fit(self, counts: np.ndarray, X: np.ndarray, until: int) -> None:
        import torch

        from geodl_hpc.forecasting.dataset import SequenceBatches
        from geodl_hpc.models.forecast_rnn import ForecastRNN
        from geodl_hpc.training.config import TrainConfig
        from geodl_hpc.training.loop import train

        counts = self._check_fit(counts, until)
        if until < 2:
            raise ConfigError(f"rnn: until={until}: needs at least 2 windows (the first has no history)")
        X = np.asarray(X, dtype=np.float32)
        self.X = X
        totals = counts.sum(axis=2)
        past = X[1:until].reshape(-1, X.shape[2])
        b = b_value_from_counts(counts[:until].sum(axis=(0, 1)), np.asarray(self.grid.mag_edges))
        torch.manual_seed(self.seed)  # initial weights from the seed, not from whatever ran before
        model = ForecastRNN(
            X.shape[2],
            hidden=self.hidden,
            layers=self.layers,
            cell="lstm" if self.cell == "lstm" else "gru",
            feature_mean=past.mean(axis=0),
            feature_std=past.std(axis=0),
            base_rate=float(totals[:until].mean()),
            b_value=b,
        )
        source = SequenceBatches(
            X[:until], totals[:until], np.arange(1, until), seq_len=self.seq_len, batch_size=self.batch_size,
            seed=self.seed,
        )  # fmt: skip
        config = TrainConfig(
            epochs=self.epochs, lr=self.lr, seed=self.seed, threads=self.threads, checkpoint_every_steps=10**6,
            log_every=50, progress=False, plot=False,
        )  # fmt: skip
        folder = self.output / f"until-{until:05d}"
        self.result = train(config, source, model, folder)
        if self.result["status"] != "completed":
            raise TrainingPreempted(f"{folder}: RNN training preempted at step {self.result['step']}; rerun to resume")
        model.eval()
        self.model = model

    def _outputs(self, window: int) -> np.ndarray:
        import torch

        from geodl_hpc.forecasting.dataset import sequences

        self._check_window(window)
        if self.model is None:
            raise ConfigError("rnn: call fit() before forecasting")
        cells = np.arange(self.grid.n_cells)
        x = sequences(self.X, np.full(len(cells), window), cells, self.seq_len)
        with torch.no_grad():
            return self.model(torch.from_numpy(x)).double().numpy()

    def rates(self, window: int) -> np.ndarray:
        out = self._outputs(window)
        b = float(self.model.b_value.item()) if self.model is not None else 1.0
        return np.outer(np.exp(out[:, 1]), gr_fractions(b, self.grid.mag_edges))

    def probability(self, window: int) -> np.ndarray:
        out = self._outputs(window)
        return 1.0 / (1.0 + np.exp(-out[:, 0]))


FORECASTERS = ("uniform_poisson", "smoothed_gaussian", "smoothed_adaptive", "etas", "rnn")


def build_forecaster(name: str, options: dict[str, Any]) -> Forecaster:
    """A forecaster by name; ``options["grid"]`` (a SpaceMagGrid) is required, the rest go to its constructor
    (``etas`` needs ``params``, ``table``, ``edges``; ``rnn`` needs ``output``)."""
    opts = dict(options)
    grid = opts.pop("grid", None)
    if not isinstance(grid, SpaceMagGrid):
        raise ConfigError("forecaster options: 'grid' must be a geodl_hpc.forecasting.grid.SpaceMagGrid")
    try:
        if name == "uniform_poisson":
            return UniformPoisson(grid, **opts)
        if name in ("smoothed_gaussian", "smoothed_adaptive"):
            return SmoothedSeismicity(grid, kernel=name.split("_")[1], **opts)
        if name == "etas":
            return ETASForecaster(grid, **opts)
        if name == "rnn":
            return RNNForecaster(grid, **opts)
    except TypeError as exc:
        raise ConfigError(f"forecaster {name!r}: bad options ({exc})") from None
    raise ConfigError(f"forecaster {name!r} is not one of {', '.join(FORECASTERS)}")
