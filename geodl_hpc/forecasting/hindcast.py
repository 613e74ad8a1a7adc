"""Hindcast campaigns: rolling-origin forecasts of every model for every test window, tested window by window.

Windows of ``period.window_days`` run from ``training_start``; the test windows start at ``test_start``. A model
is refit every ``refit_every`` test windows at a refit origin ``o`` on windows ``< o`` only, then forecasts
windows ``o .. o + refit_every - 1`` from history before each of them. No look-ahead by construction: a work
item hands its forecasters the counts, features and events up to the end of its own block and no further, and
feature row ``w`` is built from windows ``< w``. ``tests/forecasting/test_hindcast.py`` checks it by changing
the future and comparing.

Work items are (model, block of ``refit_every * refits_per_item`` test windows); each fits its refits, writes
its slice of ``forecasts/MODEL.zarr`` and returns one row per window and test (observed statistic, quantiles,
pass/fail, events, expected events, log-likelihood): N, L, CL, S, M and Brier for every model, paired T and W
against the reference model (whose rates the item recomputes, see :func:`reference_rates`) for the others.
:mod:`geodl_hpc.launch.campaign` runs them (in-process, Ray, Slurm array), resumes a killed run and concatenates
the pieces; the information gain against the reference model is added to the final table, then the whole-period
tests, Molchan area skill scores, plots and ``report.md`` are written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.forecasting.hindcast_config import PAIRED_TESTS, CatalogConfig, HindcastConfig, ModelConfig
from geodl_hpc.osutil import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from geodl_hpc.forecasting.grid import SpaceMagGrid
    from geodl_hpc.launch.campaign import Campaign

FORECASTS_KIND = "hindcast_forecasts"
ETAS_CATALOG = "inputs/catalog_etas.parquet"  # where a simulated catalog is kept, in the run folder
MS_PER_DAY = 86_400_000
# Pass/fail at the CSEP level (Zechar et al. 2010), as evaluation.csep.plots colours them: the N-test passes when
# both deltas are >= 0.025, the one-sided likelihood tests when the quantile is >= 0.025.
N_ALPHA = 0.025
# Paired tests: a model beats the reference in a window when the T-test's (1 - T_ALPHA) interval of the
# information gain lies above 0, and (W-test) when the signed-rank p-value is below T_ALPHA with a positive gain.
T_ALPHA = 0.05
ALPHA = 0.025


@dataclasses.dataclass(frozen=True)
class HindcastItem:
    """One work item: model ``model`` over test windows ``first .. stop - 1`` (indices into every window)."""

    model: str
    first: int
    stop: int

    @property
    def key(self) -> str:
        return f"{self.model}-w{self.first:06d}-{self.stop:06d}"


# ------------------------------------------------------------------------------------------------ inputs
def build_grid(config: HindcastConfig) -> SpaceMagGrid:
    from geodl_hpc.forecasting.grid import SpaceMagGrid

    r = config.region
    return SpaceMagGrid.from_bbox(r.bbox, r.dh, r.mc, r.mag_max, r.dm)


def window_plan(config: HindcastConfig) -> tuple[np.ndarray, int]:
    """Window edges (W + 1,) datetime64[ms] from ``training_start`` to ``test_end`` and the first test window."""
    from geodl_hpc.forecasting.binning import window_edges

    p = config.period
    edges = window_edges(p.training_start, p.test_end, p.window_days)
    step = int((edges[1] - edges[0]).astype(np.int64))
    offset = int((np.datetime64(p.test_start, "ms") - edges[0]).astype(np.int64))
    if offset % step:
        snapped = edges[0] + np.timedelta64(-(-offset // step) * step, "ms")
        raise ConfigError(
            f"period.test_start: {p.test_start} is not a whole number of windows ({p.window_days} days) after "
            f"training_start; use {snapped}"
        )
    first = offset // step
    if first >= len(edges) - 1:
        raise ConfigError(f"period.test_start: {p.test_start} leaves no whole test window before test_end")
    return edges, first


def _catalog_path(config: HindcastConfig) -> Path:
    c = config.catalog
    if not c.package:
        return Path(c.path)
    import importlib.util

    spec = importlib.util.find_spec(c.package)
    if spec is None or spec.origin is None:
        raise InputDataError(f"catalog.package: {c.package} is not installed; install it or give a catalog.path")
    return Path(spec.origin).parent / c.path


def load_events(config: HindcastConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The catalog's events (contract columns) and where they came from (or a simulated SYNTHETIC catalog)."""
    from geodl_hpc.archive.catalog import open_catalog, read_catalog_table

    c = config.catalog
    if c.etas is not None:
        from geodl_hpc.forecasting.etas import PARAMETER_SETS, simulate_etas

        if c.etas.parameters not in PARAMETER_SETS:
            raise ConfigError(f"catalog.etas.parameters: {c.etas.parameters!r} is not one of {sorted(PARAMETER_SETS)}")
        params = PARAMETER_SETS[c.etas.parameters]
        rng = np.random.default_rng(c.etas.seed)
        table = simulate_etas(
            params,
            config.region.bbox,
            config.period.training_start,
            config.period.test_end,
            rng,
            burn_in_days=c.etas.burn_in_days,
        )
        return table, {"synthetic": True, **table.attrs["synthetic"], "seed": c.etas.seed, "file": ETAS_CATALOG}
    path = _catalog_path(config)
    if not path.exists():
        raise InputDataError(f"catalog.path: {path} does not exist; give a catalog file or an ingested archive")
    info: dict[str, Any] = {"synthetic": False, "file": str(path)}
    if c.event_types is not None:
        table, info["excluded_event_types"] = _read_event_types(path, c)
    elif path.suffix == ".parquet" or path.is_dir():
        table = open_catalog(path)
    else:
        table = read_catalog_table(path, c.format, depth_unit=c.depth_unit)
    if c.max_depth_km is not None:
        table = table[~(table["depth_km"] > c.max_depth_km)].reset_index(drop=True)
    return table, {**info, "events": len(table)}


