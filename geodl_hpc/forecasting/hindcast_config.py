"""The hindcast job's config: catalog, region grid, rolling-origin period, models, tests and how items fan out.

Loaded with ``geodl_hpc.config.from_dict`` like every job config; see ``configs/hindcast_ridgecrest.yaml``
(real ComCat data) and ``configs/hindcast_etas.yaml`` (a SYNTHETIC ETAS catalog, for scale).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.launch.campaign import CampaignConfig

CONSISTENCY_TESTS = ("N", "L", "CL", "S", "M", "Brier")  # one forecast against the observed events
PAIRED_TESTS = ("T", "W")  # a model against the reference model, per window (not run for the reference itself)
TESTS = CONSISTENCY_TESTS + PAIRED_TESTS
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*")


@dataclasses.dataclass(frozen=True)
class EtasCatalogConfig:
    """Simulate a SYNTHETIC catalog from space-time ETAS with published parameters instead of reading one."""

    parameters: str = "california_mizrahi2021"  # a key of geodl_hpc.forecasting.etas.PARAMETER_SETS
    seed: int = 0
    burn_in_days: float = 3650.0


@dataclasses.dataclass(frozen=True)
class CatalogConfig:
    """Where the events come from: a catalog file, an ingested catalog archive, or an ETAS simulation."""

    path: str = ""  # catalog file (ComCat/CSEP/QuakeML/CSV) or an ingested archive (.parquet or Zarr folder)
    package: str = ""  # when set, ``path`` is inside this installed package (e.g. csep's shipped ComCat data)
    format: str = "auto"  # as `geodl ingest catalog --format`
    depth_unit: str = "auto"
    max_depth_km: float | None = None  # drop deeper events
    event_types: list[str] | None = None  # CSV only: keep rows whose ``event_type`` is one of these (no blasts)
    etas: EtasCatalogConfig | None = None

    def __post_init__(self) -> None:
        if not self.path and self.etas is None:
            raise ConfigError("catalog.path: give a catalog file or archive, or a catalog.etas section to simulate one")
        if self.path and self.etas is not None:
            raise ConfigError("catalog: give either path or etas, not both")
        if self.event_types is not None and not self.event_types:
            raise ConfigError("catalog.event_types: give at least one type (e.g. [earthquake]) or leave it out")


@dataclasses.dataclass(frozen=True)
class RegionConfig:
    """The space-magnitude grid: lon/lat cells of ``dh`` degrees over ``bbox``, magnitude bins from ``mc``."""

    bbox: list[float]  # lon_min, lat_min, lon_max, lat_max
    dh: float = 0.1
    mc: float = 2.5  # lowest magnitude edge: the completeness magnitude of the forecasts
    mag_max: float = 8.0  # highest lower edge (the last bin is open-ended)
    dm: float = 0.1

    def __post_init__(self) -> None:
        if len(self.bbox) != 4 or not (self.bbox[0] < self.bbox[2] and self.bbox[1] < self.bbox[3]):
            raise ConfigError(f"region.bbox: {self.bbox} is not [lon_min, lat_min, lon_max, lat_max]")
        if not self.mag_max >= self.mc:
            raise ConfigError(f"region.mag_max: {self.mag_max} is below region.mc={self.mc}")


@dataclasses.dataclass(frozen=True)
class PeriodConfig:
    """Rolling origin: windows of ``window_days`` from ``training_start``; those from ``test_start`` to
    ``test_end`` are tested. Models are refit every ``refit_every`` test windows on the windows before the
    refit origin only; one work item covers ``refits_per_item`` refits of one model."""

    training_start: str
    test_start: str
    test_end: str
    window_days: float = 1.0
    refit_every: int = 1
    refits_per_item: int = 1

    def __post_init__(self) -> None:
        for name in ("training_start", "test_start", "test_end"):
            try:
                np.datetime64(getattr(self, name), "ms")
            except ValueError:
                raise ConfigError(f"period.{name}: {getattr(self, name)!r} is not an ISO 8601 time") from None
        t0, t1, t2 = (np.datetime64(getattr(self, n), "ms") for n in ("training_start", "test_start", "test_end"))
        if not t0 < t1 < t2:
            raise ConfigError("period: need training_start < test_start < test_end (fit on the past, test after)")
        if not self.window_days > 0:
            raise ConfigError(f"period.window_days: must be positive, got {self.window_days}")
        for name in ("refit_every", "refits_per_item"):
            if getattr(self, name) < 1:
                raise ConfigError(f"period.{name}: must be at least 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One forecaster: ``name`` for ``build_forecaster``, a ``label`` naming its rows and files, its options."""

    name: str
    label: str = ""
    options: Any = None  # a mapping handed to build_forecaster(name, options)
    refit_every: int = 0  # test windows between refits of this model; 0: period.refit_every

    def __post_init__(self) -> None:
        if self.refit_every < 0:
            raise ConfigError(f"models.{self.key}.refit_every: must be 0 (period.refit_every) or positive")
        if self.options is not None and not isinstance(self.options, Mapping):
            raise ConfigError(f"models.{self.name}.options: expected a mapping of options, got {self.options!r}")
        if not _LABEL.fullmatch(self.key):
            raise ConfigError(f"models.label: {self.key!r} names files; use letters, digits, _ + - only")

    @property
    def key(self) -> str:
        return self.label or self.name

    def option_dict(self) -> dict[str, Any]:
        return dict(self.options or {})


@dataclasses.dataclass(frozen=True, kw_only=True)
class HindcastConfig:
    """A hindcast campaign: every model forecasts every test window, fit on the past only, and is tested."""

    job: Literal["hindcast"] = "hindcast"
    output: str = "runs/hindcast"
    overwrite: bool = False
    catalog: CatalogConfig
    region: RegionConfig
    period: PeriodConfig
    models: list[ModelConfig] = dataclasses.field(default_factory=lambda: [ModelConfig("uniform_poisson")])
    reference: str = ""  # label of the model information gains are measured against (default: the first)
    tests: list[str] = dataclasses.field(default_factory=lambda: list(TESTS))
    n_sim: int = 1000  # simulated catalogs of the L, CL, S, M tests and the Brier score
    seed: int = 0
    lookbacks: list[int] = dataclasses.field(default_factory=lambda: [1, 3, 12, 36])  # history features, in windows
    write_forecasts: bool = True  # forecasts/<model>.zarr: rates of every test window
    plots: bool = True
    campaign: CampaignConfig = dataclasses.field(default_factory=CampaignConfig)

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("models: give at least one model")
        keys = [m.key for m in self.models]
        dup = next((k for k in keys if keys.count(k) > 1), None)
        if dup is not None:
            raise ConfigError(f"models: label {dup!r} used twice; give each model its own label")
        if self.reference and self.reference not in keys:
            raise ConfigError(f"reference: {self.reference!r} is not a model label; known: {', '.join(keys)}")
        bad = [t for t in self.tests if t not in TESTS]
        if bad:
            raise ConfigError(f"tests: {bad[0]!r} is not one of {', '.join(TESTS)}")
        if self.n_sim < 1:
            raise ConfigError(f"n_sim: must be at least 1, got {self.n_sim}")

    def refit_every(self, model: ModelConfig) -> int:
        """Test windows between refits of ``model`` (its own cadence, else the period's)."""
        return model.refit_every or self.period.refit_every

    def block(self, model: ModelConfig) -> int:
        """Test windows per work item of ``model``: whole refit periods, so no refit is done twice."""
        return self.refit_every(model) * self.period.refits_per_item

    @property
    def reference_model(self) -> str:
        return self.reference or self.models[0].key
