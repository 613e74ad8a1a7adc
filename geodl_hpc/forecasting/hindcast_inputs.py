"""Hindcast inputs: the window plan, the catalog (read, filtered or simulated), its binning into counts, the
history features, and the ``run/inputs`` folder every work item loads them from (once per process).

pandas is imported where it is used, so importing this module stays light."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.catalog import open_catalog, read_catalog_table
from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.forecasting.binning import bin_catalog, event_times_ms, window_edges
from geodl_hpc.forecasting.etas import PARAMETER_SETS, simulate_etas, write_etas_catalog
from geodl_hpc.forecasting.features import history_features
from geodl_hpc.forecasting.grid import SpaceMagGrid
from geodl_hpc.forecasting.hindcast_config import CatalogConfig, HindcastConfig

if TYPE_CHECKING:
    import pandas as pd

ETAS_CATALOG = "inputs/catalog_etas.parquet"  # where a simulated catalog is kept, in the run folder


def build_grid(config: HindcastConfig) -> SpaceMagGrid:
    """The space-magnitude grid of ``config.region``."""
    r = config.region
    return SpaceMagGrid.from_bbox(r.bbox, r.dh, r.mc, r.mag_max, r.dm)


def window_plan(config: HindcastConfig) -> tuple[np.ndarray, int]:
    """Window edges (W + 1,) datetime64[ms] from ``training_start`` to ``test_end`` and the first test window."""
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
    spec = importlib.util.find_spec(c.package)
    if spec is None or spec.origin is None:
        raise InputDataError(f"catalog.package: {c.package} is not installed; install it or give a catalog.path")
    return Path(spec.origin).parent / c.path


def load_events(config: HindcastConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The catalog's events (contract columns) and where they came from (or a simulated SYNTHETIC catalog)."""
    c = config.catalog
    if c.etas is not None:
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
    import pandas as pd

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
            self._features.append(history_features(self.counts, self.grid, self.lookbacks))
        return self._features[0]


def prepare_inputs(config: HindcastConfig) -> tuple[Inputs, dict[str, Any], pd.DataFrame]:
    """Read (or simulate) the catalog and bin it; returns inputs, facts about the data, the whole catalog."""
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
