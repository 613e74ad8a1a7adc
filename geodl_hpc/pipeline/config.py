"""Pipeline settings and errors: one frozen config drives both the local and the Ray backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from geodl_hpc.errors import GeodlError

RASTER_AUGMENTS = ("flip", "rot90")
WAVEFORM_AUGMENTS = ("shift", "noise", "dropout", "gain")


class PipelineError(GeodlError):
    """The pipeline cannot serve these samples from this archive (names the layer, chunk or sample at fault)."""


@dataclass(frozen=True)
class PipelineConfig:
    """How samples are read, cut, normalised, augmented and batched.

    ``chip`` is the chip side in pixels (rasters) or the window length in samples (waveforms). ``nodata="skip"``
    expects samples planned on valid data only (see ``valid_mask``) and fails on a chip with nodata;
    ``"fill"`` sets nodata to 0 after normalisation and appends a mask channel (1 = valid).
    ``memory_budget_mb`` bounds decoded groups in flight (decoded bytes from chunk shape x dtype x layers).
    Waveform windows of an archive with picks also carry ``y (B, 3, T)``: noise/P/S pick probabilities (Gaussian
    of ``pick_sigma`` samples at each pick, after the ``shift`` augmentation, so ``y`` stays aligned with ``x``).
    """

    archive: Path
    chip: int = 64
    layers: tuple[str, ...] | None = None
    label: str | None = None
    batch_size: int = 32
    unit_chunks: int = 1
    mix_units: int = 4
    seed: int = 0
    normalise: bool = True
    augment: tuple[str, ...] = ()
    nodata: Literal["skip", "fill"] = "skip"
    memory_budget_mb: float = 1024.0
    prefetch_batches: int = 2
    drop_last: bool = False
    backend: Literal["ray", "local"] = "ray"
    num_workers: int = 2
    # Ray task granularity: "group" (one task decodes a whole mixing group) or "unit" (one task per read unit,
    # the driver scatters a group's units into its batch).
    ray_task: Literal["group", "unit"] = "group"
    # Waveform augmentation strengths.
    shift_max: int = 0
    noise_std: float = 0.05
    dropout_p: float = 0.2
    gain_range: tuple[float, float] = field(default=(0.5, 2.0))
    # Waveform pick targets ``y (B, 3, T)`` (noise, P, S) from the archive's picks: Gaussian sigma in samples.
    pick_sigma: float = 10.0

    def __post_init__(self) -> None:
        for name in ("chip", "batch_size", "unit_chunks", "mix_units", "num_workers"):
            if int(getattr(self, name)) < 1:
                raise PipelineError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.nodata not in ("skip", "fill"):
            raise PipelineError(f"nodata: {self.nodata!r} is not one of 'skip', 'fill'")
        if self.ray_task not in ("group", "unit"):
            raise PipelineError(f"ray_task: {self.ray_task!r} is not one of 'group', 'unit'")
        if self.backend not in ("ray", "local"):
            raise PipelineError(f"backend: {self.backend!r} is not one of 'ray', 'local'")
        unknown = [a for a in self.augment if a not in RASTER_AUGMENTS + WAVEFORM_AUGMENTS]
        if unknown:
            raise PipelineError(
                f"augment: unknown {unknown}; rasters take {RASTER_AUGMENTS}, waveforms {WAVEFORM_AUGMENTS}"
            )
        if self.pick_sigma <= 0:
            raise PipelineError(f"pick_sigma: must be positive (samples), got {self.pick_sigma}")
        if self.memory_budget_mb <= 0:
            raise PipelineError(f"memory_budget_mb: must be positive, got {self.memory_budget_mb}")
