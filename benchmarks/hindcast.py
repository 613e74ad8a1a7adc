"""Benchmark: CSEP tests of many forecast windows, our vectorised kernels vs pyCSEP's functions in a loop.

    python benchmarks/hindcast.py [--windows 200] [--n-sim 1000] [--seed 0] [--chunk 25] [--json]

Forecasts: the real Helmstetter et al. (2007) RELM California forecast shipped with pyCSEP (7,682 cells x 41
magnitude bins, M >= 4.95) and its aftershock variant as the reference forecast of the T- and W-tests. Window w
scales both by one factor chosen so that forecast a expects E_w events, E_w uniform in [10, 40] (seeded).
Observed events are SYNTHETIC: an ETAS-free Poisson draw of each bin's count from the window's forecast a times
an activity factor (lognormal, sigma 0.3, seeded), placed at cell centres and magnitude-bin centres; no real
catalog has 200 windows of events in this forecast's bins.

Both sides evaluate the same windows and events with the same n_sim and seed: ours bins every window's events
(``bin_events``) and runs N, L, CL, S, M, T and W over a leading window axis (``--chunk`` windows per call to
bound memory); pyCSEP runs ``number_test``, ``likelihood_test``, ``conditional_likelihood_test``,
``spatial_test``, ``magnitude_test``, ``paired_t_test`` and ``w_test`` once per window on a ``CSEPCatalog`` of
the events. Building pyCSEP's region and catalog objects is not timed. ``max_abs_stat_diff`` is the largest
|ours - pyCSEP| observed statistic over all tests and windows (N: count, L/CL/S/M: log-likelihood, T: information
gain, W: z); ``max_abs_quantile_diff_deterministic`` covers N, T and W, ``mean_abs_quantile_diff_simulated`` the
simulated L, CL, S, M quantiles (different random streams: Monte Carlo error, ~sqrt(2q(1-q)/n_sim)).
``*_s`` are wall-clock seconds, ``*_cpu_s`` process CPU seconds (steadier on a shared machine); one thread each.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SIMULATED = ("L", "CL", "S", "M")
TESTS = ("N", *SIMULATED, "T", "W")


def _forecast_dir() -> Path:
    import csep

    return Path(csep.__file__).parent / "artifacts" / "ExampleForecasts" / "GriddedForecasts"


def _windows(n_windows: int, seed: int, n_cells: int | None = None) -> dict[str, Any]:
    """Per-window scale factors and synthetic events (lon, lat, mag) drawn from the scaled real forecast
    (its first ``n_cells`` cells only when given: the smoke test)."""
    from dataclasses import replace

    from geodl_hpc.evaluation.csep.forecast import load_csep_ascii

    a = load_csep_ascii(_forecast_dir() / "helmstetter_et_al.hkj-fromXML.dat")
    b = load_csep_ascii(_forecast_dir() / "helmstetter_et_al.hkj.aftershock-fromXML.dat")
    if n_cells is not None:
        a, b = (replace(f, rates=f.rates[:n_cells], origins=f.origins[:n_cells], mask=None) for f in (a, b))
    rng = np.random.default_rng(seed)
    expected = rng.uniform(10.0, 40.0, n_windows)
    scale = expected / a.event_count
    activity = rng.lognormal(0.0, 0.3, n_windows)
    dm = float(a.mag_edges[1] - a.mag_edges[0])
    events = []
    for w in range(n_windows):
        counts = rng.poisson(a.rates * (scale[w] * activity[w]))
        cells, mags = np.nonzero(counts)
        reps = counts[cells, mags]
        cells, mags = np.repeat(cells, reps), np.repeat(mags, reps)
        events.append(
            (
                a.origins[cells, 0] + a.dh / 2,
                a.origins[cells, 1] + a.dh / 2,
                np.round(a.mag_edges[mags] + dm / 2, 6),
            )
        )
    return {"a": a, "b": b, "scale": scale, "events": events}


def run_ours(setup: dict[str, Any], n_sim: int, seed: int, chunk: int) -> tuple[float, float, dict[str, np.ndarray]]:
    """Bin every window's events and run all tests over window chunks; seconds and stats per test."""
    from geodl_hpc.evaluation.csep import kernels as K
    from geodl_hpc.evaluation.csep.forecast import bin_events

    a, b, scale, events = setup["a"], setup["b"], setup["scale"], setup["events"]
    out: dict[str, list[np.ndarray]] = {f"{t}_{k}": [] for t in TESTS for k in ("stat", "q")}
    start, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, len(events), chunk):
        s = scale[lo : lo + chunk, None, None]
        c = np.stack([bin_events(lon, lat, mag, a) for lon, lat, mag in events[lo : lo + chunk]])
        ra, rb = a.rates[None] * s, b.rates[None] * s
        results = {
            "N": K.n_test(ra, c),
            **{kind: K.likelihood_test(kind, ra, c, n_sim=n_sim, seed=seed + lo) for kind in SIMULATED},
            "T": K.t_test(ra, rb, c),
            "W": K.w_test(ra, rb, c),
        }
        for name, result in results.items():
            out[f"{name}_stat"].append(np.atleast_1d(result.observed_statistic))
            q = np.asarray(result.quantile)
            out[f"{name}_q"].append(q[:, 0] if name in ("N", "T") else q)  # delta1; t statistic
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return elapsed, cpu, {k: np.concatenate(v) for k, v in out.items()}


