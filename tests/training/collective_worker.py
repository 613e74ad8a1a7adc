"""The collective contract, run on every rank of a backend; each rank writes what it observed as JSON.

``python collective_worker.py horovod OUT`` under ``horovodrun -np 2 --gloo``; ``run_torch`` under
``torch.multiprocessing.spawn``; ``contract(SingleProcess())`` in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from geodl_hpc.collective import Collective, make_collective


def _digest(tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().double().contiguous().numpy().tobytes())
    return h.hexdigest()


def contract(coll: Collective) -> dict[str, Any]:
    """Exercise every method; results are compared across ranks and with the expected values by the tests."""
    torch.set_num_threads(1)
    r, n = coll.rank, coll.size
    res: dict[str, Any] = {"name": coll.name, "rank": r, "size": n, "local_rank": coll.local_rank}
    res["mean"] = coll.allreduce(float(r + 1), op="mean")
    res["sum"] = coll.allreduce(float(r + 1), op="sum")
    res["max"] = coll.allreduce(float(r + 1), op="max")
    t = coll.allreduce(torch.full((2, 3), float(r + 1)), op="sum")
    res["tensor"] = {"is_tensor": isinstance(t, torch.Tensor), "shape": list(t.shape), "values": t.flatten().tolist()}

    torch.manual_seed(100 + r)  # different weights per rank before the broadcast
    model = torch.nn.Linear(4, 2)
    res["params_before"] = _digest(list(model.state_dict().values()))
    coll.broadcast_parameters(model)
    res["params_after"] = _digest(list(model.state_dict().values()))

    opt = torch.optim.AdamW(model.parameters(), lr=0.01 * (r + 1))
    model(torch.full((1, 4), float(r + 1))).sum().backward()
    opt.step()  # a local step: rank-specific moments
    opt.zero_grad()
    before = opt.state_dict()
    res["opt_before"] = _digest([v for s in before["state"].values() for v in s.values()])
    coll.broadcast_optimizer_state(opt)
    after = opt.state_dict()
    res["opt_after"] = _digest([v for s in after["state"].values() for v in s.values()])
    res["opt_lr_after"] = after["param_groups"][0]["lr"]

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 1)
    w0 = lin.weight.detach().clone()
    net = coll.wrap_model(lin)
    dopt = coll.distributed_optimizer(torch.optim.SGD(lin.parameters(), lr=0.1), net)
    net(torch.full((2, 4), float(r + 1))).sum().backward()  # dL/dW = 2 (r + 1) per weight
    coll.optimizer_step(dopt)
    mean_grad = 2 * (n + 1) / 2
    res["dist_weights"] = _digest([lin.weight, lin.bias])
    res["dist_step_is_mean_grad"] = bool(torch.allclose(lin.weight, w0 - 0.1 * mean_grad))
    coll.barrier()
    res["barrier"] = True
    return res


def run_torch(rank: int, world: int, port: int, out: str) -> None:
    """torch.multiprocessing.spawn target: rendezvous over env:// on localhost, then the contract."""
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world),
         "LOCAL_RANK": str(rank)}
    )  # fmt: skip
    coll = make_collective("torch", "cpu")
    try:
        Path(out, f"rank{rank}.json").write_text(json.dumps(contract(coll)))
    finally:
        coll.shutdown()


if __name__ == "__main__":
    backend, out = sys.argv[1], sys.argv[2]
    c = make_collective(backend, "cpu")  # type: ignore[arg-type]
    Path(out, f"rank{c.rank}.json").write_text(json.dumps(contract(c)))
