"""`geodl evaluate CONFIG` (the prospectivity baselines job) and `geodl evaluate csep` (CSEP tests of a forecast)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geodl_hpc.cli.common import Verbs, add_job_verb, cmd_job
from geodl_hpc.errors import GeodlError


def _num(value: float | None) -> str:
    """A statistic for people: ``n/a`` where it is undefined (JSON null), else 6 significant digits."""
    return "n/a" if value is None else f"{value:.6g}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """`geodl evaluate CONFIG` (a job) or `geodl evaluate csep --forecast F --catalog C` (CSEP tests)."""
    csep_options = (args.forecast, args.catalog)
    if str(args.config) != "csep":
        if any(o is not None for o in csep_options):
            raise GeodlError("--forecast/--catalog belong to `geodl evaluate csep ...`; put csep before them")
        return cmd_job(args)
    if args.forecast is None or args.catalog is None:
        raise GeodlError("geodl evaluate csep: give both --forecast FILE and --catalog FILE (see --help)")
    if args.cluster is not None or args.overrides:
        raise GeodlError("geodl evaluate csep runs in this process; drop --cluster and KEY=VALUE arguments")
    from geodl_hpc.evaluation.csep.evaluate import evaluate_csep

    tests = [t.strip() for t in args.tests.split(",") if t.strip()]
    result = evaluate_csep(args.forecast, args.catalog, tests, args.seed, args.n_sim, plot_dir=args.plot)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"{result['forecast']} vs {result['catalog']}: {result['n_events']} events in the forecast's window")
        for test in result["tests"]:
            quantile = test["quantile"]
            shown = ", ".join(_num(q) for q in quantile) if isinstance(quantile, list) else _num(quantile)
            print(f"  {test['name']:<16} observed {_num(test['observed_statistic'])}  quantile {shown}")
    return 0


def add_evaluate(verbs: Verbs) -> None:
    """`geodl evaluate`: the evaluate_baselines job, with a `csep` mode and its options."""
    sub = add_job_verb(
        verbs,
        "evaluate",
        "evaluate_baselines",
        "prospectivity baselines (CONFIG), or CSEP tests of an earthquake forecast (`evaluate csep`)",
        "geodl evaluate CONFIG: out-of-fold prospectivity maps of the classic baselines on the same spatial\n"
        "blocks and layers the CNN uses: ROC AUC, AUC within greenstone, success-rate curve and capture in the\n"
        "top 2/5/10 % of the area.\n\n"
        "geodl evaluate csep --forecast F --catalog C: CSEP consistency tests of one gridded rate forecast\n"
        "(CSEP ASCII as pyCSEP reads it, or a forecast Zarr written by geodl hindcast) against any catalog\n"
        "geodl ingests (ComCat CSV, QuakeML, CSEP ASCII, CSV, or an ingested catalog archive). Tests: N, L, CL,\n"
        "S, M (Poisson; simulated quantiles with --n-sim draws from --seed), Brier. --json prints per test its\n"
        "name, observed statistic and quantile(s), as pyCSEP reports them.",
        [
            "geodl evaluate configs/evaluate_baselines_murchison.yaml",
            "geodl evaluate CONFIG seed=1 buffer=1",
            "geodl evaluate csep --forecast helmstetter.dat --catalog comcat.csv --tests N,L,CL,S,M --json",
            "geodl evaluate csep --forecast window.zarr --catalog ridgecrest.parquet --seed 7 --plot plots/",
        ],
        _cmd_evaluate,
    )
    csep = sub.add_argument_group("csep", "with `geodl evaluate csep`: CSEP tests of a gridded forecast")
    csep.add_argument("--forecast", type=Path, metavar="F", help="CSEP ASCII gridded forecast or forecast Zarr")
    csep.add_argument("--catalog", type=Path, metavar="C", help="catalog file or ingested catalog archive")
    csep.add_argument("--tests", default="N,L,CL,S,M", help="comma-separated tests (default N,L,CL,S,M)")
    csep.add_argument("--seed", type=int, default=None, help="seed of the simulated quantiles")
    csep.add_argument("--n-sim", type=int, default=1000, help="simulations per test (default 1000)")
    csep.add_argument("--plot", type=Path, metavar="DIR", help="write test-result and forecast-map PNGs here")
    csep.add_argument("--json", action="store_true", help="print the results as JSON")