def _read_event_types(path: Path, c: CatalogConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """A CSV catalog without the rows whose ``event_type`` is not in ``c.event_types`` (the catalog reader
    drops that column, so the rows are filtered first); also how many rows of each other type were dropped."""
    import tempfile

    import pandas as pd

    from geodl_hpc.archive.catalog import read_catalog_table

    if path.suffix == ".parquet" or path.is_dir():
        raise ConfigError(f"catalog.event_types: {path} is an ingested archive without event types; remove the key")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "event_type" not in raw.columns:
        raise InputDataError(f"catalog.event_types: {path} has no event_type column; remove catalog.event_types")
    kind = raw["event_type"].str.strip()
    keep = kind.isin(list(c.event_types or ()))
    dropped = {str(k): int(n) for k, n in kind[~keep].value_counts().items()}
    with tempfile.TemporaryDirectory() as tmp:
        filtered = Path(tmp) / path.name
        raw[keep].to_csv(filtered, index=False)
        table = read_catalog_table(filtered, c.format, depth_unit=c.depth_unit)
    return table, dropped


@dataclasses.dataclass(frozen=True, eq=False)
class Inputs:
    """What every work item reads: grid, window edges, counts (W, C, M), the events, and the first test window."""

    grid: SpaceMagGrid
    edges: np.ndarray
    counts: np.ndarray
    events: pd.DataFrame
    first_test: int
    lookbacks: tuple[int, ...]
    stamp: int = 0  # mtime of inputs.npz when loaded (the per-process cache key)
    _features: list[np.ndarray] = dataclasses.field(default_factory=list)

    @property
    def features(self) -> np.ndarray:
        """History features (W, C, F), computed once per process (row ``w`` from windows ``< w``)."""
        if not self._features:
            from geodl_hpc.forecasting.features import history_features

            self._features.append(history_features(self.counts, self.grid, self.lookbacks))
        return self._features[0]


def prepare_inputs(config: HindcastConfig) -> tuple[Inputs, dict[str, Any], pd.DataFrame]:
    """Read (or simulate) the catalog and bin it; returns inputs, facts about the data, the whole catalog."""
    from geodl_hpc.forecasting.binning import bin_catalog, event_times_ms

    grid = build_grid(config)
    edges, first = window_plan(config)
    table, source = load_events(config)
    t = event_times_ms(table)
    lon_min, lat_min, lon_max, lat_max = config.region.bbox
    lon, lat = table["longitude"].to_numpy(), table["latitude"].to_numpy()
    inside = (lon >= lon_min) & (lon < lon_max) & (lat >= lat_min) & (lat < lat_max) & (t < edges[-1])
    events = table[inside].reset_index(drop=True)
    counts = bin_catalog(events, grid, edges)
    if counts[:first].sum() == 0:
        raise InputDataError(
            f"{source['file']}: no event >= M{grid.mc} in the region before test_start; every model needs a "
            "training period with events (move training_start earlier or lower region.mc)"
        )
    location = np.ascontiguousarray(events[["latitude", "longitude", "magnitude"]].to_numpy()).tobytes()
    source.update(
        {
            "events_in_region": len(events),
            "events_binned": int(counts.sum()),
            "events_tested": int(counts[first:].sum()),
            "counts_sha256": hashlib.sha256(np.ascontiguousarray(counts).tobytes()).hexdigest()[:16],
            "events_sha256": hashlib.sha256(location + t[inside].tobytes()).hexdigest()[:16],
        }
    )
    return Inputs(grid, edges, counts, events, first, tuple(config.lookbacks)), source, table


def store_inputs(run: Path, inputs: Inputs, source: dict[str, Any], table: pd.DataFrame) -> None:
    """Write ``run/inputs`` (counts, edges, events; a simulated catalog with its provenance) for the items."""
    folder = Path(run) / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".inputs.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, counts=inputs.counts, edges=inputs.edges.astype(np.int64), first=inputs.first_test)
    os.replace(tmp, folder / "inputs.npz")
    _write_parquet_atomic(inputs.events, folder / "events.parquet")
    if source.get("synthetic"):
        from geodl_hpc.forecasting.etas import write_etas_catalog

        write_etas_catalog(Path(run) / ETAS_CATALOG, table, seed=int(source["seed"]), overwrite=True)


def _write_parquet_atomic(table: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_parquet(tmp, index=False)
    os.replace(tmp, path)


_CACHE: dict[str, Inputs] = {}


def load_inputs(run: Path, config: HindcastConfig) -> Inputs:
    """The stored inputs of run folder ``run`` (cached per process: Ray workers and array tasks load once)."""
    import pandas as pd

    key = str(Path(run).resolve())
    stamp = (Path(run) / "inputs" / "inputs.npz").stat().st_mtime_ns
    cached = _CACHE.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached
    with np.load(Path(run) / "inputs" / "inputs.npz") as data:
        counts = data["counts"]
        edges = data["edges"].astype("datetime64[ms]")
        first = int(data["first"])
    events = pd.read_parquet(Path(run) / "inputs" / "events.parquet")
    inputs = Inputs(build_grid(config), edges, counts, events, first, tuple(config.lookbacks), stamp)
    _CACHE.clear()  # one run's inputs at a time
    _CACHE[key] = inputs
    return inputs


# ------------------------------------------------------------------------------------------------ items
def work_items(config: HindcastConfig, n_windows: int, first_test: int) -> list[HindcastItem]:
    """Every (model, block) item; blocks start at refit origins so no refit is ever done twice."""
    return [
        HindcastItem(m.key, start, min(start + config.block(m), n_windows))
        for m in config.models
        for start in range(first_test, n_windows, config.block(m))
    ]


def forecaster_options(model: ModelConfig, inputs: Inputs, run: Path, stop: int) -> dict[str, Any]:
    """``build_forecaster`` options: the model's own plus the grid, and what the kind needs (ETAS parameters
    and the events before window ``stop - 1`` starts, the RNN's checkpoint folder)."""
    from geodl_hpc.forecasting.binning import event_times_ms

    options: dict[str, Any] = {**model.option_dict(), "grid": inputs.grid}
    if model.name == "etas":
        from geodl_hpc.forecasting.etas import PARAMETER_SETS, ETASParams

        params = options.get("params", "california_mizrahi2021")
        if isinstance(params, str):
            if params not in PARAMETER_SETS:
                raise ConfigError(
                    f"models.{model.key}.options.params: {params!r} is not one of {sorted(PARAMETER_SETS)}"
                )
            options["params"] = PARAMETER_SETS[params]
        elif isinstance(params, dict):
            options["params"] = ETASParams(**params)
        last_start = inputs.edges[stop - 1]
        options["table"] = inputs.events[event_times_ms(inputs.events) < last_start].reset_index(drop=True)
        options["edges"] = inputs.edges[: stop + 1]
    if model.name == "rnn":
        options.setdefault("output", str(run / "models" / model.key))
        options.setdefault("threads", 1)
    return options


def forecast_block(model: ModelConfig, inputs: Inputs, item: HindcastItem, refit_every: int, run: Path) -> np.ndarray:
    """Rates (stop - first, C, M) of ``item``'s windows: refit at each origin on windows before it only.

    The forecaster sees counts and features of windows ``< item.stop`` only (never the future of the block)."""
    return forecast_windows(model, inputs, item.first, item.stop, refit_every, run)


def forecast_windows(
    model: ModelConfig, inputs: Inputs, first: int, stop: int, refit_every: int, run: Path, output: str = ""
) -> np.ndarray:
    """Rates (stop - first, C, M) of windows ``first .. stop - 1`` with ``model``'s refit origins (every
    ``refit_every`` test windows from the first test window), seeing windows ``< stop`` only; ``output``
    overrides the RNN's checkpoint folder (the reference recomputed inside another model's item)."""
    from geodl_hpc.forecasting.forecasters import build_forecaster

    counts = inputs.counts[:stop]
    features = inputs.features[:stop] if model.name == "rnn" else np.zeros((stop, 1, 1), np.float32)
    out = np.empty((stop - first, inputs.grid.n_cells, inputs.grid.n_mags), dtype=np.float64)
    origin = inputs.first_test + ((first - inputs.first_test) // refit_every) * refit_every
    while origin < stop:
        options = forecaster_options(model, inputs, run, stop)
        if output and model.name == "rnn":
            options["output"] = output
        forecaster = build_forecaster(model.name, options)
        forecaster.fit(counts, features, origin)
        for w in range(max(origin, first), min(origin + refit_every, stop)):
            out[w - first] = forecaster.rates(w)
        origin += refit_every
    return out


# ------------------------------------------------------------------------------------------------ evaluation
def log_likelihoods(rates: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Joint Poisson log-likelihood of each window (W,) (``scores.poisson_log_likelihood`` per window)."""
    from geodl_hpc.forecasting.scores import poisson_log_likelihood

    return np.array([poisson_log_likelihood(r, c) for r, c in zip(rates, counts, strict=True)])


def evaluate_block(
    model: str,
    rates: np.ndarray,
    counts: np.ndarray,
    windows: np.ndarray,
    edges: np.ndarray,
    origins: np.ndarray,
    tests: Sequence[str],
    n_sim: int,
    seeds: Sequence[int],
    reference: tuple[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per window and test of a block: the vectorised CSEP kernels run once per test on (W, C, M).

    ``reference`` (label, rates of the same windows) adds the paired T and W rows against it; without it (the
    reference model itself) those tests are skipped. Columns beyond the consistency tests' observed statistic,
    quantile(s) and pass: ``versus`` (the reference of a paired row), ``ci_lower``/``ci_upper`` (the T-test's
    interval of the information gain) and ``t_statistic``."""
    import pandas as pd

    from geodl_hpc.evaluation.csep import kernels

    n = len(windows)
    n_events = counts.sum(axis=(1, 2)).astype(np.int64)
    n_fore = rates.sum(axis=(1, 2))
    base = {
        "model": model,
        "window": windows.astype(np.int64),
        "window_start": pd.to_datetime(edges[windows], utc=True),
        "window_end": pd.to_datetime(edges[windows + 1], utc=True),
        "fit_origin": origins.astype(np.int64),
        "n_events": n_events,
        "n_fore": n_fore,
        "log_likelihood": log_likelihoods(rates, counts),
    }
    paired = None
    if reference is not None and any(t in PAIRED_TESTS for t in tests):
        paired = kernels.t_test(rates, reference[1], counts, alpha=T_ALPHA)
    frames = []
    for test in tests:
        nan = np.full(n, np.nan)
        extra: dict[str, Any] = {"versus": "", "ci_lower": nan, "ci_upper": nan, "t_statistic": nan}
        q2 = nan
        if test in PAIRED_TESTS:
            if reference is None or paired is None:
                continue
            gain = np.asarray(paired.observed_statistic, dtype=np.float64).reshape(n)
            extra["versus"] = reference[0]
            if test == "T":
                result = paired
                lower = np.asarray(paired.extra["ig_lower"], dtype=np.float64).reshape(n)
                extra["ci_lower"] = lower
                extra["ci_upper"] = np.asarray(paired.extra["ig_upper"], dtype=np.float64).reshape(n)
                extra["t_statistic"] = np.asarray(paired.extra["t_statistic"], dtype=np.float64).reshape(n)
                q1 = nan
                passed = lower > 0  # significantly more informative than the reference
            else:
                result = kernels.w_test(rates, reference[1], counts)
                q1 = np.asarray(result.quantile, dtype=np.float64).reshape(n)
                passed = (q1 < T_ALPHA) & (gain > 0)  # the median difference is significant, gain positive
        elif test == "N":
            result = kernels.n_test(rates, counts)
            q = np.asarray(result.quantile, dtype=np.float64).reshape(n, 2)
            q1, q2 = q[:, 0], q[:, 1]
            passed = np.minimum(q1, q2) >= N_ALPHA
        else:
            seed = seeds[list(tests).index(test)]
            if test == "Brier":
                result = kernels.brier_score(rates, counts, n_sim=n_sim, seed=seed)
            else:
                result = kernels.likelihood_test(test, rates, counts, n_sim=n_sim, seed=seed)
            q1 = np.asarray(result.quantile, dtype=np.float64).reshape(n)
            passed = q1 >= ALPHA
        frames.append(
            pd.DataFrame(
                {
                    **base,
                    "test": test,
                    "observed_statistic": np.asarray(result.observed_statistic, dtype=np.float64).reshape(-1),
                    "quantile": q1,
                    "quantile_2": q2,
                    "passed": passed,
                    **extra,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def item_seeds(seed: int, model_index: int, first: int, n: int) -> list[int]:
    """One independent seed per test of an item, the same on every rerun and under every executor."""
    children = np.random.SeedSequence([seed, model_index, first]).spawn(n)
    return [int(c.generate_state(1)[0]) for c in children]


@dataclasses.dataclass(frozen=True)
class HindcastCompute:
    """The picklable work function: forecast an item's windows, store them, test them, return the rows."""

    run: str
    config: HindcastConfig

    def __call__(self, item: HindcastItem) -> pd.DataFrame:
        run = Path(self.run)
        inputs = load_inputs(run, self.config)
        index = [m.key for m in self.config.models].index(item.model)
        model = self.config.models[index]
        refit_every = self.config.refit_every(model)
        rates = forecast_block(model, inputs, item, refit_every, run)
        if self.config.write_forecasts:
            write_forecast_slice(run, item, rates, inputs.first_test)
        windows = np.arange(item.first, item.stop)
        origins = item.first + ((windows - item.first) // refit_every) * refit_every
        counts = inputs.counts[item.first : item.stop]
        seeds = item_seeds(self.config.seed, index, item.first, len(self.config.tests))
        reference = None
        if item.model != self.config.reference_model and any(t in PAIRED_TESTS for t in self.config.tests):
            reference = (self.config.reference_model, reference_rates(self.config, inputs, item, run))
        return evaluate_block(
            item.model,
            rates,
            counts,
            windows,
            inputs.edges,
            origins,
            self.config.tests,
            self.config.n_sim,
            seeds,
            reference,
        )


def reference_rates(config: HindcastConfig, inputs: Inputs, item: HindcastItem, run: Path) -> np.ndarray:
    """The reference model's rates of ``item``'s windows, recomputed here with the reference's own refit origins
    and the same view of the data (windows ``< item.stop``), so the item needs no other item's output.

    Recomputing, rather than reading ``forecasts/REFERENCE.zarr``, keeps every item independent of the order
    items run in (Ray tasks and array tasks run concurrently) and of ``write_forecasts``; the reference is
    usually the cheapest model. An RNN reference gets its own checkpoint folder per item."""
    model = next(m for m in config.models if m.key == config.reference_model)
    output = str(run / "models" / model.key / f"for-{item.key}")
    return forecast_windows(model, inputs, item.first, item.stop, config.refit_every(model), run, output)


# ------------------------------------------------------------------------------------------------ forecasts
def forecasts_path(run: Path, model: str) -> Path:
    return Path(run) / "forecasts" / f"{model}.zarr"


def create_forecast_stores(run: Path, config: HindcastConfig, inputs: Inputs) -> None:
    """One Zarr per model: ``rates`` (test windows, cells, mags) chunked by item block, so items never share a
    chunk; window edges, cell origins and magnitude edges beside it. Created once (built, then renamed)."""
    import zarr

    n_test = len(inputs.edges) - 1 - inputs.first_test
    grid = inputs.grid
    for model in config.models:
        path = forecasts_path(run, model.key)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.init-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        shape = (n_test, grid.n_cells, grid.n_mags)
        chunks = (config.block(model), grid.n_cells, grid.n_mags)
        group.create_array("rates", shape=shape, chunks=chunks, dtype="float64", fill_value=np.nan)
        starts = inputs.edges[inputs.first_test : -1].astype(np.int64)
        ends = inputs.edges[inputs.first_test + 1 :].astype(np.int64)
        for name, values in (
            ("window_start_ms", starts),
            ("window_end_ms", ends),
            ("origins", grid.origins),
            ("mag_edges", np.asarray(grid.mag_edges)),
        ):
            array = group.create_array(name, shape=values.shape, dtype=values.dtype, chunks=values.shape)
            array[...] = values
        group.attrs.update(
            {
                "geodl_kind": FORECASTS_KIND,
                "model": model.key,
                "forecaster": model.name,
                "dh": grid.dh,
                "grid": grid.to_dict(),
                "first_test_window": inputs.first_test,
                "units": "expected number of events per cell and magnitude bin in the window",
            }
        )
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def write_forecast_slice(run: Path, item: HindcastItem, rates: np.ndarray, first_test: int) -> None:
    """Write ``item``'s windows into its own chunk(s) of the model's forecast Zarr (rewriting is harmless)."""
    import zarr

    array = zarr.open_array(str(forecasts_path(run, item.model) / "rates"), mode="r+")
    array[item.first - first_test : item.stop - first_test] = rates


def read_forecast_rates(run: Path, model: str) -> np.ndarray:
    """Every test window's rates (W_test, C, M) of ``model``."""
    import zarr

    return np.asarray(zarr.open_array(str(forecasts_path(run, model) / "rates"), mode="r")[...])


def window_forecast(run: Path, model: str, index: int) -> Any:
    """Test window ``index`` of ``model`` as a ``GriddedForecast`` (for ``evaluation.csep`` and its plots)."""
    import zarr

    from geodl_hpc.evaluation.csep.forecast import GriddedForecast

    group: Any = zarr.open_group(str(forecasts_path(run, model)), mode="r")
    starts = np.asarray(group["window_start_ms"][...]).astype("datetime64[ms]")
    ends = np.asarray(group["window_end_ms"][...]).astype("datetime64[ms]")
    return GriddedForecast(
        rates=np.asarray(group["rates"][index]),
        origins=np.asarray(group["origins"][...]),
        dh=float(group.attrs["dh"]),
        mag_edges=np.asarray(group["mag_edges"][...]),
        start=starts[index],
        end=ends[index],
        name=f"{model} window {index}",
    )


def export_window_forecast(run: Path, model: str, index: int, out: Path, *, overwrite: bool = False) -> Path:
    """Write test window ``index`` of ``model`` as a standalone forecast archive (``evaluation.csep`` format), e.g.
    for ``geodl evaluate csep --forecast OUT --catalog ...``."""
    from geodl_hpc.evaluation.csep.forecast import write_forecast_zarr

    return write_forecast_zarr(window_forecast(run, model, index), Path(out), overwrite=overwrite)


# ------------------------------------------------------------------------------------------------ table
@dataclasses.dataclass(frozen=True)
class AddInformationGain:
    """Campaign finaliser: information gain per event of each model over the reference, per window and
    cumulative (sum of log-likelihood gains over windows 1..k divided by their events)."""

    reference: str

    def __call__(self, table: pd.DataFrame) -> pd.DataFrame:
        per_window = table.drop_duplicates(["model", "window"])[["model", "window", "log_likelihood", "n_events"]]
        ref = per_window[per_window["model"] == self.reference].set_index("window")["log_likelihood"]
        per_window = per_window.sort_values(["model", "window"]).copy()
        gain = per_window["log_likelihood"].to_numpy() - ref.reindex(per_window["window"]).to_numpy()
        per_window["log_likelihood_gain"] = gain
        per_window["information_gain"] = gain / np.maximum(per_window["n_events"].to_numpy(), 1)
        grouped = per_window.groupby("model", sort=False)
        cum_gain = grouped["log_likelihood_gain"].cumsum().to_numpy()
        cum_events = grouped["n_events"].cumsum().to_numpy()
        per_window["cumulative_information_gain"] = cum_gain / np.maximum(cum_events, 1)
        columns = ["model", "window", "information_gain", "cumulative_information_gain"]
        out = table.merge(per_window[columns], on=["model", "window"], how="left", validate="many_to_one")
        order = {t: i for i, t in enumerate(dict.fromkeys(table["test"]))}
        out = out.assign(_t=out["test"].map(order)).sort_values(["model", "window", "_t"], kind="stable")
        return out.drop(columns="_t").reset_index(drop=True)


def whole_period_tests(run: Path, config: HindcastConfig, inputs: Inputs) -> dict[str, dict[str, Any]]:
    """Each model's tests over the whole test period (the test windows pooled as independent space-time bins:
    cumulative kernels, last window; W and Brier on the pooled bins), from the forecast Zarrs;
    ``{model: {test: TestResult}}`` (no T/W entry for the reference model)."""
    from geodl_hpc.evaluation.csep import kernels

    counts = inputs.counts[inputs.first_test :]
    reference = config.reference_model
    ref_rates = read_forecast_rates(run, reference)
    out: dict[str, dict[str, Any]] = {}
    for index, model in enumerate(config.models):
        rates = read_forecast_rates(run, model.key)
        results: dict[str, Any] = {}
        for k, test in enumerate(config.tests):
            seed = item_seeds(config.seed, index, len(inputs.edges), len(config.tests))[k]
            if test in PAIRED_TESTS and model.key == reference:
                continue
            if test == "N":
                result = kernels.cumulative_n_test(rates, counts).windows()[-1]
            elif test == "T":
                result = kernels.cumulative_t_test(rates, ref_rates, counts, alpha=T_ALPHA).windows()[-1]
            elif test == "W":
                result = kernels.w_test(*(_pool(x) for x in (rates, ref_rates, counts)))
            elif test == "Brier":
                result = kernels.brier_score(_pool(rates), _pool(counts), n_sim=config.n_sim, seed=seed)
            else:
                likelihood = kernels.likelihood_test(test, rates, counts, n_sim=config.n_sim, seed=seed)
                result = kernels.cumulative(likelihood).windows()[-1]
            results[test] = result
        out[model.key] = results
    return out


def _pool(x: np.ndarray) -> np.ndarray:
    """(W, C, M) -> (W * C, M): every window's cells as bins of one space-time forecast."""
    return x.reshape(-1, x.shape[-1])


def molchan_scores(run: Path, config: HindcastConfig, inputs: Inputs) -> dict[str, dict[str, float | None]]:
    """Area skill score of each model's Molchan diagram: over the whole period (rates and events summed over
    the test windows, as ``plots/molchan_roc.png``) and the mean over windows with events."""
    from geodl_hpc.evaluation.csep import kernels

    counts = inputs.counts[inputs.first_test :]
    active = counts.sum(axis=(1, 2)) > 0
    out: dict[str, dict[str, float | None]] = {}
    for model in config.models:
        rates = read_forecast_rates(run, model.key)
        pooled = kernels.area_skill_score(*kernels.molchan_curve(rates.sum(axis=0), counts.sum(axis=0)))
        per_window = np.asarray(kernels.area_skill_score(*kernels.molchan_curve(rates, counts)), dtype=np.float64)
        mean = float(np.mean(per_window[active])) if active.any() else float("nan")
        out[model.key] = {"whole_period": _round(pooled), "mean_per_window": _round(mean)}
    return out


def _passes(test: str, result: Any) -> bool:
    """The pass rule of the per-window rows applied to a whole-period result."""
    q = np.atleast_1d(np.asarray(result.quantile, dtype=np.float64))
    if test == "N":
        return bool(np.min(q[:2]) >= N_ALPHA)
    if test == "T":
        return bool(result.extra["ig_lower"] > 0)
    if test == "W":
        return False  # decided with the T-test's sign in _whole_period_entry
    return bool(q[0] >= ALPHA)


def _whole_period_entry(test: str, result: Any, results: dict[str, Any]) -> dict[str, Any]:
    passed = _passes(test, result)
    if test == "W":
        gain = results["T"].observed_statistic if "T" in results else np.nan
        passed = bool(float(result.quantile) < T_ALPHA and gain > 0)
    return {**result.to_dict(), "passed": passed}


def summarise(table: pd.DataFrame, reference: str) -> dict[str, Any]:
    """Per model: windows, events, expected events, total log-likelihood, information gain, pass rates."""
    out: dict[str, Any] = {}
    for model, rows in table.groupby("model", sort=False):
        per_window = rows.drop_duplicates("window")
        n = int(per_window["n_events"].sum())
        ll = float(per_window["log_likelihood"].sum())
        passed = {str(t): round(float(g["passed"].mean()), 4) for t, g in rows.groupby("test", sort=False)}
        out[str(model)] = {
            "windows": len(per_window),
            "events": n,
            "expected_events": round(float(per_window["n_fore"].sum()), 3),
            "log_likelihood": round(ll, 3) if np.isfinite(ll) else None,
            "information_gain_vs_" + reference: _round(per_window["cumulative_information_gain"].iloc[-1]),
            "pass_rate": passed,
        }
    return out


def _round(value: Any) -> float | None:
    x = float(value)
    return round(x, 4) if np.isfinite(x) else None


# ------------------------------------------------------------------------------------------------ driver
def campaign_for(config: HindcastConfig, run: Path, inputs: Inputs, source: dict[str, Any]) -> Campaign[HindcastItem]:
    """The campaign of this config: its items, work function, fingerprinted settings and IG finaliser."""
    from geodl_hpc.config import to_dict
    from geodl_hpc.launch.campaign import Campaign

    settings = to_dict(config)
    for key in ("output", "overwrite", "campaign", "plots"):  # how and where it runs changes no result
        settings.pop(key, None)
    settings["data"] = {k: source[k] for k in ("counts_sha256", "events_sha256", "events_binned")}
    items = work_items(config, len(inputs.edges) - 1, inputs.first_test)
    return Campaign(
        run,
        items,
        HindcastCompute(str(run), config),
        settings,
        sort_by=["model", "window"],
        finalize=AddInformationGain(config.reference_model),
    )


def check_models(config: HindcastConfig, inputs: Inputs, run: Path) -> None:
    """Build every model once (no fit) so a wrong name or option fails here, not inside a work item."""
    from geodl_hpc.forecasting.forecasters import FORECASTERS, build_forecaster

    for i, model in enumerate(config.models):
        if model.name not in FORECASTERS:
            raise ConfigError(f"models[{i}].name: {model.name!r} is not one of {', '.join(FORECASTERS)}")
        try:
            build_forecaster(model.name, forecaster_options(model, inputs, run, inputs.first_test + 1))
        except ConfigError as exc:
            raise ConfigError(f"models[{i}] ({model.key}): {exc}") from None


def run_hindcast(config: HindcastConfig) -> dict[str, Any]:
    """Prepare inputs, run (or resume) the campaign, write plots and ``report.md``; return the summary."""
    import time

    import pandas as pd

    from geodl_hpc.config import dump_config
    from geodl_hpc.launch.campaign import SETTINGS_FILE, run_campaign

    start = time.perf_counter()
    run = Path(config.output).resolve()
    if config.overwrite and run.exists():
        if any(run.iterdir()) and not (run / SETTINGS_FILE).exists():
            raise ConfigError(f"output: {run} holds files that are not a hindcast run; refusing to overwrite it")
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    inputs, source, catalog = prepare_inputs(config)
    if source["synthetic"]:
        source["file"] = str(run / ETAS_CATALOG)
    check_models(config, inputs, run)
    campaign = campaign_for(config, run, inputs, source)
    campaign.open()  # refuses a folder made with other settings before anything is written into it
    store_inputs(run, inputs, source, catalog)
    dump_config(config, run / "config.resolved.yaml")
    if config.write_forecasts:
        create_forecast_stores(run, config, inputs)
    result = run_campaign(campaign, config.campaign)
    table = pd.read_parquet(campaign.results)
    summary: dict[str, Any] = {
        "status": result.status,
        "output": str(run),
        "results": str(campaign.results),
        "results_csv": str(run / "results.csv"),
        "campaign": result.to_dict(),
        "catalog": source,
        "reference": config.reference_model,
        "windows": {
            "total": len(inputs.edges) - 1,
            "test": len(inputs.edges) - 1 - inputs.first_test,
            "first_test_start": str(inputs.edges[inputs.first_test]),
            "window_days": config.period.window_days,
            "refit_every": {m.key: config.refit_every(m) for m in config.models},
        },
        "grid": {"cells": inputs.grid.n_cells, "mags": inputs.grid.n_mags, **inputs.grid.to_dict()},
        "models": summarise(table, config.reference_model),
    }
    whole: dict[str, dict[str, Any]] = {}
    if config.write_forecasts:
        whole = whole_period_tests(run, config, inputs)
        for model, results in whole.items():
            summary["models"][model]["whole_period"] = {
                test: _whole_period_entry(test, r, results) for test, r in results.items()
            }
        for model, scores in molchan_scores(run, config, inputs).items():
            summary["models"][model]["molchan_area_skill_score"] = scores
    if config.plots:
        from geodl_hpc.forecasting.hindcast_plots import write_plots

        summary["plots"] = write_plots(run, config, inputs, table, whole)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    atomic_write_text(run / "report.md", render_report(summary, table))
    summary["report"] = str(run / "report.md")
    return summary


def _whole_period_cell(test: str, r: dict[str, Any] | None) -> str:
    """One whole-period cell of report.md: the quantile (T: gain and interval, W: p-value) and pass/FAIL."""
    if r is None:
        return "-"
    verdict = "pass" if r["passed"] else "FAIL"
    if test == "T":
        gain, lower, upper = (r.get(k) for k in ("observed_statistic", "ig_lower", "ig_upper"))
        if gain is None or lower is None or upper is None:
            return f"n/a {verdict}"
        return f"{gain:.3f} [{lower:.3f}, {upper:.3f}] {verdict}"
    q = r["quantile"]
    shown = f"{min(q):.3f}" if isinstance(q, list) else f"{q:.3f}" if q is not None else "n/a"
    return f"{shown} {verdict}"


def render_report(summary: dict[str, Any], table: pd.DataFrame) -> str:
    """``report.md``: data (real or SYNTHETIC), windows, per-model scores and pass rates, the figures."""
    source = summary["catalog"]
    w = summary["windows"]
    lines = ["# Hindcast report", ""]
    if source.get("synthetic"):
        lines += [
            f"**SYNTHETIC catalog**: {source.get('model', 'ETAS')}, parameters {source['params'].get('name')} "
            f"({source['params'].get('reference', '')}), seed {source.get('seed')}.",
            "",
        ]
    else:
        lines += [f"Catalog: `{source['file']}` (real data).", ""]
    lines += [
        f"- events in the region: {source['events_in_region']}; binned (>= Mc, in the windows): "
        f"{source['events_binned']}; in test windows: {source['events_tested']}",
        f"- windows: {w['total']} of {w['window_days']} days; {w['test']} test windows from {w['first_test_start']}; "
        "each model refit every "
        + ", ".join(f"{n} windows ({m})" for m, n in w["refit_every"].items())
        + " on the windows before the refit origin only",
        f"- grid: {summary['grid']['cells']} cells of {summary['grid']['dh']} deg, {summary['grid']['mags']} "
        f"magnitude bins from M{summary['grid']['mag_edges'][0]}",
        f"- work items: {summary['campaign']['n_items']} ({summary['campaign']['computed']} computed in this run, "
        f"{summary['campaign']['skipped']} resumed from earlier pieces)",
        "",
        f"## Scores (information gain per event vs `{summary['reference']}`, pass rate per test)",
        "",
    ]
    tests = list(dict.fromkeys(table["test"]))
    has_ass = any("molchan_area_skill_score" in s for s in summary["models"].values())
    head = "| model | windows | events | expected | log-likelihood | IG/event | "
    head += "Molchan ASS pooled / per window | " if has_ass else ""
    lines.append(head + " | ".join(tests) + " |")
    lines.append("|---" * (6 + has_ass + len(tests)) + "|")
    for model, s in summary["models"].items():
        ig = s[f"information_gain_vs_{summary['reference']}"]
        rates = " | ".join(f"{100 * s['pass_rate'][t]:.0f}%" if t in s["pass_rate"] else "-" for t in tests)
        scores = s.get("molchan_area_skill_score", {})
        ass = f"{scores.get('whole_period')} / {scores.get('mean_per_window')} | " if has_ass else ""
        lines.append(
            f"| {model} | {s['windows']} | {s['events']} | {s['expected_events']:.1f} | {s['log_likelihood']} | "
            f"{ig} | {ass}{rates} |"
        )
    if any("whole_period" in s for s in summary["models"].values()):
        lines += ["", "## Whole test period (windows pooled): quantile, pass", ""]
        lines.append("| model | " + " | ".join(tests) + " |")
        lines.append("|---" * (1 + len(tests)) + "|")
        for model, s in summary["models"].items():
            cells = [_whole_period_cell(t, s["whole_period"].get(t)) for t in tests]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    paired = [t for t in tests if t in PAIRED_TESTS]
    lines += [
        "",
        "A window passes the N-test when both quantiles are >= 0.025 (shown: the smaller) and the L/CL/S/M/Brier "
        "tests when the quantile is >= 0.025. The full table (one row per model, window and test) is `results.csv`.",
    ]
    if paired:
        lines.append(
            f"Paired tests against `{summary['reference']}` (no row for the reference itself): T passes when the "
            f"{100 * (1 - T_ALPHA):.0f} % interval of the information gain per event lies above 0 (whole period: "
            f"gain [interval]); W passes when its p-value is < {T_ALPHA} and the gain is positive (shown: p). "
            "Molchan ASS: area skill score of the Molchan diagram (0.5: no skill) of the test windows summed "
            "(pooled) and its mean over the windows with events (per window)."
        )
    lines.append("")
    for name, path in summary.get("plots", {}).items():
        lines += [f"![{name}]({Path(path).relative_to(summary['output'])})", ""]
    return "\n".join(lines)
