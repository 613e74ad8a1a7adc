"""Hindcast forecast blocks: the work items (model, block of test windows) and the rates of a block, refit at
each refit origin on the windows before it only.

No look-ahead by construction: a block hands its forecasters the counts, features and events up to the end of
the block and no further (``tests/forecasting/test_hindcast.py`` changes the future and compares)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.binning import event_times_ms
from geodl_hpc.forecasting.etas import PARAMETER_SETS, ETASParams
from geodl_hpc.forecasting.forecasters import build_forecaster
from geodl_hpc.forecasting.hindcast_config import HindcastConfig, ModelConfig

if TYPE_CHECKING:
    from geodl_hpc.forecasting.hindcast_inputs import Inputs


@dataclasses.dataclass(frozen=True)
class HindcastItem:
    """One work item: model ``model`` over test windows ``first .. stop - 1`` (indices into every window)."""

    model: str
    first: int
    stop: int

    @property
    def key(self) -> str:
        return f"{self.model}-w{self.first:06d}-{self.stop:06d}"


def work_items(config: HindcastConfig, n_windows: int, first_test: int) -> list[HindcastItem]:
    """Every (model, block) item; blocks start at refit origins so no refit is ever done twice."""
    return [
        HindcastItem(m.key, start, min(start + config.block(m), n_windows))
        for m in config.models
        for start in range(first_test, n_windows, config.block(m))
    ]


def forecaster_options(model: ModelConfig, inputs: Inputs, run: Path, stop: int) -> dict[str, Any]:
    """``build_forecaster`` options: the model's own plus the grid, and what the kind needs (ETAS parameters
    and the events before window ``stop - 1`` starts, the RNN's checkpoint folder)."""
    options: dict[str, Any] = {**model.option_dict(), "grid": inputs.grid}
    if model.name == "etas":
        params = options.get("params", "california_mizrahi2021")
        if isinstance(params, str):
            if params not in PARAMETER_SETS:
                raise ConfigError(
                    f"models.{model.key}.options.params: {params!r} is not one of {sorted(PARAMETER_SETS)}"
                )
            options["params"] = PARAMETER_SETS[params]
        elif isinstance(params, dict):
            options["params"] = ETASParams(**params)
        last_start = inputs.edges[stop - 1]
        options["table"] = inputs.events[event_times_ms(inputs.events) < last_start].reset_index(drop=True)
        options["edges"] = inputs.edges[: stop + 1]
    if model.name == "rnn":
        options.setdefault("output", str(run / "models" / model.key))
        options.setdefault("threads", 1)
    return options


def forecast_block(model: ModelConfig, inputs: Inputs, item: HindcastItem, refit_every: int, run: Path) -> np.ndarray:
    """Rates (stop - first, C, M) of ``item``'s windows: refit at each origin on windows before it only.

    The forecaster sees counts and features of windows ``< item.stop`` only (never the future of the block)."""
    return forecast_windows(model, inputs, item.first, item.stop, refit_every, run)


def forecast_windows(
    model: ModelConfig, inputs: Inputs, first: int, stop: int, refit_every: int, run: Path, output: str = ""
) -> np.ndarray:
    """Rates (stop - first, C, M) of windows ``first .. stop - 1`` with ``model``'s refit origins (every
    ``refit_every`` test windows from the first test window), seeing windows ``< stop`` only; ``output``
    overrides the RNN's checkpoint folder (the reference recomputed inside another model's item)."""
    counts = inputs.counts[:stop]
    features = inputs.features[:stop] if model.name == "rnn" else np.zeros((stop, 1, 1), np.float32)
    out = np.empty((stop - first, inputs.grid.n_cells, inputs.grid.n_mags), dtype=np.float64)
    origin = inputs.first_test + ((first - inputs.first_test) // refit_every) * refit_every
    while origin < stop:
        options = forecaster_options(model, inputs, run, stop)
        if output and model.name == "rnn":
            options["output"] = output
        forecaster = build_forecaster(model.name, options)
        forecaster.fit(counts, features, origin)
        for w in range(max(origin, first), min(origin + refit_every, stop)):
            out[w - first] = forecaster.rates(w)
        origin += refit_every
    return out


def reference_rates(config: HindcastConfig, inputs: Inputs, item: HindcastItem, run: Path) -> np.ndarray:
    """The reference model's rates of ``item``'s windows, recomputed here with the reference's own refit origins
    and the same view of the data (windows ``< item.stop``), so the item needs no other item's output.

    Recomputing, rather than reading ``forecasts/REFERENCE.zarr``, keeps every item independent of the order
    items run in (Ray tasks and array tasks run concurrently) and of ``write_forecasts``; the reference is
    usually the cheapest model. An RNN reference gets its own checkpoint folder per item."""
    model = next(m for m in config.models if m.key == config.reference_model)
    output = str(run / "models" / model.key / f"for-{item.key}")
    return forecast_windows(model, inputs, item.first, item.stop, config.refit_every(model), run, output)
