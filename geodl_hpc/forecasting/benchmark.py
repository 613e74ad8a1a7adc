"""Benchmark on a SYNTHETIC ETAS catalog: held-out Poisson log-likelihood and information gain per event of the
RNN vs UniformPoisson vs SmoothedSeismicity, and the generating ETAS model with its true parameters (mean of
``etas_sims`` simulated continuations per window) as the reference, plus the RNN's training time. Prints JSON.

    python -m geodl_hpc.forecasting.benchmark --years 30 --test-years 5 --out runs/forecast-bench
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def run(
    years: float = 30.0,
    test_years: float = 5.0,
    window_days: float = 30.0,
    dh: float = 0.5,
    mc: float = 3.95,
    seed: int = 0,
    epochs: int = 4,
    out: Path | None = None,
    with_etas: bool = True,
    threads: int = 0,
    etas_sims: int = 300,
) -> dict[str, Any]:
    """Simulate, bin, featurise, fit every forecaster on the training windows, score the test windows."""
    from geodl_hpc.forecasting.binning import bin_catalog, window_edges
    from geodl_hpc.forecasting.etas import CALIFORNIA_BBOX, CALIFORNIA_MIZRAHI_2021, simulate_etas
    from geodl_hpc.forecasting.features import history_features
    from geodl_hpc.forecasting.forecasters import Forecaster, build_forecaster
    from geodl_hpc.forecasting.grid import SpaceMagGrid
    from geodl_hpc.forecasting.scores import information_gain_per_event, poisson_log_likelihood

    params = CALIFORNIA_MIZRAHI_2021
    start = np.datetime64("1990-01-01T00:00:00", "ms")
    end = start + np.timedelta64(round(years * 365.25 * 86_400_000), "ms")
    t0 = time.perf_counter()
    table = simulate_etas(params, CALIFORNIA_BBOX, start, end, np.random.default_rng(seed))
    sim_s = time.perf_counter() - t0
    grid = SpaceMagGrid.from_bbox(CALIFORNIA_BBOX, dh, mc, 8.95, 0.1)
    edges = window_edges(start, end, window_days)
    counts = bin_catalog(table, grid, edges)
    X = history_features(counts, grid)
    n_windows = counts.shape[0]
    until = n_windows - round(test_years * 365.25 / window_days)
    test = range(until, n_windows)
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="forecast-bench-"))
    models: dict[str, Forecaster] = {
        "uniform_poisson": build_forecaster("uniform_poisson", {"grid": grid}),
        "smoothed_gaussian": build_forecaster("smoothed_gaussian", {"grid": grid, "bandwidth_km": 30.0}),
        "smoothed_adaptive": build_forecaster("smoothed_adaptive", {"grid": grid, "k": 5}),
        "rnn": build_forecaster(
            "rnn", {"grid": grid, "output": folder / "rnn", "epochs": epochs, "seed": seed, "threads": threads}
        ),
    }
    if with_etas:
        models["etas_true_params"] = build_forecaster(
            "etas", {"grid": grid, "params": params, "table": table, "edges": edges, "n_sims": etas_sims}
        )
    observed = counts[until:]
    n_events = int(observed.sum())
    results: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        t1 = time.perf_counter()
        model.fit(counts, X, until)
        fit_s = time.perf_counter() - t1
        rates = np.stack([model.rates(w) for w in test])
        results[name] = {
            "log_likelihood": poisson_log_likelihood(rates, observed),
            "expected_events": float(rates.sum()),
            "fit_s": fit_s,
        }
    ref = results["uniform_poisson"]["log_likelihood"]
    for res in results.values():
        res["information_gain_per_event_vs_uniform"] = information_gain_per_event(res["log_likelihood"], ref, n_events)
    return {
        "synthetic": True,
        "catalog": f"ETAS {params.name} ({params.reference}), seed {seed}, bbox {list(CALIFORNIA_BBOX)}",
        "branching_ratio": params.to_dict()["branching_ratio"],
        "events_simulated_in_region": len(table),
        "simulate_s": sim_s,
        "grid": {"dh": dh, "n_cells": grid.n_cells, "mc": mc, "n_mags": grid.n_mags},
        "windows": {"length_days": window_days, "train": until, "test": n_windows - until},
        "events_train_ge_mc": int(counts[:until].sum()),
        "events_test_ge_mc": n_events,
        "rnn_train": {k: models["rnn"].result.get(k) for k in ("step", "epoch", "loss", "best_loss")}  # type: ignore[attr-defined]
        | {"train_s": results["rnn"]["fit_s"], "epochs": epochs},
        "models": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=30.0)
    parser.add_argument("--test-years", type=float, default=5.0)
    parser.add_argument("--window-days", type=float, default=30.0)
    parser.add_argument("--dh", type=float, default=0.5)
    parser.add_argument("--mc", type=float, default=3.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-etas", action="store_true")
    parser.add_argument("--etas-sims", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    a = parser.parse_args(argv)
    result = run(a.years, a.test_years, a.window_days, a.dh, a.mc, a.seed, a.epochs, a.out, not a.no_etas, a.threads)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
