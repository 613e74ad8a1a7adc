"""The training loop: read it top to bottom in ``train``.

Setup (device, seeds, optimizer, schedule, AMP) -> resume from the newest checkpoint -> for each batch of this
rank's pipeline shard: forward, backward, averaged step, allreduced metrics + preemption flag, checkpoint on
schedule -> epoch metrics and best checkpoint -> final checkpoint and learning curve.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Iterator, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import numpy as np

from geodl_hpc.collective import Collective, make_collective
from geodl_hpc.errors import ConfigError
from geodl_hpc.sampling import Cursor
from geodl_hpc.training.checkpoint import (
    CheckpointManager,
    all_rank_torch_rng,
    restore_rank_torch_rng,
    rng_state,
    set_rng_state,
)
from geodl_hpc.training.config import TrainConfig
from geodl_hpc.training.preemption import PreemptionFlag

if TYPE_CHECKING:
    import torch

KILL_ENV = "GEODL_TRAIN_KILL_AT"  # tests only: "N" = SIGKILL after step N, "N:mid" = during step N
# tests only: sleep this many seconds in every step, so that a batch job runs long enough to be signalled
# (it travels to Slurm jobs in the submitter's environment; it changes no number the run computes)
STEP_SLEEP_ENV = "GEODL_TRAIN_STEP_SLEEP"


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` (this rank's GPU; an error without one) or ``auto`` (a GPU if torch sees one)."""
    import torch

    if requested == "cpu":
        return torch.device("cpu")
    if requested not in ("cuda", "auto"):
        raise ConfigError(f"train.device: {requested!r} is not one of 'cpu', 'cuda', 'auto'")
    if not torch.cuda.is_available():
        if requested == "cuda":
            raise ConfigError(
                "train.device: 'cuda' requested but torch sees no GPU; set train.device=cpu (or auto) "
                "or run on a GPU node with a CUDA build of torch"
            )
        return torch.device("cpu")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def seed_everything(seed: int, rank: int, deterministic: bool) -> None:
    """Seed python/numpy identically on all ranks and torch per rank; ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed + rank)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def lr_factor(step: int, warmup: int, size: int, scale: bool) -> float:
    """Multiplier of the peak rate: linear warm-up from the single-process ``lr`` to ``lr x size`` (or from 0)."""
    if warmup <= 0:
        return 1.0
    frac = min(step / warmup, 1.0)
    if scale and size > 1:
        return (1.0 + (size - 1) * frac) / size
    return min((step + 1) / warmup, 1.0)


def param_checksum(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer's bytes (equal checksums = bit-identical weights)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _maybe_kill(step: int, phase: str) -> None:
    """Test hook: ``GEODL_TRAIN_KILL_AT=N`` kills this process after step N, ``N:mid`` inside step N."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    want_step, _, want_phase = spec.partition(":")
    if int(want_step) == step and (want_phase or "end") == phase:
        os.kill(os.getpid(), signal.SIGKILL)


class BatchSource(Protocol):
    """What the loop trains on: ``ChipPipeline`` or any source with the same sharded, resumable epochs.

    ``plan(epoch, rank, n_ranks)`` sizes an epoch's share, ``iter_epoch`` yields dicts with ``x`` and ``y``
    tensors from a cursor, and ``cursor`` after each batch is what a checkpoint stores.
    """

    cursor: Cursor | None

    @property
    def batch_size(self) -> int: ...

    def plan(self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None) -> Sized: ...

    def iter_epoch(
        self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None
    ) -> Iterator[dict[str, torch.Tensor]]: ...


def _targets(y: torch.Tensor, per_pixel: bool) -> torch.Tensor:
    target = (y > 0).float()
    return target if per_pixel else target.amax(dim=(-2, -1))


def batch_loss(
    model: torch.nn.Module, logits: torch.Tensor, y: torch.Tensor, loss_fn: torch.nn.Module
) -> tuple[torch.Tensor, float, float]:
    """The loss, correct count and target count of one batch.

    A model with a ``training_loss(logits, y) -> (loss, correct, total)`` method owns its loss (phase pickers,
    forecasting RNNs); otherwise binary cross-entropy on ``y > 0`` per pixel (or per chip if not ``per_pixel``).
    """
    own = getattr(model, "training_loss", None)
    if callable(own):
        loss, correct, total = own(logits, y)
        return loss, float(correct), float(total)
    target = _targets(y, bool(getattr(model, "per_pixel", True)))
    loss = loss_fn(logits.float(), target)
    correct = ((logits.detach() > 0).float() == target).sum().item()
    return loss, float(correct), float(target.numel())


