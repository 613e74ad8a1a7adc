"""The collective seam: one small interface over "no backend", Horovod and torch.distributed.

Training code talks only to a :class:`Collective` (rank, size, allreduce, broadcasts, the distributed optimizer,
barrier), so the same loop runs in one process, under ``horovodrun`` or under ``torchrun``/Slurm with DDP.
Importing this module imports neither torch nor horovod; each backend imports its engine when it is made.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from geodl_hpc.errors import GeodlError, MissingDependencyError

if TYPE_CHECKING:
    import torch

ReduceOp = Literal["mean", "sum", "max"]
Backend = Literal["none", "horovod", "torch"]
Compression = Literal["none", "fp16"]


class CollectiveError(GeodlError):
    """A collective backend cannot start or was asked for something it cannot do (names the setting)."""


@runtime_checkable
class Collective(Protocol):
    """What the training loop needs from a data-parallel backend (every backend passes one contract suite)."""

    name: str
    rank: int
    size: int
    local_rank: int

    def allreduce(self, value: torch.Tensor | float, op: ReduceOp = "mean") -> Any:
        """Reduce over ranks; a float gives a float, a tensor a new tensor of the same shape."""
        ...

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank, in place."""
        ...

    def broadcast_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Copy rank 0's optimizer state (moments, step counts, hyper-parameters) to every rank."""
        ...

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to call in training (DDP for torch.distributed, the model itself otherwise)."""
        ...

    def distributed_optimizer(
        self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, compression: Compression = "none"
    ) -> torch.optim.Optimizer:
        """An optimizer whose ``step`` applies gradients averaged over ranks."""
        ...

    def optimizer_step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None) -> None:
        """One optimizer step (through the AMP scaler if given) with gradients averaged over ranks."""
        ...

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        ...

    def shutdown(self) -> None:
        """Release the backend (a no-op where there is nothing to release)."""
        ...


def _as_tensor(value: torch.Tensor | float) -> tuple[torch.Tensor, bool]:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach(), True
    return torch.tensor([float(value)], dtype=torch.float64), False


def _check_op(op: str) -> None:
    if op not in ("mean", "sum", "max"):
        raise CollectiveError(f"allreduce op={op!r}: use 'mean', 'sum' or 'max'")


class SingleProcess:
    """No backend: one rank; every collective is the identity."""

    name = "none"

    def __init__(self) -> None:
        self.rank, self.size, self.local_rank = 0, 1, 0

    def allreduce(self, value: torch.Tensor | float, op: ReduceOp = "mean") -> Any:
        _check_op(op)
        tensor, was_tensor = _as_tensor(value)
        return tensor.clone() if was_tensor else float(tensor.item())

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        return None

    def broadcast_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        return None

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def distributed_optimizer(
        self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, compression: Compression = "none"
    ) -> torch.optim.Optimizer:
        return optimizer

    def optimizer_step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None) -> None:
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def barrier(self) -> None:
        return None

    def shutdown(self) -> None:
        return None


class HorovodCollective:
    """Horovod (Gloo, MPI or NCCL underneath): ``hvd.DistributedOptimizer`` averages gradients during backward."""

    name = "horovod"

    def __init__(self) -> None:
        try:
            import horovod.torch as hvd
        except ImportError as exc:
            raise MissingDependencyError(
                f"backend=horovod: horovod is not importable ({exc}); build it with tools/build_horovod.sh "
                "or set train.backend to 'torch' or 'none'"
            ) from None
        hvd.init()
        self.hvd: Any = hvd
        self.rank, self.size, self.local_rank = int(hvd.rank()), int(hvd.size()), int(hvd.local_rank())

    def allreduce(self, value: torch.Tensor | float, op: ReduceOp = "mean") -> Any:
        _check_op(op)
        hvd = self.hvd
        tensor, was_tensor = _as_tensor(value)
        hop = {"mean": hvd.Average, "sum": hvd.Sum, "max": hvd.Max}[op]
        out = hvd.allreduce(tensor, op=hop)
        return out if was_tensor else float(out.item())

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        self.hvd.broadcast_parameters(model.state_dict(), root_rank=0)

    def broadcast_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        # An optimizer without state is identical on every rank already; Horovod would otherwise take a
        # zero-gradient step to create the state, which changes Adam's step count.
        if len(optimizer.state_dict()["state"]) == 0:
            return
        self.hvd.broadcast_optimizer_state(optimizer, root_rank=0)

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def distributed_optimizer(
        self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, compression: Compression = "none"
    ) -> torch.optim.Optimizer:
        hvd = self.hvd
        comp = hvd.Compression.fp16 if compression == "fp16" else hvd.Compression.none
        dist_opt: torch.optim.Optimizer = hvd.DistributedOptimizer(
            optimizer, named_parameters=model.named_parameters(), compression=comp, op=hvd.Average
        )
        return dist_opt

    def optimizer_step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None) -> None:
        if scaler is None:
            optimizer.step()
            return
        # Horovod's AMP recipe: average first, so every rank's scaler sees the same (inf-checked) gradients.
        opt = cast(Any, optimizer)
        opt.synchronize()
        scaler.unscale_(optimizer)
        with opt.skip_synchronize():
            scaler.step(optimizer)
        scaler.update()

    def barrier(self) -> None:
        import torch

        self.hvd.allreduce(torch.zeros(1), op=self.hvd.Sum, name="geodl.barrier")

    def shutdown(self) -> None:
        self.hvd.shutdown()


class TorchDistributed:
    """torch.distributed: DDP over Gloo (CPU) or NCCL (CUDA); rendezvous from ``env://`` or a given address."""

    name = "torch"

    def __init__(self, device: str = "cpu", init_method: str | None = None, timeout_s: float = 300.0) -> None:
        import torch
        import torch.distributed as dist

        self.dist: Any = dist
        local = os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", os.environ.get("RANK", "0")))
        self.local_rank = int(local)
        self.device = torch.device("cuda", self.local_rank) if device.startswith("cuda") else torch.device("cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)  # before NCCL starts, so each rank owns its GPU
        if not dist.is_initialized():
            method = init_method or "env://"
            if method == "env://":
                missing = [k for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE") if k not in os.environ]
                if missing:
                    raise CollectiveError(
                        f"backend=torch: environment lacks {', '.join(missing)}; launch with torchrun or srun, "
                        "or pass init_method='tcp://HOST:PORT' with rank and world size"
                    )
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            timeout = timedelta(seconds=timeout_s)
            kwargs: dict[str, Any] = {"backend": backend, "init_method": method, "timeout": timeout}
            if method != "env://":
                kwargs["rank"] = int(os.environ.get("RANK", "0"))
                kwargs["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
            dist.init_process_group(**kwargs)
        self.rank, self.size = int(dist.get_rank()), int(dist.get_world_size())

    def allreduce(self, value: torch.Tensor | float, op: ReduceOp = "mean") -> Any:
        _check_op(op)
        dist = self.dist
        tensor, was_tensor = _as_tensor(value)
        out = tensor.clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        if op == "mean":
            out = out / self.size if out.is_floating_point() else out // self.size
        out = out.to(tensor.device)
        return out if was_tensor else float(out.item())

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        for tensor in model.state_dict().values():
            self.dist.broadcast(tensor.data, src=0)

    def broadcast_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        if self.allreduce(float(len(optimizer.state_dict()["state"])), op="max") == 0:
            return  # no state anywhere yet: identical on every rank
        objs: list[Any] = [optimizer.state_dict() if self.rank == 0 else None]
        self.dist.broadcast_object_list(objs, src=0)
        optimizer.load_state_dict(objs[0])

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def distributed_optimizer(
        self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, compression: Compression = "none"
    ) -> torch.optim.Optimizer:
        if compression == "fp16" and isinstance(model, self._ddp_type()):
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

            model.register_comm_hook(None, default_hooks.fp16_compress_hook)
        return optimizer  # DDP averages gradients during backward

    def _ddp_type(self) -> type[Any]:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel

    def optimizer_step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None) -> None:
        SingleProcess.optimizer_step(cast(Any, self), optimizer, scaler)

    def barrier(self) -> None:
        self.dist.barrier()

    def shutdown(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def make_collective(backend: Backend = "none", device: str = "cpu", init_method: str | None = None) -> Collective:
    """The collective for ``backend``: ``"none"`` (one process), ``"horovod"`` or ``"torch"`` (DDP)."""
    if backend == "none":
        return SingleProcess()
    if backend == "horovod":
        return HorovodCollective()
    if backend == "torch":
        return TorchDistributed(device=device, init_method=init_method)
    raise CollectiveError(f"backend={backend!r}: use 'none', 'horovod' or 'torch'")
