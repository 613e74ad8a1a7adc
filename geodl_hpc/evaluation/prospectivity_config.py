"""Settings of the ``prospectivity`` main job: ingest -> block-CV CNN training and inference -> evaluation.

Sections reuse the existing configs: ``ingest`` is the ``ingest_murchison`` job's :class:`~geodl_hpc.config.JobConfig`,
``train`` is the training engine's :class:`~geodl_hpc.training.config.TrainConfig` (its ``data.n_samples`` is not
used: the chip counts come from ``sampling``), and ``infer`` holds the tiling fields of
:class:`~geodl_hpc.inference.config.InferJobConfig`. ``cv`` takes the block-CV fields of the baselines' job, so the
CNN and the baselines share one fold map.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from geodl_hpc.config import JobConfig, MurchisonConfig, StorageConfig
from geodl_hpc.errors import ConfigError
from geodl_hpc.evaluation.config import EvaluationConfig
from geodl_hpc.training.config import DataConfig, ModelConfig, TrainConfig


def _default_ingest() -> JobConfig:
    return JobConfig(output="runs/demo", storage=StorageConfig(chunk=256), murchison=MurchisonConfig(500.0))


def _default_train() -> TrainConfig:
    return TrainConfig(
        epochs=16,
        lr=2e-3,
        pos_weight=1.0,
        threads=1,  # tiny convs: one torch thread is as fast alone and far faster on a busy machine
        checkpoint_every_steps=100,
        keep_last=1,
        log_every=5,
        progress=False,
        model=ModelConfig(width=16, depth=4, per_pixel=False, dropout=0.1),
        data=DataConfig(chip=8, batch_size=32, mix_units=4, backend="local", num_workers=1, augment=("flip", "rot90")),
    )


@dataclass(frozen=True)
class CVSection:
    """Spatial block CV shared by the CNN and the baselines (same fields and meaning as ``evaluate_baselines``).

    ``repeat_seeds``: further fold assignments (block-to-fold deals) on which the CNN and the baselines are
    scored again, for a mean and spread of every metric; the headline figures stay those of ``seed``.
    """

    # Defaults are the baselines job's own, so the two cannot drift apart.
    folds: int = EvaluationConfig.folds
    blocks: tuple[int, ...] = EvaluationConfig.blocks
    seed: int = EvaluationConfig.seed
    label: str = EvaluationConfig.label
    mask: str | None = EvaluationConfig.mask
    layers: tuple[str, ...] = EvaluationConfig.layers
    baselines: tuple[Literal["logistic", "gboost"], ...] = EvaluationConfig.baselines
    baseline_buffer: int = EvaluationConfig.buffer
    baseline_max_negatives: int | None = EvaluationConfig.max_negatives
    repeat_seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.evaluation("unused", "unused")  # the baselines job's checks
        if self.seed in self.repeat_seeds or len(set(self.repeat_seeds)) != len(self.repeat_seeds):
            raise ConfigError(
                f"cv.repeat_seeds: {list(self.repeat_seeds)} must be distinct and differ from cv.seed ({self.seed})"
            )

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every fold assignment the run scores: ``seed`` (the headline) first, then ``repeat_seeds``."""
        return (self.seed, *self.repeat_seeds)

    def evaluation(self, archive: str, output: str) -> EvaluationConfig:
        """The equivalent ``evaluate_baselines`` config (validates blocks, folds, layers, baselines)."""
        try:
            return EvaluationConfig(
                archive=archive,
                output=output,
                folds=self.folds,
                blocks=self.blocks,
                seed=self.seed,
                label=self.label,
                mask=self.mask,
                layers=self.layers,
                baselines=self.baselines,
                buffer=self.baseline_buffer,
                max_negatives=self.baseline_max_negatives,
            )
        except ConfigError as exc:
            raise ConfigError(f"cv.{exc}") from None


