"""Benchmark: hindcast campaign throughput, in-process vs Ray tasks, on the same config in one process.

    python benchmarks/hindcast_campaign.py [--config configs/hindcast_etas.yaml] [--ray-cpus N]
                                           [--items-per-task K] [KEY=VALUE ...]

Runs the config's campaign twice into fresh folders: ``campaign.executor=local`` (the baseline: one item after
another in this process), then ``campaign.executor=ray`` (a local Ray started before the clock, so its start-up
is reported apart). Prints JSON: work items, seconds and items/s of each, Ray's start-up seconds, whether both
results tables are identical, and the whole job's wall time of each. The default config is SYNTHETIC (an ETAS
catalog with published California parameters); configs/hindcast_ridgecrest.yaml is real data.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _run(config_path: Path, output: Path, overrides: list[str]) -> dict[str, Any]:
    from geodl_hpc.config import load_config
    from geodl_hpc.forecasting.hindcast import run_hindcast
    from geodl_hpc.forecasting.hindcast_config import HindcastConfig

    config = load_config(HindcastConfig, config_path, [*overrides, f"output={output}", "campaign.progress=false"])
    start = time.perf_counter()
    summary = run_hindcast(config)
    summary["wall_s"] = time.perf_counter() - start
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/hindcast_etas.yaml"))
    parser.add_argument("--ray-cpus", type=int, default=0, help="0: every CPU")
    parser.add_argument("--items-per-task", type=int, default=0, help="0: about four tasks per CPU")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()

    import pandas as pd

    from geodl_hpc.pipeline.loader import ensure_ray

    with tempfile.TemporaryDirectory(prefix="geodl-hindcast-bench-") as tmp:
        base = ["plots=false", *args.overrides]
        local = _run(args.config, Path(tmp) / "local", [*base, "campaign.executor=local"])
        start = time.perf_counter()
        ray = ensure_ray(args.ray_cpus or os.cpu_count() or 1)
        ray_start_s = time.perf_counter() - start
        ray_overrides = [
            "campaign.executor=ray",
            f"campaign.ray_cpus={args.ray_cpus}",
            f"campaign.items_per_task={args.items_per_task}",
        ]
        remote = _run(args.config, Path(tmp) / "ray", [*base, *ray_overrides])
        same = pd.read_parquet(local["results"]).equals(pd.read_parquet(remote["results"]))
        report = {
            "config": str(args.config),
            "synthetic": bool(local["catalog"]["synthetic"]),
            "windows_tested": local["windows"]["test"],
            "models": len(local["models"]),
            "work_items": local["campaign"]["n_items"],
            "local": {
                "campaign_s": local["campaign"]["seconds"],
                "items_per_s": local["campaign"]["items_per_s"],
                "job_wall_s": round(local["wall_s"], 3),
            },
            "ray": {
                "cpus": ray.cluster_resources().get("CPU"),
                "items_per_task": args.items_per_task or "auto",
                "start_s": round(ray_start_s, 3),
                "campaign_s": remote["campaign"]["seconds"],
                "items_per_s": remote["campaign"]["items_per_s"],
                "job_wall_s": round(remote["wall_s"], 3),
            },
            "speedup": round(local["campaign"]["seconds"] / remote["campaign"]["seconds"], 3),
            "tables_identical": same,
            "load_average_1min": os.getloadavg()[0],
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
