"""ChipPipeline: plan an epoch, run read tasks (in-process or on Ray Data) and re-batch into torch tensors."""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import require_complete
from geodl_hpc.errors import ArchiveError
from geodl_hpc.pipeline.config import RASTER_AUGMENTS, WAVEFORM_AUGMENTS, PipelineConfig, PipelineError
from geodl_hpc.pipeline.decode import (
    CutSpec,
    GroupTask,
    assemble,
    decode_and_cut,
    open_arrays,
    split_units,
    valid_mask,
)
from geodl_hpc.sampling import Cursor, RankPlan, UnitGrid, WaveUnits, remaining_plan

if TYPE_CHECKING:
    import torch

Batch = dict[str, np.ndarray]


def _zarr_attrs(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    return dict(group.attrs), {name: arr for name, arr in group.arrays()}


def build_spec(config: PipelineConfig) -> tuple[CutSpec, dict[str, dict[str, Any]]]:
    """Check the archive against the config and return the read-task spec and per-layer statistics."""
    path = Path(config.archive)
    kind = require_complete(path)
    attrs, arrays = _zarr_attrs(path)
    if kind == "raster":
        bad_aug = [a for a in config.augment if a not in RASTER_AUGMENTS]
        if bad_aug:
            raise PipelineError(f"augment: {bad_aug} do not apply to raster stacks; use {RASTER_AUGMENTS}")
        names = [str(v) for v in attrs.get("layers", [])]
        layers = tuple(config.layers) if config.layers is not None else tuple(n for n in names if n != config.label)
        for name in (*layers, *([config.label] if config.label else [])):
            if name not in arrays:
                raise PipelineError(f"{path}: no layer {name!r}; the archive has {', '.join(names)}")
        if not layers:
            raise PipelineError(f"{path}: no input layers left; name some in layers=")
        chunks = {tuple(arrays[n].chunks) for n in layers}
        if len(chunks) != 1:
            raise PipelineError(f"{path}: layers {layers} have different chunks {chunks}; re-ingest with one chunk")
        chunk = next(iter(chunks))
        h, w = (int(v) for v in arrays[layers[0]].shape)
        units: UnitGrid | WaveUnits = UnitGrid(h, w, (int(chunk[0]), int(chunk[1])), config.unit_chunks)
        stats: dict[str, dict[str, Any]] = {}
        for name in layers:
            st = dict(arrays[name].attrs).get("statistics")
            if not isinstance(st, dict) or "mean" not in st or "std" not in st:
                raise PipelineError(f"{path}: layer {name!r} has no statistics attribute; re-ingest the archive")
            stats[name] = st
        mean = tuple(float(stats[n]["mean"]) for n in layers)
        std = tuple(float(stats[n]["std"]) if float(stats[n]["std"]) > 0 else 1.0 for n in layers)
        unit_side = min(int(chunk[0]), int(chunk[1])) * config.unit_chunks
        variables = layers
    elif kind == "waveforms":
        bad_aug = [a for a in config.augment if a not in WAVEFORM_AUGMENTS]
        if bad_aug:
            raise PipelineError(f"augment: {bad_aug} do not apply to waveforms; use {WAVEFORM_AUGMENTS}")
        if config.label or config.layers:
            raise PipelineError("layers/label: waveform archives have no layers; leave both unset")
        s, _c, t = (int(v) for v in arrays["data"].shape)
        units = WaveUnits(s, t, int(arrays["data"].chunks[2]), config.unit_chunks)
        unit_side, mean, std, stats, variables = units.unit_len, (), (), {}, ("data",)
    else:
        raise ArchiveError(f"{path}: is a {kind} archive; the pipeline reads raster or waveform archives")
    if config.chip > unit_side:
        raise PipelineError(
            f"chip={config.chip}: larger than a read unit ({unit_side} px/samples at unit_chunks="
            f"{config.unit_chunks}); raise unit_chunks or shrink chip"
        )
    spec = CutSpec(
        kind=kind,
        path=str(path),
        variables=variables,
        label=config.label,
        chip=config.chip,
        units=units,
        mean=mean,
        std=std,
        normalise=config.normalise,
        nodata=config.nodata,
        augment=tuple(config.augment),
        seed=config.seed,
        shift_max=config.shift_max,
        noise_std=config.noise_std,
        dropout_p=config.dropout_p,
        gain_range=config.gain_range,
        pick_sigma=config.pick_sigma,
    )
    return spec, stats


def _ray_decode(batch: dict[str, np.ndarray], spec: CutSpec) -> Batch:
    """Ray Data UDF: one row = one pickled single-unit GroupTask."""
    task: GroupTask = pickle.loads(batch["task"][0])
    return decode_and_cut(spec, task)


def ensure_ray(num_cpus: int) -> Any:
    """Connect to ``RAY_ADDRESS`` if set, else start a local Ray lazily (never at import)."""
    import ray

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    return ray


def rebatch(blocks: Iterable[Batch], batch_size: int, drop_last: bool) -> Iterator[Batch]:
    """Exactly ``batch_size`` samples per batch from blocks of any size, order kept.

    Batches inside one block are views of it (no copy); only a batch that spans blocks is concatenated.
    """
    pending: list[Batch] = []
    have = 0
    for block in blocks:
        size = len(block["index"])
        if size == 0:
            continue
        start = 0
        if have:  # complete the pending batch with the head of this block
            take = min(batch_size - have, size)
            pending.append({k: v[:take] for k, v in block.items()})
            have += take
            start = take
            if have < batch_size:
                continue
            yield {k: np.concatenate([b[k] for b in pending]) for k in block}
            pending, have = [], 0
        stop = start + ((size - start) // batch_size) * batch_size
        for s in range(start, stop, batch_size):
            yield {k: v[s : s + batch_size] for k, v in block.items()}
        if stop < size:
            pending, have = [{k: v[stop:] for k, v in block.items()}], size - stop
    if have and not drop_last:
        yield {k: np.concatenate([b[k] for b in pending]) for k in pending[0]}


def _take_rows(blocks: Iterator[Batch]) -> Any:
    """A function returning the next ``n`` rows of a block stream (one block per unit unless Ray split one)."""
    buf: list[Batch] = []

    def take(n: int) -> Batch:
        have = sum(len(b["index"]) for b in buf)
        while have < n:
            block = next(blocks)
            buf.append(block)
            have += len(block["index"])
        merged = buf[0] if len(buf) == 1 else {k: np.concatenate([b[k] for b in buf]) for k in buf[0]}
        buf.clear()
        if have > n:
            buf.append({k: v[n:] for k, v in merged.items()})
        return {k: v[:n] for k, v in merged.items()}

    return take


class ChipPipeline:
    """Shuffled, sharded, resumable batches of chips (or waveform windows) from one archive."""

    def __init__(self, config: PipelineConfig, samples: np.ndarray) -> None:
        self.config = config
        self.spec, self.statistics = build_spec(config)
        pos = np.asarray(samples, dtype=np.int64)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise PipelineError(f"samples: expected an (n, 2) integer array of positions, got shape {pos.shape}")
        inside = self.spec.units.inside_unit(pos, config.chip)
        if not inside.all():
            i = int(np.flatnonzero(~inside)[0])
            raise PipelineError(
                f"samples[{i}] = {pos[i].tolist()}: chip leaves its read unit or the grid; "
                "build samples with geodl_hpc.sampling samplers"
            )
        self.samples = pos
        self.unit_ids = self.spec.units.unit_of(pos)
        self.cursor: Cursor | None = None

    @property
    def batch_size(self) -> int:
        """Samples per batch (the training loop's ``BatchSource`` contract)."""
        return self.config.batch_size

    @property
    def units(self) -> UnitGrid | WaveUnits:
        """The read units of this archive at ``unit_chunks``."""
        return self.spec.units

    def valid_mask(self) -> np.ndarray | None:
        """Per-pixel mask where every input layer is valid (None if all are complete); for samplers."""
        if self.spec.kind != "raster":
            raise PipelineError("valid_mask: only raster stacks have a pixel mask; pass valid= to noise_windows")
        return valid_mask(Path(self.spec.path), self.spec.variables, statistics=self.statistics)

    def group_bytes(self) -> int:
        """Decoded bytes of one group: units x unit pixels x variables x 4 bytes, twice (decoded + cut)."""
        units = self.spec.units
        if isinstance(units, UnitGrid):
            pixels = units.unit_shape[0] * units.unit_shape[1]
            nvars = len(self.spec.variables) + (1 if self.spec.label else 0)
        else:
            pixels = units.unit_len
            nvars = int(open_arrays(self.spec.path)["data"].shape[1]) * 2  # data + valid
        return 2 * self.config.mix_units * pixels * nvars * 4

    def groups_in_flight(self) -> int:
        """Groups the memory budget allows at once (at least one)."""
        return max(1, int(self.config.memory_budget_mb * 2**20) // self.group_bytes())

    def plan(self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None) -> RankPlan:
        """This rank's plan for the rest of the epoch (from ``cursor`` if given), and sets ``self.cursor``."""
        if not 0 <= rank < n_ranks:
            raise PipelineError(f"rank={rank}: must be in [0, n_ranks={n_ranks})")
        start = cursor if cursor is not None else Cursor(epoch, n_ranks)
        if start.epoch != epoch:
            raise PipelineError(f"cursor: saved for epoch {start.epoch}, asked for epoch {epoch}; pass that epoch")
        plans, base = remaining_plan(self.unit_ids, self.config.seed, start, n_ranks, mix_units=self.config.mix_units)
        self.cursor = base
        return plans[rank]

    def tasks(self, epoch: int, plan: RankPlan) -> list[GroupTask]:
        """Read tasks for a rank plan, one per group."""
        return [GroupTask(epoch, g.index, g.units, g.samples, self.samples[g.samples]) for g in plan.groups]

    def blocks(self, epoch: int, plan: RankPlan) -> Iterator[Batch]:
        """Decoded numpy blocks (one per group) in plan order, from the configured backend."""
        tasks = self.tasks(epoch, plan)
        if not tasks:
            return iter(())
        if self.config.backend == "local":
            return (decode_and_cut(self.spec, t) for t in tasks)
        return self._ray_blocks(tasks)

    def unit_bytes(self) -> int:
        """Decoded bytes of one read unit (a Ray task): a group's bytes over ``mix_units``."""
        return max(1, self.group_bytes() // self.config.mix_units)

    def _ray_blocks(self, tasks: list[GroupTask]) -> Iterator[Batch]:
        """Ray Data decodes one unit per task (finer than a group: both workers share every group and the first
        batch waits for one unit, not a whole group); the driver scatters each group's units into one owned,
        writable batch (the one copy the driver makes; torch then takes it without another)."""
        ensure_ray(max(self.config.num_workers, 1))
        import ray.data

        if self.config.ray_task == "unit":
            split = [split_units(t, self.spec.units) for t in tasks]
            task_bytes = self.unit_bytes()
        else:
            split = [[(t, np.arange(len(t.samples)))] for t in tasks]
            task_bytes = self.group_bytes()
        unit_tasks = [u for parts in split for u, _ in parts]
        budget_units = max(1, int(self.config.memory_budget_mb * 2**20) // task_bytes)
        in_flight = max(1, min(self.config.num_workers, budget_units))
        items = [{"task": pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)} for t in unit_tasks]
        source = ray.data.from_items(items, override_num_blocks=len(items))
        ctx = source.context
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.execution_options.resource_limits = ctx.execution_options.resource_limits.copy(
            object_store_memory=budget_units * task_bytes
        )
        ds = source.map_batches(
            _ray_decode,  # type: ignore[arg-type]
            batch_size=1,
            batch_format="numpy",
            fn_kwargs={"spec": self.spec},
            compute=ray.data.TaskPoolStrategy(size=in_flight),
            num_cpus=1,
        )
        # Prefetch a group's units plus the batches asked for, within the decoded-bytes budget.
        per_unit = max(1, len(unit_tasks[0].samples)) if unit_tasks else 1
        want = len(split[0]) + math.ceil(self.config.prefetch_batches * self.config.batch_size / per_unit)
        prefetch = max(1, min(budget_units, want))
        stream = _take_rows(iter(ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=prefetch)))
        for task, parts in zip(tasks, split, strict=True):
            got = [(stream(len(u.samples)), where) for u, where in parts]
            yield assemble(len(task.samples), got)

    def iter_numpy(self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None) -> Iterator[Batch]:
        """Numpy batches of exactly ``batch_size`` (the last may be short unless ``drop_last``)."""
        plan = self.plan(epoch, rank, n_ranks, cursor)
        base = self.cursor
        assert base is not None
        done = base.position
        for batch in rebatch(self.blocks(epoch, plan), self.config.batch_size, self.config.drop_last):
            done += len(batch["index"])
            self.cursor = Cursor(base.epoch, base.n_ranks, done, base.history)
            yield batch

    def iter_epoch(
        self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Torch batches (``x`` float32 [B, C, K, K] or [B, C, T], ``y`` if a label layer or picks, ``index``) of this
        rank's share of the epoch; ``self.cursor`` after each batch is what a checkpoint stores."""
        import torch

        for batch in self.iter_numpy(epoch, rank, n_ranks, cursor):
            # Blocks from Ray's object store are read-only: copy those so training may write in place.
            yield {
                k: torch.from_numpy(v if v.flags.writeable and v.flags.c_contiguous else v.copy())
                for k, v in batch.items()
            }