@dataclass(frozen=True)
class SamplingSection:
    """Class-balanced training chips per fold, drawn only inside the fold's training blocks.

    ``n_pos`` chips each hold a training deposit; ``n_neg`` hold none and lie at least ``buffer`` pixels from
    every training deposit. ``likely_negative`` (positive-unlabelled learning) keeps negatives ``pu_distance``
    pixels away from deposits instead, so the unlabelled ground next to known deposits is never a negative.
    ``mask_negatives`` is the share of negatives drawn from chips at least half inside ``cv.mask`` (hard
    negatives: barren greenstone teaches the CNN what separates deposits from the rest of the greenstone,
    which random negatives, mostly outside it, do not).
    """

    n_pos: int = 384
    n_neg: int = 768
    buffer: int = 2
    likely_negative: bool = True  # chosen by nested block CV (benchmarks/results/prospectivity_tuning.md)
    pu_distance: int = 8
    mask_negatives: float = 0.0

    def __post_init__(self) -> None:
        if self.n_pos < 1 or self.n_neg < 1:
            raise ConfigError(f"sampling.n_pos/n_neg: must be at least 1, got {self.n_pos}/{self.n_neg}")
        if self.buffer < 0 or self.pu_distance < 0:
            raise ConfigError("sampling.buffer/pu_distance: must be >= 0 pixels")
        if not 0.0 <= self.mask_negatives <= 1.0:
            raise ConfigError(f"sampling.mask_negatives: must lie in [0, 1], got {self.mask_negatives}")


@dataclass(frozen=True)
class SelectionSection:
    """Where the CNN settings of this config came from, reported in ``metrics.json`` and ``report.md``.

    ``method: nested`` names the record of a nested block-CV search (``benchmarks/prospectivity_tuning.py``)
    in ``record``; the run copies its outer-fold summary and says whether this config holds the settings that
    search finally chose. ``fixed``: hand-set values (the run says so, and that its CNN figures are then an
    optimistic estimate when the values were tuned on the same folds).
    """

    method: Literal["nested", "fixed"] = "nested"
    record: str | None = "benchmarks/results/prospectivity_tuning.json"

    def __post_init__(self) -> None:
        if self.method == "nested" and not self.record:
            raise ConfigError("selection.record: method nested needs the path of the search record (a JSON file)")


@dataclass(frozen=True)
class InferSection:
    """Tiled inference of each fold's model over the whole area (fields as in ``InferJobConfig``)."""

    tile: int = 256
    stitch: Literal["crop", "blend"] = "crop"
    overlap: int = 0
    batch_size: int = 8
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    mc_samples: int = 8
    attribution: Literal["none", "occlusion"] = "none"

    def __post_init__(self) -> None:
        from geodl_hpc.inference.config import InferJobConfig

        try:
            InferJobConfig(**dataclasses.asdict(self))
        except ConfigError as exc:
            raise ConfigError(f"infer.{exc}") from None


@dataclass(frozen=True)
class ProspectivityConfig:
    """The ``prospectivity`` job: the whole prospectivity mapping run into ``output``.

    ``final`` picks what ``map.zarr`` holds: ``"oof"`` the out-of-fold CNN map (every pixel predicted by the
    model that did not see its block; the map that is scored), ``"all"`` the map of one more model trained on
    the chips of every block (the deployment map; not scored, the metrics stay out-of-fold).

    With ``train.model.per_pixel: false`` the loss is per chip (does the chip hold a deposit?) on ``chip_pool``
    of the per-pixel logits: ``max`` (multiple-instance learning: a chip is positive when some pixel is, so the
    per-pixel map stays sharp) or ``mean`` (every pixel of a positive chip is pushed up: a smoother map).

    ``ensemble``: each fold model is the mean probability of this many CNNs trained with seeds ``train.seed``,
    ``train.seed + 1``, ... (same chips; different initial weights and batch order).
    """

    job: Literal["prospectivity"] = "prospectivity"
    output: str = "runs/prospectivity-murchison"
    final: Literal["oof", "all"] = "oof"
    chip_pool: Literal["mean", "max"] = "mean"
    plots: bool = True
    ingest: JobConfig = field(default_factory=_default_ingest)
    cv: CVSection = field(default_factory=CVSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    train: TrainConfig = field(default_factory=_default_train)
    infer: InferSection = field(default_factory=InferSection)
    ensemble: int = 1
    selection: SelectionSection = field(default_factory=SelectionSection)

    def __post_init__(self) -> None:
        if self.ensemble < 1:
            raise ConfigError(f"ensemble: number of training seeds per fold model, at least 1; got {self.ensemble}")
        if self.train.data.label != self.cv.label:
            raise ConfigError(f"train.data.label: {self.train.data.label!r} must equal cv.label {self.cv.label!r}")
        if self.infer.mc_samples and self.train.model.dropout <= 0:
            raise ConfigError("infer.mc_samples: MC dropout needs train.model.dropout > 0")
