"""Job: train a model on chips of a raster archive with the training engine (any backend, exact resume).

``main(config)`` runs on every rank (one process, ``horovodrun -np N``, ``torchrun``, or the tasks of a Slurm job,
whose ranks meet through ``geodl_hpc.launch.allocation``); each rank reads its equal shard of the pipeline. Run it
again on the same output folder to resume from the newest checkpoint. A preempted run (USR2/TERM, or Slurm's
walltime signal) checkpoints and returns ``status == "preempted"``; on a cluster the launcher requeues it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.config import dump_config
from geodl_hpc.launch.allocation import allocation_collective
from geodl_hpc.training.config import TrainConfig, TrainJobConfig

if TYPE_CHECKING:
    from geodl_hpc.collective import Collective


def build_pipeline(archive: Path, train: TrainConfig) -> Any:
    """The chip pipeline of ``archive`` with ``n_samples`` random valid chips drawn with ``train.seed``."""
    from geodl_hpc.pipeline import ChipPipeline, PipelineConfig
    from geodl_hpc.sampling import random_chips

    data = train.data
    pconf = PipelineConfig(
        Path(archive),
        chip=data.chip,
        layers=data.layers,
        label=data.label,
        batch_size=data.batch_size,
        unit_chunks=data.unit_chunks,
        mix_units=data.mix_units,
        seed=train.seed,
        augment=data.augment,
        backend=data.backend,
        num_workers=data.num_workers,
    )
    probe = ChipPipeline(pconf, np.zeros((0, 2), np.int64))
    valid = probe.valid_mask()
    samples = random_chips(
        probe.units,  # type: ignore[arg-type]
        data.chip,
        data.n_samples,
        np.random.default_rng(train.seed),
        valid=valid,
    )
    return ChipPipeline(pconf, samples)


def main(config: TrainJobConfig) -> dict[str, Any]:
    """Train (or resume) into ``config.output``; returns the loop's result on this rank."""
    train_cfg = config.train
    output = Path(config.output)
    with allocation_collective(train_cfg.backend, train_cfg.device, output) as collective:
        return _train(config, collective)


def _train(config: TrainJobConfig, collective: Collective) -> dict[str, Any]:
    from geodl_hpc.models import build_model
    from geodl_hpc.training.loop import seed_everything, train

    train_cfg = config.train
    output = Path(config.output)
    if collective.rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        dump_config(config, output / "config.resolved.yaml")
    pipeline = build_pipeline(Path(config.archive), train_cfg)
    in_channels = len(pipeline.spec.variables) + (1 if pipeline.config.nodata == "fill" else 0)
    m = train_cfg.model
    seed_everything(train_cfg.seed, 0, train_cfg.deterministic)  # same initial weights on every rank and run
    model = build_model(m.name, in_channels, width=m.width, depth=m.depth, per_pixel=m.per_pixel, dropout=m.dropout)
    return train(train_cfg, pipeline, model, output, collective)
