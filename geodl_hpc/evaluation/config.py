"""Settings of the evaluation step: which archive and layers, the block-CV folds, and the baselines to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from geodl_hpc.errors import ConfigError

DEFAULT_LAYERS = ("greenstone", "dist_greenstone", "dist_fault", "fault_density")


@dataclass(frozen=True)
class EvaluationConfig:
    """The ``evaluate_baselines`` job: block CV of the pixel baselines on one raster archive.

    ``blocks`` is ``[rows, cols]`` of the block grid, dealt at random (``seed``) to ``folds`` folds; ``buffer``
    grows training positives by that many pixels; ``max_negatives`` caps the negative training pixels per fold
    (a seeded random subset; null keeps all).
    """

    job: Literal["evaluate_baselines"] = "evaluate_baselines"
    archive: str = "runs/demo/murchison.zarr"
    output: str = "runs/evaluate-baselines"
    folds: int = 5
    blocks: tuple[int, ...] = (5, 5)
    seed: int = 0
    label: str = "deposits"
    mask: str | None = "greenstone"
    layers: tuple[str, ...] = DEFAULT_LAYERS
    baselines: tuple[Literal["logistic", "gboost"], ...] = ("logistic", "gboost")
    buffer: int = 0
    max_negatives: int | None = None
    plots: bool = True

    def __post_init__(self) -> None:
        if len(self.blocks) != 2 or min(self.blocks) < 1:
            raise ConfigError(f"blocks: expected [rows, cols] of positive integers, got {list(self.blocks)}")
        if self.folds < 2 or self.folds > self.blocks[0] * self.blocks[1]:
            raise ConfigError(f"folds: must lie in 2..{self.blocks[0] * self.blocks[1]} (the block count)")
        if not self.layers:
            raise ConfigError("layers: name at least one evidence layer of the archive")
        if not self.baselines:
            raise ConfigError("baselines: name at least one of logistic, gboost")
        if self.buffer < 0:
            raise ConfigError(f"buffer: must be >= 0 pixels, got {self.buffer}")
        if self.max_negatives is not None and self.max_negatives < 1:
            raise ConfigError(f"max_negatives: must be positive or null, got {self.max_negatives}")
