"""Settings of tiled inference: one frozen ``InferJobConfig`` drives local runs, ranks and array tasks alike."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from geodl_hpc.archive.store import CodecSpec
from geodl_hpc.errors import ConfigError
from geodl_hpc.training.config import ModelConfig

# Settings that may differ between runs (and ranks) writing the same map without changing a single pixel.
RUN_ONLY = ("job", "output", "batch_size", "device", "rank", "n_ranks", "threads", "progress", "export_tif",
            "export_png", "overwrite", "executor", "ray_tasks")  # fmt: skip


@dataclass(frozen=True)
class InferJobConfig:
    """The ``infer`` job: which archive and model, where the map goes, and how tiles are cut and stitched.

    Give ``checkpoint`` (a training checkpoint; model and layers come from it) or a ``model`` section (fresh
    weights from ``seed``: demos and benchmarks). ``halo`` defaults to the model's receptive-field margin.
    ``stitch="crop"`` is exact when the receptive field fits the halo; ``"blend"`` fades ``overlap`` pixels
    with cosine weights. Each of ``n_ranks`` processes (ranks, Ray tasks, Slurm array tasks) runs with its own
    ``rank`` and writes whole chunks of its regions; the last to finish marks the map complete.

    ``attribution="occlusion"`` adds one ``attribution_<layer>`` band per input layer: the probability minus the
    probability with that layer set to 0 after normalisation (its archive mean), so positive values mark pixels
    where the layer raises the prediction. It is per output pixel with the model's receptive field, so it stitches
    exactly like the probability (no seams); it costs one extra forward per layer.
    ``executor="ray"`` runs this rank's regions as ``ray_tasks`` Ray tasks (0: one per CPU of the Ray cluster);
    each task reads, predicts, writes and records its own regions, the driver only schedules and finalises.
    """

    job: Literal["infer"] = "infer"
    archive: str = "runs/demo/murchison.zarr"
    output: str = "runs/infer/map.zarr"
    checkpoint: str | None = None
    model: ModelConfig | None = None
    layers: tuple[str, ...] | None = None
    label: str = "deposits"
    mask_channel: bool | None = None
    tile: int = 256
    halo: int | None = None
    overlap: int = 0
    stitch: Literal["crop", "blend"] = "crop"
    edge: Literal["reflect", "zero"] = "reflect"
    chunk: int | None = None
    region_chunks: int = 2
    batch_size: int = 8
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    amp: Literal["none", "bf16", "fp16"] = "none"
    mc_samples: int = 0
    attribution: Literal["none", "occlusion"] = "none"
    seed: int = 0
    codec: Literal["zstd", "blosc", "gzip", "none"] = "zstd"
    rank: int = 0
    n_ranks: int = 1
    threads: int = 0
    executor: Literal["local", "ray"] = "local"
    ray_tasks: int = 0
    progress: bool = True
    export_tif: bool = True
    export_png: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.checkpoint is not None and self.model is not None:
            raise ConfigError("checkpoint/model: give one of them (a training checkpoint, or a model section)")
        if self.tile < 1:
            raise ConfigError(f"tile: must be at least 1 pixel, got {self.tile}")
        if self.halo is not None and self.halo < 0:
            raise ConfigError(f"halo: must be >= 0 pixels, got {self.halo}; leave it unset for the model's margin")
        if not 0 <= self.overlap < self.tile:
            raise ConfigError(f"overlap: must be >= 0 and smaller than tile ({self.tile}), got {self.overlap}")
        if self.stitch == "blend" and self.overlap == 0:
            raise ConfigError("overlap: stitch=blend needs overlap > 0 pixels (e.g. tile // 8)")
        if self.chunk is not None and self.chunk < 1:
            raise ConfigError(f"chunk: must be a positive number of pixels, got {self.chunk}")
        for name in ("region_chunks", "batch_size", "n_ranks"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.rank < self.n_ranks:
            raise ConfigError(f"rank: need 0 <= rank < n_ranks ({self.n_ranks}), got {self.rank}")
        if self.ray_tasks < 0:
            raise ConfigError(
                f"ray_tasks: 0 (one per CPU of the Ray cluster) or a positive count, got {self.ray_tasks}"
            )
        if self.mc_samples < 0 or self.mc_samples == 1:
            raise ConfigError(f"mc_samples: 0 (off) or at least 2 MC-dropout passes, got {self.mc_samples}")

    def map_settings(self) -> dict[str, Any]:
        """The settings that decide the map's pixels (what a resumed or concurrent run must agree on)."""
        from geodl_hpc.config import to_dict

        data = to_dict(self)
        for key in RUN_ONLY:
            data.pop(key, None)
        return data

    def run_folder(self) -> str:
        """Where a cluster submission keeps its logs and status: the folder holding the map (never the map itself,
        which must stay a pure Zarr store)."""
        from pathlib import Path

        return str(Path(self.output).parent)

    def codec_spec(self) -> CodecSpec:
        return CodecSpec(self.codec)

    def replace(self, **changes: Any) -> InferJobConfig:
        return dataclasses.replace(self, **changes)
