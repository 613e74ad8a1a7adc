"""`geodl run`, `geodl submit` and `geodl status`: run any registered job here or through a cluster profile."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geodl_hpc.cli.common import Verbs, add_verb, launch_plan, print_result, submit_and_report


def _cmd_run(args: argparse.Namespace) -> int:
    from geodl_hpc import registry

    if args.cluster is None:
        job, config = registry.load(args.config, args.overrides)
        result = registry.run(config)
    else:
        launch = launch_plan(None, args)
        job = launch.job
        (result,) = submit_and_report(launch, wait=True)
    print_result(job, result, args.json)
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    launch = launch_plan(args.job, args)
    if args.dry_run:
        print(launch.describe())
        return 0
    results = submit_and_report(launch, wait=args.wait)
    for result in results:
        print_result(launch.job, result, args.json)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from geodl_hpc.launch.runs import format_status, run_states

    status, states = run_states(args.run, unpickle=args.unpickle_results)
    if args.json:
        tasks = {t: {"state": s.state, "slurm_state": s.slurm_state, "requeues": s.requeues} for t, s in states.items()}
        print(json.dumps({**status, "states": tasks}, indent=2))
    else:
        print(format_status(args.run, status, states))
    return 0


def add_run(verbs: Verbs) -> None:
    """`geodl run CONFIG`: the job the config names, here (or on a cluster, waiting)."""
    run = add_verb(
        verbs,
        "run",
        "run the job a YAML config names, here and now (or on a cluster, waiting for it)",
        "Run the job named by a YAML config in this process. Options can be overridden as key.sub=value;\n"
        "the fully resolved config is stored in the job's output folder. With --cluster the job goes through\n"
        "submitit to that cluster profile instead, and this command waits for its result.\n\n"
        "examples:\n  geodl run configs/demo.yaml\n"
        "  geodl run configs/demo.yaml murchison.resolution=1000 output=runs/coarse\n"
        "  geodl run configs/demo.yaml --cluster local",
        _cmd_run,
    )
    run.add_argument("config", type=Path, metavar="CONFIG.yaml")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. storage.chunk=256")
    run.add_argument("--json", action="store_true", help="print the job's result as JSON")
    run.add_argument("--cluster", metavar="PROFILE", help="run through submitit on configs/clusters/PROFILE.yaml")


def add_submit(verbs: Verbs) -> None:
    """`geodl submit JOB CONFIG`: hand a job to a cluster profile and return."""
    submit = add_verb(
        verbs,
        "submit",
        "submit a job to a cluster profile (Slurm or local) and return; --dry-run shows the script and cost",
        "Submit JOB with CONFIG through submitit to a cluster profile from configs/clusters/ (local:\n"
        "this machine, no Slurm; a Slurm profile: sbatch). KEY=VALUE overrides change the job config;\n"
        "cluster.KEY=VALUE overrides change the resources asked (nodes, ntasks_per_node, gpus_per_node,\n"
        "cpus_per_task, mem, time_min, partition, ...) within the profile's limits. The run folder is the\n"
        "config's output: it gets run.json, config.resolved.yaml, job.sbatch and logs/ (one log per rank).\n"
        "On USR2 (preemption, or signal_delay_s before the time limit) the job checkpoints and is requeued.\n\n"
        "examples:\n"
        "  geodl submit ingest_murchison configs/demo.yaml --cluster slurm-example --dry-run\n"
        "  geodl submit ingest_murchison configs/demo.yaml --cluster localslurm cluster.time_min=20\n"
        "  geodl submit cluster_check configs/cluster_check.yaml --cluster localslurm cluster.ntasks_per_node=2\n"
        "  geodl submit resume_check configs/resume_check.yaml --cluster local --wait",
        _cmd_submit,
    )
    submit.add_argument("job", metavar="JOB", help="a job from jobs/entries.py, e.g. ingest_murchison")
    submit.add_argument("config", type=Path, metavar="CONFIG.yaml")
    submit.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="job options, or cluster.KEY=VALUE")
    submit.add_argument("--cluster", default="local", metavar="PROFILE", help="cluster profile (default local)")
    submit.add_argument("--dry-run", action="store_true", help="print the sbatch script and resource plan only")
    submit.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    submit.add_argument("--json", action="store_true", help="with --wait: print the result as JSON")


def add_status(verbs: Verbs) -> None:
    """`geodl status RUN`: the state of each task of a submitted run."""
    status = add_verb(
        verbs,
        "status",
        "show the state of every task of a submitted run (pending, running, done, failed, requeued)",
        "Show every task of the run in folder RUN (what geodl submit printed), from one sacct call for\n"
        "Slurm runs, or from the process and the task's own outcome JSON for local runs. No pickle in the\n"
        "run folder is ever loaded unless you pass --unpickle-results.\n\n"
        "examples:\n  geodl status runs/demo\n  geodl status runs/demo --json | jq .states",
        _cmd_status,
    )
    status.add_argument("run", type=Path, metavar="RUN")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--unpickle-results",
        action="store_true",
        help="for local runs without an outcome file: unpickle submitit's *_result.pkl (runs code from the file; "
        "only for run folders you trust)",
    )
