"""Job: train a model on chips of a raster archive, or a phase picker on windows of a waveform archive, with the
training engine (any backend, exact resume).

``main(config)`` runs on every rank (one process, ``horovodrun -np N``, ``torchrun``, or the tasks of a Slurm job,
whose ranks meet through ``geodl_hpc.launch.allocation``); each rank reads its equal shard of the pipeline. Run it
again on the same output folder to resume from the newest checkpoint. A preempted run (USR2/TERM, or Slurm's
walltime signal) checkpoints and returns ``status == "preempted"``; on a cluster the launcher requeues it.

Pickers (``train.model.name`` ``phasenet`` or ``spectrogram_cnn``) train on pick and noise windows of a waveform
archive (``synthetic`` builds a synthetic-on-real one first when the archive is missing); the run folder also
gets ``picker.json`` (window, sampling rate, channels: what ``load_picker`` needs) and, with
``train.data.eval_split``, ``validation.json`` (held-out pick and detection scores).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.config import dump_config
from geodl_hpc.errors import ConfigError
from geodl_hpc.launch.allocation import allocation_collective
from geodl_hpc.training.config import TrainConfig, TrainJobConfig, raster_pipeline_config

if TYPE_CHECKING:
    from geodl_hpc.collective import Collective


def build_pipeline(archive: Path, train: TrainConfig) -> Any:
    """The chip pipeline of ``archive`` with ``n_samples`` random valid chips drawn with ``train.seed``."""
    from geodl_hpc.pipeline import ChipPipeline
    from geodl_hpc.sampling import random_chips

    data = train.data
    pconf = raster_pipeline_config(archive, train, data.layers, data.label)
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


PICKERS = ("phasenet", "spectrogram_cnn")


def wave_pipeline_config(archive: Path, train: TrainConfig, *, augment: bool = True) -> Any:
    """The pipeline settings of picker training (``augment=False``: the same windows, unaugmented)."""
    from geodl_hpc.pipeline import PipelineConfig

    data = train.data
    return PipelineConfig(
        Path(archive),
        chip=data.chip,
        batch_size=data.batch_size,
        unit_chunks=data.unit_chunks,
        mix_units=data.mix_units,
        seed=train.seed,
        augment=data.augment if augment else (),
        backend=data.backend,
        num_workers=data.num_workers,
        shift_max=data.shift_max,
        noise_std=data.noise_std,
        dropout_p=data.dropout_p,
        gain_range=data.gain_range,
        pick_sigma=data.pick_sigma,
    )


def wave_samples(archive: Path, units: Any, train: TrainConfig, split: str | None, seed: int) -> np.ndarray:
    """Pick and noise windows of ``archive`` on the stations of ``split`` (all stations when None)."""
    from geodl_hpc.pipeline.decode import open_arrays
    from geodl_hpc.sampling.waveform import training_windows

    data = train.data
    group = open_arrays(str(archive))
    names = set(group)
    if "pick_sample" not in names:
        raise ConfigError(f"archive {archive}: has no picks; ingest it with --picks or build a synthetic-on-real one")
    stations = None
    if split is not None:
        if "split" not in names:
            raise ConfigError(f"train.data.split: archive {archive} has no station 'split' variable; leave it unset")
        stations = np.array([str(v) for v in group["split"][:]]) == split
        if not stations.any():
            have = sorted({str(v) for v in group["split"][:]})
            raise ConfigError(f"train.data.split: no stations in split {split!r}; the archive has {have}")
    valid = np.asarray(np.asarray(group["valid"][:]).all(axis=1))
    jitter = data.pick_jitter if data.pick_jitter is not None else max(data.chip * 2 // 5, 0)
    return training_windows(
        units,
        np.asarray(group["pick_station"][:], np.int64),
        np.asarray(group["pick_sample"][:], np.int64),
        data.chip,
        data.n_samples,
        np.random.default_rng(seed),
        noise_fraction=data.noise_fraction,
        jitter=min(jitter, data.chip // 2 - 1),
        guard=round(3 * data.pick_sigma),
        valid=valid,
        stations=stations,
    )


def build_wave_pipeline(archive: Path, train: TrainConfig, split: str | None = None, *, augment: bool = True) -> Any:
    """The waveform-window pipeline of ``archive`` (pick + noise windows of ``split``), serving ``x`` and ``y``."""
    from geodl_hpc.pipeline import ChipPipeline

    pconf = wave_pipeline_config(archive, train, augment=augment)
    probe = ChipPipeline(pconf, np.zeros((0, 2), np.int64))
    seed = train.seed if augment else train.seed + 7919  # evaluation windows are drawn apart from training's
    return ChipPipeline(pconf, wave_samples(Path(archive), probe.units, train, split, seed))


def evaluate_picker(model: Any, archive: Path, train: TrainConfig, split: str) -> dict[str, Any]:
    """Held-out pick and detection scores of ``model`` on the windows of ``split`` (unaugmented)."""
    import torch

    from geodl_hpc.models.picker import pick_metrics, window_picks
    from geodl_hpc.pipeline.decode import archive_picks

    pipe = build_wave_pipeline(archive, train, split, augment=False)
    probs, index = [], []
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for batch in pipe.iter_epoch(0):
            logits = model(batch["x"].to(device))
            probs.append(model.probabilities(logits).cpu().numpy())
            index.append(batch["index"].numpy())
    order = np.concatenate(index)
    true = window_picks(archive_picks(str(archive)), pipe.samples[order], train.data.chip)
    rate = float(_archive_attrs(archive)["sampling_rate"])
    result = pick_metrics(np.concatenate(probs), true, rate)
    result["split"] = split
    return result


def _archive_attrs(archive: Path) -> dict[str, Any]:
    import zarr

    return dict(zarr.open_group(str(archive), mode="r").attrs)


def _prepare_archive(config: TrainJobConfig) -> None:
    """Build the synthetic-on-real archive the config names when it is missing (rank 0 only)."""
    archive = Path(config.archive)
    if config.synthetic is None or archive.exists():
        return
    from geodl_hpc.archive.synthetic_seismic import build_synthetic_archive

    archive.parent.mkdir(parents=True, exist_ok=True)
    build_synthetic_archive(archive, config.synthetic)


def main(config: TrainJobConfig) -> dict[str, Any]:
    """Train (or resume) into ``config.output``; returns the loop's result on this rank."""
    train_cfg = config.train
    output = Path(config.output)
    with allocation_collective(train_cfg.backend, train_cfg.device, output) as collective:
        return _train(config, collective)