class MetricLog:
    """Rank 0's JSONL log (+ TensorBoard when installed); other ranks log nothing."""

    def __init__(self, folder: Path, enabled: bool, resume_step: int, resume_epoch: int) -> None:
        self.enabled = enabled
        self.path = folder / "metrics.jsonl"
        self.records: list[dict[str, Any]] = []
        self.tb: Any = None
        self._fh: TextIO | None = None
        if not enabled:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # drop what a killed run logged after the checkpoint we resume from
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut off by the kill
                keep = rec["step"] <= resume_step if rec.get("kind") == "step" else rec["epoch"] < resume_epoch
                if keep:
                    self.records.append(rec)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        self._fh = open(self.path, "a")  # noqa: SIM115 - closed in close()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(folder / "tensorboard"), purge_step=resume_step + 1)
        except ImportError:
            self.info("tensorboard is not installed: TensorBoard logs skipped (metrics.jsonl has everything)")

    def info(self, message: str) -> None:
        if self.enabled:
            print(f"[train] {message}", file=sys.stderr, flush=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled or self._fh is None:
            return
        self.records.append(record)
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self.tb is not None:
            for key, value in record.items():
                if key not in ("kind", "step", "epoch", "time") and isinstance(value, int | float):
                    self.tb.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self.tb is not None:
            self.tb.close()


def plot_learning_curve(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss per step and per epoch as a PNG (matplotlib, no display needed)."""
    steps = [r for r in records if r.get("kind") == "step"]
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=1, label="step loss")
    epochs = [r for r in records if r.get("kind") == "epoch"]
    if epochs:
        ax.plot([r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", label="epoch loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train(
    config: TrainConfig,
    pipeline: BatchSource,
    model: torch.nn.Module,
    output: Path,
    collective: Collective | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``pipeline`` into ``output``; resumes from ``output/checkpoints`` if it has any.

    Returns ``status`` ``"completed"`` or ``"preempted"`` (a checkpoint was written at the agreed step; requeue
    and call again), the step and epoch reached, final metrics and a checksum of the weights.
    """
    import torch

    # ---- setup ---------------------------------------------------------------------------------------------
    coll = collective or make_collective(config.backend, config.device)
    rank, size = coll.rank, coll.size
    device = resolve_device(config.device, coll.local_rank)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed, rank, config.deterministic)
    if config.amp == "fp16" and device.type == "cpu":
        raise ConfigError("train.amp: fp16 autocast needs a GPU; use amp=bf16 on CPU or train.device=cuda")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
    output = Path(output)
    ckpts = CheckpointManager(output / "checkpoints", config.keep_last, config.config_hash(), config.fingerprint())

    model.to(device)
    state = ckpts.load_latest()
    if state is not None:
        model.load_state_dict(state["model"])
    net = coll.wrap_model(model)
    base = torch.optim.AdamW(
        model.parameters(),
        lr=config.lr * (size if config.scale_lr_by_world_size else 1),
        weight_decay=config.weight_decay,
    )
    # Horovod's DistributedOptimizer is a new optimizer over the same parameters: load state only after wrapping.
    optimizer = coll.distributed_optimizer(base, net, config.compression)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_factor(s, config.lr_warmup_steps, size, config.scale_lr_by_world_size),
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(config.pos_weight, device=device))

    # ---- resume ---------------------------------------------------------------------------------------------
    step, epoch, cursor, best = 0, 0, None, math.inf
    epoch_sums = torch.zeros(4, dtype=torch.float64)  # loss x n, n, correct, total over this epoch so far
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        restore_rank_torch_rng(state["rank_torch_rng"], rank, size)
        step, epoch, best = int(state["step"]), int(state["epoch"]), float(state["best"])
        cursor = Cursor.from_dict(state["cursor"]) if state["cursor"] is not None else None
        epoch_sums = state["epoch_sums"].clone()
    coll.broadcast_parameters(model)
    coll.broadcast_optimizer_state(optimizer)

    log = MetricLog(output, enabled=rank == 0, resume_step=step, resume_epoch=epoch)
    if state is not None:
        log.info(f"resumed from step {step} (epoch {epoch}) in {ckpts.latest()}")

    def save(best_now: bool = False) -> Path | None:
        """Every rank joins (RNG gather); rank 0 writes."""
        table = all_rank_torch_rng(coll)
        if rank != 0:
            return None
        return ckpts.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "rank_torch_rng": table,
                "epoch": epoch,
                "cursor": cursor.to_dict() if cursor is not None else None,
                "epoch_sums": epoch_sums,
                "best": best,
                "world_size": size,
            },
            step,
            best=best_now,
        )

    steps_per_epoch = [math.ceil(len(pipeline.plan(e, rank, size)) / pipeline.batch_size) for e in range(config.epochs)]
    from tqdm import tqdm

    bar = tqdm(
        total=sum(steps_per_epoch), initial=step, unit="step", desc="train",
        disable=True if rank != 0 or not config.progress else None,
    )  # fmt: skip
    status, last_saved, flag_step = "completed", -1, -1
    step_loss = float("nan")
    started, samples_seen = time.perf_counter(), 0

    # ---- train ----------------------------------------------------------------------------------------------
    step_sleep = float(os.environ.get(STEP_SLEEP_ENV) or 0)
    with PreemptionFlag() as flag:
        while epoch < config.epochs:
            model.train()
            for batch in pipeline.iter_epoch(epoch, rank, size, cursor):
                t0 = time.perf_counter()
                x = batch["x"].to(device, non_blocking=True)
                y = batch["y"].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits = net(x)
                loss, correct, n_targets = batch_loss(model, logits, y, loss_fn)
                optimizer.zero_grad()  # sets grads to None (Horovod takes no argument)
                scaler.scale(loss).backward()
                _maybe_kill(step + 1, "mid")
                if step_sleep > 0:
                    time.sleep(step_sleep)
                coll.optimizer_step(optimizer, scaler if scaler.is_enabled() else None)
                scheduler.step()
                step += 1
                cursor = pipeline.cursor

                # Metrics and the preemption flag in one allreduce: every rank learns of a signal after this step.
                n = float(x.shape[0])
                local = torch.tensor([loss.item() * n, n, correct, n_targets, float(flag.requested)])
                total = coll.allreduce(local.double(), op="sum")
                epoch_sums += total[:4]
                step_loss, step_acc = float(total[0] / total[1]), float(total[2] / total[3])
                samples_seen += int(total[1])
                bar.update(1)
                rate = samples_seen / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{step_loss:.4f}", samples_s=f"{rate:.0f}")
                if step % config.log_every == 0:
                    lr = optimizer.param_groups[0]["lr"]
                    log.write(
                        {"kind": "step", "step": step, "epoch": epoch, "loss": step_loss, "acc": step_acc, "lr": lr,
                         "samples_s": rate, "step_s": time.perf_counter() - t0}
                    )  # fmt: skip

                if step % config.checkpoint_every_steps == 0:
                    save()
                    last_saved = step
                _maybe_kill(step, "end")
                if total[4] > 0:  # some rank was signalled: all stop here, together
                    flag_step = step
                    break
            if flag_step >= 0:
                break
            # ---- end of epoch: allreduced epoch metrics, best checkpoint, next epoch from its start ----------
            epoch_loss = float(epoch_sums[0] / max(float(epoch_sums[1]), 1.0))
            epoch_acc = float(epoch_sums[2] / max(float(epoch_sums[3]), 1.0))
            log.write({"kind": "epoch", "step": step, "epoch": epoch, "loss": epoch_loss, "acc": epoch_acc})
            is_best = epoch_loss < best
            best = min(best, epoch_loss)
            epoch, cursor = epoch + 1, None
            epoch_sums = torch.zeros(4, dtype=torch.float64)
            if is_best:
                save(best_now=True)
                last_saved = step

    bar.close()
    if flag_step >= 0:
        status = "preempted"
        log.info(f"preemption requested (signal on some rank): checkpoint at step {step}, returning for requeue")
    if last_saved != step:
        save()
    coll.barrier()
    curve = plot_learning_curve(log.records, output / "learning_curve.png") if rank == 0 and config.plot else None
    if status == "completed" and curve is not None:
        log.info(f"learning curve: {curve}")
    log.close()
    return {
        "status": status,
        "step": step,
        "epoch": epoch,
        "rank": rank,
        "size": size,
        "backend": coll.name,
        "device": str(device),
        "loss": step_loss,
        "best_loss": best,
        "param_checksum": param_checksum(model),
        "checkpoint": str(ckpts.latest()) if rank == 0 else None,
        "signal": flag.signum,
    }
