"""Hindcast forecast stores: one Zarr per model, ``forecasts/MODEL.zarr``, holding the rates of every test window
(chunked by work item, so concurrent items never share a chunk), read back for the whole-period tests, the
plots and export as standalone CSEP forecasts. zarr is imported where it is used."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.store import checked_compressors
from geodl_hpc.evaluation.csep.forecast import GriddedForecast, write_forecast_zarr

if TYPE_CHECKING:
    from geodl_hpc.forecasting.hindcast_blocks import HindcastItem
    from geodl_hpc.forecasting.hindcast_config import HindcastConfig, ModelConfig
    from geodl_hpc.forecasting.hindcast_inputs import Inputs

FORECASTS_KIND = "hindcast_forecasts"


def forecasts_path(run: Path, model: str) -> Path:
    """Where ``model``'s forecast Zarr of run folder ``run`` lives."""
    return Path(run) / "forecasts" / f"{model}.zarr"


def create_forecast_stores(run: Path, config: HindcastConfig, inputs: Inputs) -> None:
    """One Zarr per model: ``rates`` (test windows, cells, mags) chunked by item block, so items never share a
    chunk; window edges, cell origins and magnitude edges beside it. Created once (built, then renamed)."""
    for model in config.models:
        path = forecasts_path(run, model.key)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.init-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        _build_forecast_store(tmp, model, config.block(model), inputs)
        try:
            os.rename(tmp, path)  # another process may have created it first: theirs is as good
        except OSError:
            if not path.exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _build_forecast_store(path: Path, model: ModelConfig, block: int, inputs: Inputs) -> None:
    """The empty forecast Zarr of ``model`` (rates all NaN) with its coordinates and attributes, at ``path``."""
    import zarr

    n_test = len(inputs.edges) - 1 - inputs.first_test
    grid = inputs.grid
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    shape = (n_test, grid.n_cells, grid.n_mags)
    chunks = (block, grid.n_cells, grid.n_mags)
    group.create_array(
        "rates", shape=shape, chunks=chunks, dtype="float64", fill_value=np.nan, compressors=checked_compressors()
    )
    starts = inputs.edges[inputs.first_test : -1].astype(np.int64)
    ends = inputs.edges[inputs.first_test + 1 :].astype(np.int64)
    for name, values in (
        ("window_start_ms", starts),
        ("window_end_ms", ends),
        ("origins", grid.origins),
        ("mag_edges", np.asarray(grid.mag_edges)),
    ):
        array = group.create_array(
            name, shape=values.shape, dtype=values.dtype, chunks=values.shape, compressors=checked_compressors()
        )
        array[...] = values
    group.attrs.update(
        {
            "geodl_kind": FORECASTS_KIND,
            "model": model.key,
            "forecaster": model.name,
            "dh": grid.dh,
            "grid": grid.to_dict(),
            "first_test_window": inputs.first_test,
            "units": "expected number of events per cell and magnitude bin in the window",
        }
    )


def write_forecast_slice(run: Path, item: HindcastItem, rates: np.ndarray, first_test: int) -> None:
    """Write ``item``'s windows into its own chunk(s) of the model's forecast Zarr (rewriting is harmless)."""
    import zarr

    array = zarr.open_array(str(forecasts_path(run, item.model) / "rates"), mode="r+")
    array[item.first - first_test : item.stop - first_test] = rates


def read_forecast_rates(run: Path, model: str) -> np.ndarray:
    """Every test window's rates (W_test, C, M) of ``model``."""
    import zarr

    return np.asarray(zarr.open_array(str(forecasts_path(run, model) / "rates"), mode="r")[...])


def window_forecast(run: Path, model: str, index: int) -> GriddedForecast:
    """Test window ``index`` of ``model`` as a ``GriddedForecast`` (for ``evaluation.csep`` and its plots)."""
    import zarr

    group: Any = zarr.open_group(str(forecasts_path(run, model)), mode="r")
    starts = np.asarray(group["window_start_ms"][...]).astype("datetime64[ms]")
    ends = np.asarray(group["window_end_ms"][...]).astype("datetime64[ms]")
    return GriddedForecast(
        rates=np.asarray(group["rates"][index]),
        origins=np.asarray(group["origins"][...]),
        dh=float(group.attrs["dh"]),
        mag_edges=np.asarray(group["mag_edges"][...]),
        start=starts[index],
        end=ends[index],
        name=f"{model} window {index}",
    )


def export_window_forecast(run: Path, model: str, index: int, out: Path, *, overwrite: bool = False) -> Path:
    """Write test window ``index`` of ``model`` as a standalone forecast archive (``evaluation.csep`` format), e.g.
    for ``geodl evaluate csep --forecast OUT --catalog ...``."""
    return write_forecast_zarr(window_forecast(run, model, index), Path(out), overwrite=overwrite)
