"""What the verb modules share: the handler type, printing a job's result, and running a job here or on a cluster.

Every verb module imports only the standard library at import time (``geodl --help`` stays fast); each handler
imports the library function it calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Handler = Callable[[argparse.Namespace], int]
Verbs = Any  # argparse's private _SubParsersAction: what ``add_subparsers`` returns
FORMAT = argparse.RawDescriptionHelpFormatter  # descriptions keep their line breaks and example blocks


def add_verb(
    verbs: Verbs, name: str, summary: str, description: str, handler: Handler | None
) -> argparse.ArgumentParser:
    """A verb's sub-parser with the house format; ``handler`` runs when the verb is given (None: sub-verbs do)."""
    parser: argparse.ArgumentParser = verbs.add_parser(
        name, help=summary, description=description, formatter_class=FORMAT
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def examples(lines: Sequence[str]) -> str:
    """The ``examples:`` block that ends every verb's description."""
    return "\n\nexamples:\n" + "\n".join(f"  {e}" for e in lines)


def add_job_verb(
    verbs: Verbs, name: str, job: str, summary: str, text: str, lines: Sequence[str], handler: Handler
) -> argparse.ArgumentParser:
    """A verb that runs one registered job from CONFIG.yaml (``geodl infer``, ``evaluate``, ``hindcast``)."""
    sub = add_verb(verbs, name, summary, text + examples(lines), handler)
    sub.add_argument("config", type=Path, metavar="CONFIG.yaml")
    sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    sub.add_argument("--cluster", metavar="PROFILE", help="submit to configs/clusters/PROFILE.yaml and wait")
    sub.set_defaults(job=job)
    return sub


def print_result(job: str, result: Any, as_json: bool) -> None:
    """A job's result: JSON, or for ``ingest_murchison`` without ``--json`` the archive summary people read."""
    if as_json or job != "ingest_murchison":
        print(json.dumps(result, indent=2, default=str))
        return
    from geodl_hpc.archive.inspect import render_text

    if result.get("skipped"):
        print(f"up to date: {result['path']} (built earlier with the same options; overwrite=true rebuilds)")
    print(render_text(result))


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """KEY=VALUE arguments split into job ones and cluster ones (``cluster.KEY=VALUE``, prefix removed)."""
    cluster = [o.removeprefix("cluster.") for o in overrides if o.startswith("cluster.")]
    return [o for o in overrides if not o.startswith("cluster.")], cluster


def launch_plan(job: str | None, args: argparse.Namespace, per_rank: bool = False) -> Any:
    """Load the job config and the cluster profile of ``args`` and plan the submission.

    ``per_rank``: one array task per ``config.rank_configs()`` item instead of one job."""
    from geodl_hpc import registry
    from geodl_hpc.launch.profiles import load_profile
    from geodl_hpc.launch.submit import plan

    overrides, cluster = split_overrides(args.overrides)
    profile = load_profile(args.cluster, cluster)
    name, config = registry.load(args.config, overrides, job)
    return plan(name, config.rank_configs() if per_rank else [config], profile)


def submit_and_report(plan: Any, wait: bool) -> list[Any]:
    """Submit a planned job, tell the user where it runs and how to follow it; with ``wait``, its results."""
    from geodl_hpc.launch.submit import submit
    from geodl_hpc.launch.submit import wait as wait_for

    jobs, status = submit(plan)
    ids = ",".join(status["job_ids"])
    where = "process" if status["executor"] == "local" else "Slurm job"
    print(f"submitted {plan.job} as {where} {ids} on {plan.profile.name}; run folder {plan.run_dir}", file=sys.stderr)
    print(f"follow it with: geodl status {plan.run_dir}", file=sys.stderr)
    return wait_for(jobs, status) if wait else []


def run_job(job: str, args: argparse.Namespace) -> Any:
    """Run ``job`` with ``args.config`` and ``args.overrides``: here, or with ``--cluster`` there (waiting)."""
    from geodl_hpc import registry

    if args.cluster is not None:
        (result,) = submit_and_report(launch_plan(job, args), wait=True)
        return result
    _, config = registry.load(args.config, args.overrides, job)
    return registry.run(config)


def cmd_job(args: argparse.Namespace) -> int:
    """A job verb (`geodl infer`, `geodl evaluate`): `geodl run` with the job fixed by the verb."""
    print_result(args.job, run_job(args.job, args), True)
    return 0