def _train(config: TrainJobConfig, collective: Collective) -> dict[str, Any]:
    import json

    from geodl_hpc.archive.store import require_complete
    from geodl_hpc.models import build_model
    from geodl_hpc.training.loop import seed_everything, train

    train_cfg = config.train
    output = Path(config.output)
    m = train_cfg.model
    if collective.rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        dump_config(config, output / "config.resolved.yaml")
        _prepare_archive(config)
    collective.barrier()
    archive = Path(config.archive)
    kind = require_complete(archive)
    picker = m.name in PICKERS
    if picker != (kind == "waveforms"):
        want = "a waveform archive" if picker else "a raster archive"
        raise ConfigError(f"train.model.name: {m.name!r} trains on {want}, but {archive} is a {kind} archive")
    seed_everything(train_cfg.seed, 0, train_cfg.deterministic)  # same initial weights on every rank and run
    if picker:
        pipeline = build_wave_pipeline(archive, train_cfg, train_cfg.data.split)
        attrs = _archive_attrs(archive)
        from geodl_hpc.pipeline.decode import open_arrays

        channels = [str(c) for c in open_arrays(str(archive))["channel"][:]]
        in_channels = len(channels) + (1 if pipeline.config.nodata == "fill" else 0)
        if collective.rank == 0:
            meta = {"model": m.name, "window": train_cfg.data.chip, "sampling_rate": float(attrs["sampling_rate"]),
                    "channels": channels, "output_names": ["noise", "P", "S"], "archive": str(archive)}  # fmt: skip
            (output / "picker.json").write_text(json.dumps(meta, indent=2) + "\n")
        model = build_model(
            m.name, in_channels, width=m.width, depth=m.depth, kernel=m.kernel, dropout=m.dropout, n_fft=m.n_fft,
            hop=m.hop,
        )  # fmt: skip
    else:
        pipeline = build_pipeline(archive, train_cfg)
        in_channels = len(pipeline.spec.variables) + (1 if pipeline.config.nodata == "fill" else 0)
        model = build_model(m.name, in_channels, width=m.width, depth=m.depth, per_pixel=m.per_pixel, dropout=m.dropout)
    result = train(train_cfg, pipeline, model, output, collective)
    split = train_cfg.data.eval_split
    if picker and split and result["status"] == "completed" and collective.rank == 0:
        scores = evaluate_picker(model, archive, train_cfg, split)
        (output / "validation.json").write_text(json.dumps(scores, indent=2) + "\n")
        result["validation"] = scores
    return result
