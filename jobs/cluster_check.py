"""Job: check an allocation end to end: every task joins one Ray cluster and one Horovod ring and allreduces.

``geodl submit cluster_check configs/cluster_check.yaml --cluster PROFILE cluster.ntasks_per_node=2 --wait``
writes ``rank-N.json`` per task into the output folder: the Ray address and cluster CPUs each task saw, the
Ray node ids, and the Horovod allreduce of the ranks (every task must report the same numbers).
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any, Literal

from geodl_hpc.launch.allocation import Allocation, horovod_ring, ray_cluster


@dataclasses.dataclass(frozen=True)
class ClusterCheckConfig:
    """Which engines to check."""

    job: Literal["cluster_check"] = "cluster_check"
    output: str = "runs/cluster-check"
    ray: bool = True
    horovod: bool = True


def _hostname() -> str:
    return socket.gethostname()


def _ray_part(alloc: Allocation, output: Path) -> dict[str, Any]:
    import ray

    with ray_cluster(alloc, output) as address:
        resources = ray.cluster_resources()
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        # a task run on the cluster proves the workers work, not only the control plane
        hostname = ray.get(ray.remote(_hostname).remote())
        return {
            "ray_address": address,
            "ray_cpus": resources.get("CPU", 0.0),
            "ray_nodes": nodes,
            "ray_task_host": hostname,
        }


def _horovod_part(alloc: Allocation, output: Path) -> dict[str, Any]:
    import torch

    with horovod_ring(alloc, output) as hvd:
        total = hvd.allreduce(torch.tensor([float(hvd.rank() + 1)]), op=hvd.Sum)
        return {"hvd_rank": hvd.rank(), "hvd_size": hvd.size(), "allreduce_sum": float(total.item())}


def main(config: ClusterCheckConfig) -> dict[str, Any]:
    """Run the checks in this task and write ``rank-<rank>.json``; return what this task saw."""
    alloc = Allocation.from_env()
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "rank": alloc.rank,
        "size": alloc.size,
        "host": socket.gethostname(),
        "job_id": alloc.job_id,
    }
    if config.ray:
        result.update(_ray_part(alloc, output))
    if config.horovod:
        result.update(_horovod_part(alloc, output))
    (output / f"rank-{alloc.rank}.json").write_text(json.dumps(result, indent=2))
    return result
