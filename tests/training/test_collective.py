"""One contract suite for every collective backend: single process in-process, torch.distributed (gloo, two
spawned processes) and Horovod (``horovodrun -np 2 --gloo``)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from geodl_hpc.collective import CollectiveError, SingleProcess, make_collective
from tests.training.collective_worker import contract, run_torch
from tests.training.conftest import horovodrun, need_horovod

BACKENDS = ["none", "torch", pytest.param("horovod", marks=pytest.mark.horovod)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=BACKENDS)
def ranks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Per-rank contract observations of one backend, rank order."""
    backend = request.param
    if backend == "none":
        return [contract(SingleProcess())]
    out = tmp_path_factory.mktemp(f"contract_{backend}")
    if backend == "torch":
        import torch.multiprocessing as mp

        mp.spawn(run_torch, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    else:
        need_horovod()
        proc = horovodrun(Path(__file__).with_name("collective_worker.py"), "horovod", out)
        try:
            log, _ = proc.communicate(timeout=90)
        except Exception:
            proc.kill()
            raise
        assert proc.returncode == 0, log[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_ranks_and_sizes(ranks: list[dict[str, Any]]) -> None:
    n = len(ranks)
    assert [r["rank"] for r in ranks] == list(range(n))
    assert all(r["size"] == n for r in ranks)
    assert sorted(r["local_rank"] for r in ranks) == list(range(n))  # one machine


def test_allreduce_floats(ranks: list[dict[str, Any]]) -> None:
    n = len(ranks)
    for r in ranks:
        assert (r["mean"], r["sum"], r["max"]) == ((n + 1) / 2, n * (n + 1) / 2, float(n))


def test_allreduce_tensor_keeps_shape(ranks: list[dict[str, Any]]) -> None:
    n = len(ranks)
    for r in ranks:
        assert r["tensor"] == {"is_tensor": True, "shape": [2, 3], "values": [n * (n + 1) / 2] * 6}


def test_broadcast_parameters_copies_rank0(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        assert r["params_after"] == ranks[0]["params_before"]
    if len(ranks) > 1:
        assert ranks[1]["params_before"] != ranks[0]["params_before"]


def test_broadcast_optimizer_state_copies_rank0(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        assert r["opt_after"] == ranks[0]["opt_before"]
        assert r["opt_lr_after"] == pytest.approx(0.01)
    if len(ranks) > 1:
        assert ranks[1]["opt_before"] != ranks[0]["opt_before"]


def test_distributed_optimizer_applies_mean_gradient(ranks: list[dict[str, Any]]) -> None:
    assert all(r["dist_step_is_mean_grad"] for r in ranks)
    assert len({r["dist_weights"] for r in ranks}) == 1


def test_barrier_returns(ranks: list[dict[str, Any]]) -> None:
    assert all(r["barrier"] for r in ranks)


def test_unknown_backend_and_missing_rendezvous_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CollectiveError, match="backend='mpi'"):
        make_collective("mpi")  # type: ignore[arg-type]
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(CollectiveError, match="environment lacks MASTER_ADDR") as err:
        make_collective("torch")
    assert "\n" not in str(err.value)
