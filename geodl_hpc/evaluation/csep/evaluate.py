"""`geodl evaluate csep`: CSEP consistency tests of one gridded forecast against one catalog, as a dict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.evaluation.csep import kernels
from geodl_hpc.evaluation.csep.forecast import GriddedForecast, bin_events, read_forecast

TestFn = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], kernels.TestResult]

# test name -> kernel; the order fixes each test's seed stream, so adding a test never changes another's numbers
TESTS: dict[str, TestFn] = {
    "N": lambda r, c, n_sim, rng: kernels.n_test(r, c),
    "L": lambda r, c, n_sim, rng: kernels.l_test(r, c, n_sim=n_sim, seed=rng),
    "CL": lambda r, c, n_sim, rng: kernels.cl_test(r, c, n_sim=n_sim, seed=rng),
    "S": lambda r, c, n_sim, rng: kernels.s_test(r, c, n_sim=n_sim, seed=rng),
    "M": lambda r, c, n_sim, rng: kernels.m_test(r, c, n_sim=n_sim, seed=rng),
    "BRIER": lambda r, c, n_sim, rng: kernels.brier_score(r, c, n_sim=n_sim, seed=rng),
}


def _parse_tests(tests: Sequence[str]) -> list[str]:
    names = [str(t).strip().upper() for t in tests if str(t).strip()]
    unknown = [t for t in names if t not in TESTS]
    if unknown or not names:
        shown = ", ".join(unknown) if unknown else "(none)"
        raise ConfigError(f"--tests: unknown test {shown}; use a comma-separated subset of {', '.join(TESTS)}")
    return list(dict.fromkeys(names))


def _read_events(catalog: Path) -> Any:
    """The catalog as the contract table: an ingested archive (folder or .parquet) or any file the ingest reads."""
    from geodl_hpc.archive.catalog import open_catalog, read_catalog_table

    catalog = Path(catalog)
    if not catalog.exists():
        raise InputDataError(f"{catalog}: no such catalog; check the path")
    if catalog.is_dir() or catalog.suffix == ".parquet":
        return open_catalog(catalog)
    return read_catalog_table(catalog)


def _in_window(table: Any, fc: GriddedForecast) -> Any:
    """Events in the forecast's [start, end) when it has one (times compared in UTC)."""
    if fc.start is None and fc.end is None:
        return table
    times = table["time"].dt.tz_convert(None).to_numpy().astype("datetime64[ms]")
    keep = np.ones(len(table), dtype=bool)
    if fc.start is not None:
        keep &= times >= fc.start
    if fc.end is not None:
        keep &= times < fc.end
    return table[keep]


def evaluate_csep(
    forecast: Path,
    catalog: Path,
    tests: Sequence[str],
    seed: int | None = None,
    n_sim: int = 1000,
    *,
    plot_dir: Path | None = None,
) -> dict[str, Any]:
    """Run CSEP tests (N, L, CL, S, M, BRIER) of a forecast (CSEP ASCII or our Zarr) against a catalog.

    Events outside the forecast's time window, region or magnitude range are not counted. Each test draws
    from its own stream ``default_rng([seed, k])`` (k its place in :data:`TESTS`). With ``plot_dir`` the
    test-result plot and the forecast map are written there as PNGs (paths under ``plots``).
    """
    names = _parse_tests(tests)
    if n_sim < 1:
        raise ConfigError(f"--n-sim {n_sim}: give at least 1 simulation")
    fc = read_forecast(Path(forecast))
    table = _read_events(Path(catalog))
    selected = _in_window(table, fc)
    lon, lat, mag = (selected[c].to_numpy(dtype=np.float64) for c in ("longitude", "latitude", "magnitude"))
    counts = bin_events(lon, lat, mag, fc)
    order = list(TESTS)
    results = []
    for name in names:
        rng = np.random.default_rng(None if seed is None else [seed, order.index(name)])
        results.append(TESTS[name](fc.rates, counts, n_sim, rng))
    out: dict[str, Any] = {
        "forecast": str(forecast),
        "forecast_name": fc.name,
        "catalog": str(catalog),
        "start": None if fc.start is None else str(fc.start),
        "end": None if fc.end is None else str(fc.end),
        "n_catalog_events": len(table),
        "n_window_events": len(selected),
        "n_events": int(counts.sum()),
        "expected_events": fc.event_count,
        "seed": seed,
        "n_sim": n_sim,
        "tests": [r.to_dict() for r in results],
    }
    if plot_dir is not None:
        from geodl_hpc.evaluation.csep import plots

        plot_dir = Path(plot_dir)
        plot_dir.mkdir(parents=True, exist_ok=True)
        in_grid = counts.sum() > 0
        out["plots"] = {
            "tests": str(
                plots.plot_test_results(
                    results, plot_dir / "csep_tests.png", title=fc.name, labels=[fc.name] * len(results)
                )
            ),
            "forecast_map": str(
                plots.plot_forecast_map(fc, plot_dir / "forecast_map.png", events=(lon, lat, mag) if in_grid else None)
            ),
        }
    return out
