"""Job: tiled inference of a trained model over a raster stack into a map (Zarr), plus COG and PNG exports.

``main(config)`` runs one work item (``rank`` of ``n_ranks``; ranks, Ray tasks or Slurm array tasks each call it
with their own rank). Run it again after a crash to compute only the missing regions; on a finished map it is a
no-op. The process that completes the map also writes ``MAP.tif`` and ``MAP.png`` (and ``MAP.attribution.png``
with ``attribution``) beside it. Inside a multi-task Slurm step (``geodl infer CONFIG --cluster PROFILE
cluster.ntasks_per_node=N``) a config with ``n_ranks=1`` takes its rank and rank count from the step
(``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``), so the tasks share the map instead of each computing all of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geodl_hpc.config import dump_config
from geodl_hpc.errors import ConfigError
from geodl_hpc.inference.config import InferJobConfig


def main(config: InferJobConfig) -> dict[str, Any]:
    """Infer this rank's regions of ``config.output``; returns counts, throughput and the exported files."""
    import torch

    from geodl_hpc.inference.exports import export_map_geotiff, plot_attribution, plot_map
    from geodl_hpc.inference.runner import infer

    config = with_step_rank(config)
    out = Path(config.output)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    model: torch.nn.Module | Path
    if config.checkpoint is not None:
        model = Path(config.checkpoint)
    elif config.model is not None:
        import zarr

        from geodl_hpc.archive.store import require_complete
        from geodl_hpc.models import build_model

        require_complete(Path(config.archive), "raster")

        layers = config.layers or tuple(
            str(n)
            for n in zarr.open_group(str(config.archive), mode="r").attrs.get("layers") or []  # type: ignore[union-attr]
            if n != config.label
        )
        m = config.model
        torch.manual_seed(config.seed)  # the same weights in every rank and run
        in_ch = len(layers) + int(bool(config.mask_channel))
        model = build_model(m.name, in_ch, width=m.width, depth=m.depth, per_pixel=True, dropout=m.dropout)
    else:
        raise ConfigError("checkpoint/model: give a checkpoint (a .pt file of a training run) or a model section")
    result = infer(Path(config.archive), model, out, config)
    files: dict[str, str] = {}
    if (result["complete"] and result["status"] != "noop") or (
        result["status"] == "noop" and not _exports_exist(out, config)
    ):
        if config.export_tif:
            files["tif"] = str(export_map_geotiff(out, out.with_suffix(".tif"), overwrite=True))
        if config.export_png:
            files["png"] = str(plot_map(out, out.with_suffix(".png")))
            attribution = plot_attribution(out, out.with_suffix(".attribution.png"))
            if attribution is not None:
                files["attribution_png"] = str(attribution)
        dump_config(config, out.with_name(out.stem + ".config.yaml"))
    return {**result, "files": files}


def with_step_rank(config: InferJobConfig, env: Mapping[str, str] | None = None) -> InferJobConfig:
    """``config`` with ``rank``/``n_ranks`` of this task when it runs in a Slurm step of several tasks.

    Only a config that does not split the work itself (``n_ranks == 1``) is changed."""
    env = os.environ if env is None else env
    tasks, rank = env.get("SLURM_STEP_NUM_TASKS", ""), env.get("SLURM_PROCID", "")
    if config.n_ranks != 1 or not (tasks.isdigit() and rank.isdigit()) or int(tasks) < 2:
        return config
    return config.replace(rank=int(rank), n_ranks=int(tasks))


def _exports_exist(out: Path, config: InferJobConfig) -> bool:
    return (not config.export_tif or out.with_suffix(".tif").exists()) and (
        not config.export_png or out.with_suffix(".png").exists()
    )
