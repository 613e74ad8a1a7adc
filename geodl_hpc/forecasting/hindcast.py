"""Hindcast campaigns: rolling-origin forecasts of every model for every test window, tested window by window.

Windows of ``period.window_days`` run from ``training_start``; the test windows start at ``test_start``. A model
is refit every ``refit_every`` test windows at a refit origin ``o`` on windows ``< o`` only, then forecasts
windows ``o .. o + refit_every - 1`` from history before each of them. No look-ahead by construction: a work
item hands its forecasters the counts, features and events up to the end of its own block and no further, and
feature row ``w`` is built from windows ``< w``. ``tests/forecasting/test_hindcast.py`` checks it by changing
the future and comparing.

Work items are (model, block of ``refit_every * refits_per_item`` test windows); each fits its refits, writes
its slice of ``forecasts/MODEL.zarr`` and returns one row per window and test (observed statistic, quantiles,
pass/fail, events, expected events, log-likelihood): N, L, CL, S, M and Brier for every model, paired T and W
against the reference model (whose rates the item recomputes, see
:func:`~geodl_hpc.forecasting.hindcast_blocks.reference_rates`) for the others.
:mod:`geodl_hpc.launch.campaign` runs them (in-process, Ray, Slurm array), resumes a killed run and concatenates
the pieces; the information gain against the reference model is added to the final table, then the whole-period
tests, Molchan area skill scores, plots and ``report.md`` are written.

This module is the driver; each step is its own module, in the order a run takes them:
:mod:`~geodl_hpc.forecasting.hindcast_config` (the YAML), :mod:`~geodl_hpc.forecasting.hindcast_inputs`
(catalog, windows, counts, features), :mod:`~geodl_hpc.forecasting.hindcast_blocks` (work items, rates of a
block), :mod:`~geodl_hpc.forecasting.hindcast_scoring` (CSEP rows of a block, information gain),
:mod:`~geodl_hpc.forecasting.hindcast_stores` (forecast Zarrs), :mod:`~geodl_hpc.forecasting.hindcast_summary`
(whole-period tests, per-model summary), :mod:`~geodl_hpc.forecasting.hindcast_plots` (figures) and
:mod:`~geodl_hpc.forecasting.hindcast_report` (``report.md``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.config import dump_config, to_dict
from geodl_hpc.errors import ConfigError
from geodl_hpc.forecasting.forecasters import FORECASTERS, build_forecaster
from geodl_hpc.forecasting.hindcast_blocks import (
    HindcastItem,
    forecast_block,
    forecaster_options,
    reference_rates,
    work_items,
)
from geodl_hpc.forecasting.hindcast_config import PAIRED_TESTS, HindcastConfig
from geodl_hpc.forecasting.hindcast_inputs import ETAS_CATALOG, Inputs, load_inputs, prepare_inputs, store_inputs
from geodl_hpc.forecasting.hindcast_plots import write_plots
from geodl_hpc.forecasting.hindcast_report import render_report
from geodl_hpc.forecasting.hindcast_scoring import AddInformationGain, evaluate_block, item_seeds
from geodl_hpc.forecasting.hindcast_stores import create_forecast_stores, write_forecast_slice
from geodl_hpc.forecasting.hindcast_summary import add_whole_period, summarise
from geodl_hpc.launch.campaign import SETTINGS_FILE, Campaign, CampaignResult, run_campaign
from geodl_hpc.osutil import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd


def run_hindcast(config: HindcastConfig) -> dict[str, Any]:
    """Prepare inputs, run (or resume) the campaign, write plots and ``report.md``; return the summary."""
    import pandas as pd

    start = time.perf_counter()
    run = _run_folder(config)
    inputs, source, catalog = prepare_inputs(config)
    if source["synthetic"]:
        source["file"] = str(run / ETAS_CATALOG)
    check_models(config, inputs, run)
    campaign = campaign_for(config, run, inputs, source)
    campaign.open()  # refuses a folder made with other settings before anything is written into it
    store_inputs(run, inputs, source, catalog)
    dump_config(config, run / "config.resolved.yaml")
    if config.write_forecasts:
        create_forecast_stores(run, config, inputs)
    result = run_campaign(campaign, config.campaign)
    table = pd.read_parquet(campaign.results)
    summary = _summary(config, run, inputs, source, campaign, result, table)
    whole: dict[str, dict[str, Any]] = {}
    if config.write_forecasts:
        whole = add_whole_period(summary["models"], run, config, inputs)
    if config.plots:
        summary["plots"] = write_plots(run, config, inputs, table, whole)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    atomic_write_text(run / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    atomic_write_text(run / "report.md", render_report(summary, table))
    summary["report"] = str(run / "report.md")
    return summary


def _run_folder(config: HindcastConfig) -> Path:
    """``config.output``, created; with ``overwrite`` an earlier hindcast run there is removed first."""
    run = Path(config.output).resolve()
    if config.overwrite and run.exists():
        if any(run.iterdir()) and not (run / SETTINGS_FILE).exists():
            raise ConfigError(f"output: {run} holds files that are not a hindcast run; refusing to overwrite it")
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    return run


def _summary(
    config: HindcastConfig,
    run: Path,
    inputs: Inputs,
    source: dict[str, Any],
    campaign: Campaign[HindcastItem],
    result: CampaignResult,
    table: pd.DataFrame,
) -> dict[str, Any]:
    """``summary.json`` before the whole-period tests and plots: the run, its data, windows, grid and models."""
    return {
        "status": result.status,
        "output": str(run),
        "results": str(campaign.results),
        "results_csv": str(run / "results.csv"),
        "campaign": result.to_dict(),
        "catalog": source,
        "reference": config.reference_model,
        "windows": {
            "total": len(inputs.edges) - 1,
            "test": len(inputs.edges) - 1 - inputs.first_test,
            "first_test_start": str(inputs.edges[inputs.first_test]),
            "window_days": config.period.window_days,
            "refit_every": {m.key: config.refit_every(m) for m in config.models},
        },
        "grid": {"cells": inputs.grid.n_cells, "mags": inputs.grid.n_mags, **inputs.grid.to_dict()},
        "models": summarise(table, config.reference_model),
    }


def campaign_for(config: HindcastConfig, run: Path, inputs: Inputs, source: dict[str, Any]) -> Campaign[HindcastItem]:
    """The campaign of this config: its items, work function, fingerprinted settings and IG finaliser."""
    settings = to_dict(config)
    for key in ("output", "overwrite", "campaign", "plots"):  # how and where it runs changes no result
        settings.pop(key, None)
    settings["data"] = {k: source[k] for k in ("counts_sha256", "events_sha256", "events_binned")}
    items = work_items(config, len(inputs.edges) - 1, inputs.first_test)
    return Campaign(
        run,
        items,
        HindcastCompute(str(run), config),
        settings,
        sort_by=["model", "window"],
        finalize=AddInformationGain(config.reference_model),
    )


def check_models(config: HindcastConfig, inputs: Inputs, run: Path) -> None:
    """Build every model once (no fit) so a wrong name or option fails here, not inside a work item."""
    for i, model in enumerate(config.models):
        if model.name not in FORECASTERS:
            raise ConfigError(f"models[{i}].name: {model.name!r} is not one of {', '.join(FORECASTERS)}")
        try:
            build_forecaster(model.name, forecaster_options(model, inputs, run, inputs.first_test + 1))
        except ConfigError as exc:
            raise ConfigError(f"models[{i}] ({model.key}): {exc}") from None


@dataclasses.dataclass(frozen=True)
class HindcastCompute:
    """The picklable work function: forecast an item's windows, store them, test them, return the rows."""

    run: str
    config: HindcastConfig

    def __call__(self, item: HindcastItem) -> pd.DataFrame:
        run = Path(self.run)
        inputs = load_inputs(run, self.config)
        index = [m.key for m in self.config.models].index(item.model)
        model = self.config.models[index]
        refit_every = self.config.refit_every(model)
        rates = forecast_block(model, inputs, item, refit_every, run)
        if self.config.write_forecasts:
            write_forecast_slice(run, item, rates, inputs.first_test)
        windows = np.arange(item.first, item.stop)
        origins = item.first + ((windows - item.first) // refit_every) * refit_every
        counts = inputs.counts[item.first : item.stop]
        seeds = item_seeds(self.config.seed, index, item.first, len(self.config.tests))
        reference = None
        if item.model != self.config.reference_model and any(t in PAIRED_TESTS for t in self.config.tests):
            reference = (self.config.reference_model, reference_rates(self.config, inputs, item, run))
        return evaluate_block(
            item.model,
            rates,
            counts,
            windows,
            inputs.edges,
            origins,
            self.config.tests,
            self.config.n_sim,
            seeds,
            reference,
        )