def run_pycsep(setup: dict[str, Any], n_sim: int, seed: int) -> tuple[float, float, dict[str, np.ndarray]]:
    """pyCSEP's functions, one window at a time (region and catalog objects built outside the timing)."""
    from csep.core import poisson_evaluations as pe
    from csep.core.catalogs import CSEPCatalog
    from csep.core.forecasts import GriddedForecast as CsepForecast

    from geodl_hpc.evaluation.csep.forecast import to_pycsep

    a, b, scale, events = setup["a"], setup["b"], setup["scale"], setup["events"]
    region = to_pycsep(a).region
    catalogs = []
    for w, (lon, lat, mag) in enumerate(events):
        data = np.zeros(len(lon), dtype=CSEPCatalog.dtype)
        data["id"] = [str(i).encode() for i in range(len(lon))]
        data["origin_time"] = 1_500_000_000_000 + np.arange(len(lon))
        data["longitude"], data["latitude"], data["magnitude"] = lon, lat, mag
        catalogs.append(CSEPCatalog(data=data, name=f"window {w}", region=region))
    out: dict[str, list[float]] = {f"{t}_{k}": [] for t in TESTS for k in ("stat", "q")}
    start, cpu = time.perf_counter(), time.process_time()
    for w, catalog in enumerate(catalogs):
        fa = CsepForecast(data=a.rates * scale[w], region=region, magnitudes=a.mag_edges, name="a")
        fb = CsepForecast(data=b.rates * scale[w], region=region, magnitudes=b.mag_edges, name="b")
        lo = w - w % setup["chunk"]
        results = {
            "N": pe.number_test(fa, catalog),
            "L": pe.likelihood_test(fa, catalog, num_simulations=n_sim, seed=seed + lo),
            "CL": pe.conditional_likelihood_test(fa, catalog, num_simulations=n_sim, seed=seed + lo),
            "S": pe.spatial_test(fa, catalog, num_simulations=n_sim, seed=seed + lo),
            "M": pe.magnitude_test(fa, catalog, num_simulations=n_sim, seed=seed + lo),
            "T": pe.paired_t_test(fa, fb, catalog),
            "W": pe.w_test(fa, fb, catalog),
        }
        for name, result in results.items():
            out[f"{name}_stat"].append(float(result.observed_statistic))
            q = result.quantile
            out[f"{name}_q"].append(float(q[0]) if name in ("N", "T") else float(q))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return elapsed, cpu, {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--n-sim", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=25, help="windows per vectorised call (memory bound)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # pyCSEP's W-test warns below 10 events
    setup = _windows(args.windows, args.seed)
    setup["chunk"] = args.chunk
    ours_s, ours_cpu, ours = run_ours(setup, args.n_sim, args.seed, args.chunk)
    pycsep_s, pycsep_cpu, ref = run_pycsep(setup, args.n_sim, args.seed)
    stat_diff = max(float(np.max(np.abs(ours[f"{t}_stat"] - ref[f"{t}_stat"]))) for t in TESTS)
    det_q = max(float(np.max(np.abs(ours[f"{t}_q"] - ref[f"{t}_q"]) / np.maximum(1, np.abs(ref[f"{t}_q"]))))
                for t in ("N", "T", "W"))  # fmt: skip
    sim_q = {t: float(np.mean(np.abs(ours[f"{t}_q"] - ref[f"{t}_q"]))) for t in SIMULATED}
    n_events = [len(e[0]) for e in setup["events"]]
    result = {
        "ours_s": round(ours_s, 3),
        "pycsep_s": round(pycsep_s, 3),
        "speedup": round(pycsep_s / ours_s, 1),
        "ours_cpu_s": round(ours_cpu, 3),
        "pycsep_cpu_s": round(pycsep_cpu, 3),
        "speedup_cpu": round(pycsep_cpu / ours_cpu, 1),
        "max_abs_stat_diff": stat_diff,
        "max_abs_quantile_diff_deterministic": det_q,
        "mean_abs_quantile_diff_simulated": sim_q,
        "tests": ["N", "L", "CL", "S", "M", "T", "W"],
        "windows": args.windows,
        "n_sim": args.n_sim,
        "seed": args.seed,
        "chunk": args.chunk,
        "events_per_window": {"min": min(n_events), "mean": float(np.mean(n_events)), "max": max(n_events)},
        "forecast": "Helmstetter et al. 2007 RELM California (pyCSEP artifact), 7682 cells x 41 mags, scaled",
        "events": "synthetic: Poisson draw from each window's forecast x lognormal activity (no ETAS)",
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
