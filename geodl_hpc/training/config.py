"""Training settings: one frozen ``TrainConfig`` drives every backend, device and precision."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geodl_hpc.archive.synthetic_seismic import SyntheticSeismicConfig
from geodl_hpc.config import to_dict
from geodl_hpc.errors import ConfigError

# Settings that may change between a checkpoint and its resume without changing the trajectory.
RESUME_SAFE = ("epochs", "log_every", "progress", "keep_last", "checkpoint_every_steps", "timeout_s", "plot")


@dataclass(frozen=True)
class ModelConfig:
    """Which model (``geodl_hpc.models.build_model``) and its options.

    ``prospectivity_cnn`` (rasters) uses width, depth, per_pixel, dropout; the phase pickers ``phasenet`` and
    ``spectrogram_cnn`` (waveforms) use width, depth, kernel, dropout (and n_fft, hop for the spectrogram).
    """

    name: Literal["prospectivity_cnn", "phasenet", "spectrogram_cnn"] = "prospectivity_cnn"
    width: int = 16
    depth: int = 3
    per_pixel: bool = True
    dropout: float = 0.0
    kernel: int = 7
    n_fft: int = 64
    hop: int = 4


@dataclass(frozen=True)
class DataConfig:
    """What the pipeline serves: chip side, layers, label, batch size, sample count and the local/Ray backend.

    Waveform archives: ``chip`` is the window length in samples; ``n_samples`` windows, ``noise_fraction`` of them
    pick-free noise windows and the rest around picks (``pick_jitter`` samples of random offset, default 0.4 x
    window); ``split`` keeps only stations whose ``split`` variable matches (synthetic-on-real archives) and
    ``eval_split`` is measured after training (``validation.json``). ``pick_sigma`` (samples) shapes the targets;
    ``shift_max``, ``noise_std``, ``dropout_p`` and ``gain_range`` set the waveform augmentations' strengths.
    """

    chip: int = 16
    layers: tuple[str, ...] | None = None
    label: str = "deposits"
    batch_size: int = 16
    n_samples: int = 256
    mix_units: int = 2
    unit_chunks: int = 1
    backend: Literal["ray", "local"] = "local"
    num_workers: int = 2
    augment: tuple[str, ...] = ()
    pick_sigma: float = 10.0
    noise_fraction: float = 0.3
    pick_jitter: int | None = None
    split: str | None = None
    eval_split: str | None = None
    shift_max: int = 0
    noise_std: float = 0.05
    dropout_p: float = 0.2
    gain_range: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise_fraction < 1.0:
            raise ConfigError(f"train.data.noise_fraction: must be in [0, 1), got {self.noise_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: backend, device, precision, schedule, checkpoints, logging and the model.

    ``lr`` is the single-process rate; with ``scale_lr_by_world_size`` it rises linearly to ``lr x ranks`` over
    ``lr_warmup_steps`` (Goyal et al.'s large-batch recipe). ``compression="fp16"`` halves Horovod's traffic.
    """

    backend: Literal["none", "horovod", "torch"] = "none"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    amp: Literal["none", "bf16", "fp16"] = "none"
    compression: Literal["none", "fp16"] = "none"
    epochs: int = 2
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_warmup_steps: int = 0
    scale_lr_by_world_size: bool = True
    pos_weight: float = 1.0
    checkpoint_every_steps: int = 50
    keep_last: int = 3
    seed: int = 0
    deterministic: bool = True
    threads: int = 0
    log_every: int = 10
    progress: bool = True
    plot: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        for name in ("epochs", "checkpoint_every_steps", "keep_last", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name}: must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr: must be positive, got {self.lr}")
        if self.lr_warmup_steps < 0:
            raise ConfigError(f"train.lr_warmup_steps: must be >= 0, got {self.lr_warmup_steps}")

    def fingerprint(self) -> dict[str, Any]:
        """The settings a checkpoint must match to resume (everything but :data:`RESUME_SAFE`)."""
        data = to_dict(self)
        for key in RESUME_SAFE:
            data.pop(key, None)
        return data

    def config_hash(self) -> str:
        """Short sha256 of :meth:`fingerprint`."""
        text = json.dumps(self.fingerprint(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainJobConfig:
    """The ``train`` job: which archive, where outputs go, and the training section.

    ``synthetic`` (waveform pickers): build a synthetic-on-real archive at ``archive`` first when it is missing
    (see ``geodl_hpc.archive.synthetic_seismic``).
    """

    job: Literal["train"] = "train"
    archive: str = "runs/demo/murchison.zarr"
    output: str = "runs/train"
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    synthetic: SyntheticSeismicConfig | None = None


def raster_pipeline_config(archive: Path, train: TrainConfig, layers: tuple[str, ...] | None, label: str) -> Any:
    """The chip pipeline settings of ``train`` on raster ``archive``, serving ``layers`` (None: all) and ``label``."""
    from geodl_hpc.pipeline import PipelineConfig

    data = train.data
    return PipelineConfig(
        Path(archive),
        chip=data.chip,
        layers=layers,
        label=label,
        batch_size=data.batch_size,
        unit_chunks=data.unit_chunks,
        mix_units=data.mix_units,
        seed=train.seed,
        augment=data.augment,
        backend=data.backend,
        num_workers=data.num_workers,
    )
