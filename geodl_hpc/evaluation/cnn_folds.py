"""The main job's CNN over spatial block-CV folds: balanced chips from the training blocks only, the training
engine per fold (one CNN or a seed ensemble, resumed or reused by settings), and per-pixel maps of the trained
models (tiled into a map Zarr, or in memory with the same pixels).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from geodl_hpc.collective import Collective
    from geodl_hpc.evaluation.blockcv import RasterData
    from geodl_hpc.evaluation.prospectivity_config import ProspectivityConfig
    from geodl_hpc.sampling import BlockFolds

log = logging.getLogger(__name__)


class FoldTrainingPreempted(Exception):
    """A training run stopped at a preemption signal with a checkpoint; the job returns so it can be requeued."""


def chip_model(net: torch.nn.Module, pool: str) -> torch.nn.Module:
    """``net`` (per-pixel logits) with a chip-level output: the max or mean of its logits over each chip."""
    import torch

    class ChipPooled(torch.nn.Module):
        per_pixel = False

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = self.net(x).flatten(1)
            return logits.amax(dim=1) if pool == "max" else logits.mean(dim=1)

    net.per_pixel = True  # type: ignore[assignment]
    return ChipPooled()


def _member_settings(config: ProspectivityConfig, archive: Path, held_out: frozenset[int], seed: int) -> str:
    """What decides one trained member's weights (the chips and the training run), as canonical JSON."""
    from geodl_hpc.config import to_dict

    return json.dumps(
        {
            "archive": str(archive),
            "cv": {k: v for k, v in to_dict(config.cv).items() if k in ("folds", "blocks", "seed", "label", "layers")},
            "held_out": sorted(held_out),
            "sampling": to_dict(config.sampling),
            "chip_pool": config.chip_pool,
            "train": to_dict(dataclasses.replace(config.train, seed=seed)),
        },
        sort_keys=True,
    )


def _fresh_folder(folder: Path, settings: str) -> None:
    """Keep ``folder`` (a finished or resumable training run) only when it was made with ``settings``."""
    marker = folder / "settings.json"
    if folder.exists() and (not marker.exists() or marker.read_text() != settings):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text(settings)


