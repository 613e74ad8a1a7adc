"""Settings of continuous annotation: one frozen ``AnnotateJobConfig`` drives local, Ray and Slurm-array runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geodl_hpc.errors import ConfigError

# Settings that may differ between runs (and ranks) writing the same annotation without changing one value.
RUN_ONLY = ("job", "output", "batch_size", "executor", "rank", "n_ranks", "workers", "threads", "progress",
            "overwrite", "picks_format", "quakeml", "evaluate", "tolerance_s", "validation", "rjob")  # fmt: skip


@dataclass(frozen=True)
class PhaseThresholds:
    """Pick thresholds per phase (``threshold.P=0.5`` on the command line)."""

    P: float = 0.3
    S: float = 0.3

    def __post_init__(self) -> None:
        for name in ("P", "S"):
            value = float(getattr(self, name))
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"threshold.{name}: must be a probability in (0, 1], got {value}")


@dataclass(frozen=True)
class AnnotateJobConfig:
    """The ``annotate`` job: slide a picker over every station of a waveform archive and extract picks.

    ``stride`` (samples; default half the model's window) sets the overlap of windows, ``stacking`` how
    overlapping window outputs combine. Work items are station x ``block_chunks`` archive time chunks; each of
    ``n_ranks`` processes (ranks or Slurm array tasks, or Ray tasks with ``executor="ray"``) takes every
    ``n_ranks``-th missing block. A pick is a sample whose probability reaches its ``threshold`` and is the
    largest within ``min_separation_s`` on either side.

    Evaluation (``evaluate``, when the archive has pick labels): picks within ``tolerance_s`` of a label match;
    thresholds and an STA/LTA baseline are tuned on the archive's ``split == "validation"`` stations (or on the
    ``validation`` archive) and scored on its ``split == "test"`` stations (all stations without a split).
    ``rjob`` also annotates ObsPy's real RJOB event and reports ObsPy's AR picker beside it.
    """

    job: Literal["annotate"] = "annotate"
    archive: str = "runs/waves.zarr"
    model: str = "runs/picker"
    output: str | None = None  # None: ARCHIVE_NAME.annotations.zarr beside the archive
    stride: int | None = None
    stacking: Literal["mean", "max"] = "mean"
    threshold: PhaseThresholds = dataclasses.field(default_factory=PhaseThresholds)
    phases: tuple[str, ...] = ("P", "S")
    min_separation_s: float = 0.5
    block_chunks: int = 1
    batch_size: int = 64
    executor: Literal["local", "ray"] = "local"
    workers: int = 0
    rank: int = 0
    n_ranks: int = 1
    threads: int = 0
    codec: Literal["zstd", "blosc", "gzip", "none"] = "zstd"
    picks_format: Literal["csv", "parquet"] = "csv"
    quakeml: bool = True
    evaluate: bool = True
    tolerance_s: float = 0.5
    validation: str | None = None
    rjob: bool = False
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not self.output:  # resolved once, so every rank, array task and launcher sees the same path
            object.__setattr__(self, "output", str(self._default_output()))
        if self.stride is not None and self.stride < 1:
            raise ConfigError(f"stride: must be at least 1 sample, got {self.stride}; leave it unset for window/2")
        for name in ("block_chunks", "batch_size", "n_ranks"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.workers < 0 or self.threads < 0:
            raise ConfigError("workers/threads: must be >= 0 (0 = one per CPU / torch's default)")
        if not 0 <= self.rank < self.n_ranks:
            raise ConfigError(f"rank: need 0 <= rank < n_ranks ({self.n_ranks}), got {self.rank}")
        if self.executor == "ray" and self.n_ranks > 1:
            raise ConfigError("executor: ray runs every block itself; use executor=local with rank/n_ranks for arrays")
        unknown = [p for p in self.phases if p not in ("P", "S")]
        if unknown or not self.phases:
            raise ConfigError(f"phases: pick P and/or S, got {list(self.phases)}")
        if self.tolerance_s <= 0:
            raise ConfigError(f"tolerance_s: must be positive seconds, got {self.tolerance_s}")
        if self.min_separation_s < 0:
            raise ConfigError(f"min_separation_s: must be >= 0 seconds, got {self.min_separation_s}")

    def _default_output(self) -> Path:
        archive = Path(self.archive)
        return archive.with_name(f"{archive.name.removesuffix('.zarr')}.annotations.zarr")

    def output_path(self) -> Path:
        """``output`` (default ``ARCHIVE_NAME.annotations.zarr`` next to the archive)."""
        return Path(self.output or self._default_output())

    def rank_configs(self) -> list[AnnotateJobConfig]:
        """One config per rank ``0 .. n_ranks - 1``: the work items of a Slurm array (or of local processes)."""
        return [dataclasses.replace(self, rank=r) for r in range(self.n_ranks)]

    def run_folder(self) -> Path:
        """Where a launcher keeps logs and status for this output (beside it, never inside the Zarr store)."""
        out = self.output_path()
        return out.with_name(f"{out.name.removesuffix('.zarr')}.run")

    def threshold_of(self, phase: str) -> float:
        """The pick threshold of ``phase``."""
        return float(getattr(self.threshold, phase))

    def settings(self) -> dict[str, Any]:
        """The settings that decide the output's values (what a resumed or concurrent run must agree on)."""
        from geodl_hpc.config import to_dict

        data = to_dict(self)
        for key in RUN_ONLY:
            data.pop(key, None)
        return data

    def replace(self, **changes: Any) -> AnnotateJobConfig:
        return dataclasses.replace(self, **changes)