def _train_member(
    config: ProspectivityConfig,
    archive: Path,
    folds: BlockFolds,
    held_out: frozenset[int],
    data: RasterData,
    train_mask: np.ndarray,
    output: Path,
    collective: Collective,
    seed: int,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train one CNN with ``seed`` on balanced chips wholly inside ``train_mask`` (the blocks of every fold not
    in ``held_out``; empty: all blocks); returns the per-pixel net and the training result.

    ``output`` is reused when it holds a run with the same settings (finished: loaded; interrupted: resumed)."""
    from geodl_hpc.models import build_model
    from geodl_hpc.pipeline import ChipPipeline
    from geodl_hpc.sampling import balanced_chips, valid_fraction
    from geodl_hpc.training.config import raster_pipeline_config
    from geodl_hpc.training.loop import seed_everything, train

    tc, sc = dataclasses.replace(config.train, seed=seed), config.sampling
    if collective.rank == 0:
        _fresh_folder(output, _member_settings(config, archive, held_out, seed))
    collective.barrier()
    d = tc.data
    pconf = raster_pipeline_config(archive, tc, tuple(config.cv.layers), config.cv.label)
    probe = ChipPipeline(pconf, np.zeros((0, 2), np.int64))
    valid = probe.valid_mask()
    valid = train_mask if valid is None else valid & train_mask  # chips wholly inside training ground
    labels = np.argwhere(data.positives & train_mask)
    stream = [1 + k for k in sorted(held_out)] or [1 + config.cv.folds]
    rng = np.random.default_rng([tc.seed, *stream])
    n_hard = round(sc.mask_negatives * sc.n_neg) if data.mask is not None else 0
    kwargs: dict[str, Any] = {"buffer": sc.buffer, "likely_negative": sc.likely_negative, "pu_distance": sc.pu_distance}
    units: Any = probe.units
    pos, y = balanced_chips(units, d.chip, labels, 3 * sc.n_pos, 3 * (sc.n_neg - n_hard), rng, valid=valid, **kwargs)
    hard = np.zeros((0, 2), np.int64)
    if n_hard and data.mask is not None:  # negatives at least half inside the mask layer (e.g. barren greenstone)
        hard, _ = balanced_chips(units, d.chip, labels, 0, 20 * n_hard, rng, valid=valid, **kwargs)
        hard = hard[valid_fraction(data.mask, hard, d.chip) >= 0.5]
    pos, y = np.concatenate([pos, hard]), np.concatenate([y, np.full(len(hard), 2, np.int8)])
    if held_out:  # drop chips crossing a block edge (could touch held-out ground)
        keep = folds.fold_of(pos, d.chip)
        ok = (keep >= 0) & ~np.isin(keep, sorted(held_out))
        pos, y = pos[ok], y[ok]
    parts = [pos[y == 1][: sc.n_pos], pos[y == 0][: sc.n_neg - n_hard], pos[y == 2][:n_hard]]
    samples = np.concatenate(parts)
    log.info(
        "%s",
        f"  seed {seed}: {len(parts[0])} positive + {len(parts[1])} random negative + {len(parts[2])} "
        f"in-{config.cv.mask} negative chips of {d.chip} px from {len(labels)} training deposits",
    )
    pipeline = ChipPipeline(pconf, samples)
    m = tc.model
    seed_everything(tc.seed, 0, tc.deterministic)
    model = build_model(
        m.name, len(config.cv.layers), width=m.width, depth=m.depth, per_pixel=m.per_pixel, dropout=m.dropout
    )
    trained = model if m.per_pixel else chip_model(model, config.chip_pool)
    result = train(tc, pipeline, trained, output, collective)
    return model, result


def train_fold_model(
    config: ProspectivityConfig,
    archive: Path,
    folds: BlockFolds,
    folds_map: np.ndarray,
    held_out: frozenset[int],
    data: RasterData,
    folder: Path,
    collective: Collective,
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """The fold model trained without the folds ``held_out``: one CNN, or the mean of ``config.ensemble`` CNNs
    trained with consecutive seeds (each in ``folder/train-s<seed>``); returns it and the training results."""
    from geodl_hpc.models.prospectivity import EnsembleMean

    train_mask = data.valid & ~np.isin(folds_map, sorted(held_out))
    members, results = [], []
    for i in range(config.ensemble):
        seed = config.train.seed + i
        net, result = _train_member(
            config, archive, folds, held_out, data, train_mask, folder / f"train-s{seed}", collective, seed
        )
        if result["status"] != "completed":  # a signal asked for a checkpoint: stop here; a rerun resumes
            raise FoldTrainingPreempted(f"{folder / f'train-s{seed}'}: training preempted at step {result['step']}")
        members.append(net)
        results.append(result)
    for net in members:
        net.per_pixel = True  # type: ignore[assignment]  # chip-level training, per-pixel maps
        net.eval()
    model = members[0] if len(members) == 1 else EnsembleMean(members)
    return model, results


def normalised_input(archive: Path, layers: tuple[str, ...], data: RasterData) -> np.ndarray:
    """The whole stack as the model reads it: ``(layer - mean) / std`` with the archive's statistics, NaN -> 0
    (what the pipeline and the inference runner do)."""
    import zarr

    group = zarr.open_group(str(archive), mode="r")
    x = np.empty((len(layers), *data.shape), np.float32)
    for i, name in enumerate(layers):
        stats: Any = group[name].attrs.get("statistics") or {}
        std = float(stats.get("std", 1.0)) or 1.0
        x[i] = (data.features[data.layers.index(name)] - float(stats.get("mean", 0.0))) / std
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def predict_in_memory(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """P(deposit) over the whole ``(C, H, W)`` input in one forward pass (reflect-padded by the receptive
    margin, then cropped): the same pixels the tiled runner writes with ``stitch=crop``, without tiles or Zarr."""
    import torch

    from geodl_hpc.inference.runner import receptive_margin

    margin = receptive_margin(model) or 0
    model.eval()
    with torch.inference_mode():
        t = torch.from_numpy(x)[None]
        if margin:
            t = torch.nn.functional.pad(t, (margin,) * 4, mode="reflect")
        logits = model(t)
        if logits.ndim == 4:
            logits = logits[:, 0]
        if margin:
            logits = logits[:, margin:-margin, margin:-margin]
        return np.asarray(torch.sigmoid(logits[0]).double().numpy())


def infer_full(config: ProspectivityConfig, archive: Path, model: torch.nn.Module, out: Path) -> dict[str, Any]:
    """Tiled per-pixel inference of ``model`` over the whole stack into ``out`` (a map Zarr)."""
    from geodl_hpc.inference.config import InferJobConfig
    from geodl_hpc.inference.runner import infer

    model.per_pixel = True  # type: ignore[assignment]  # chip-level training, per-pixel maps
    model.eval()
    ic = config.infer
    iconf = InferJobConfig(
        archive=str(archive),
        output=str(out),
        layers=tuple(config.cv.layers),
        label=config.cv.label,
        mask_channel=False,
        seed=config.train.seed,
        progress=False,
        export_tif=False,
        export_png=False,
        overwrite=True,
        **dataclasses.asdict(ic),
    )
    return infer(archive, model, out, iconf)


def read_map(path: Path) -> dict[str, np.ndarray]:
    """The probability, uncertainty and attribution bands of the map Zarr ``path``."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    layers = [str(n) for n in group.attrs.get("layers") or []]  # type: ignore[union-attr]
    names = [n for n in ("probability", "uncertainty") if n in group] + [
        n for n in layers if n.startswith("attribution_") and n in group
    ]
    return {n: np.asarray(group[n][:], dtype=np.float64) for n in names}  # type: ignore[index]


def write_map(template: Path, out: Path, layers: dict[str, np.ndarray]) -> Path:
    """``out`` as a copy of the complete map ``template`` with its layers replaced by ``layers``."""
    import zarr

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(template, out)
    group = zarr.open_group(str(out), mode="r+")
    for name, values in layers.items():
        group[name][:] = values.astype(group[name].dtype)  # type: ignore[index,union-attr]
    return out
