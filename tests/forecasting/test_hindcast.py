"""The hindcast job on the REAL ComCat Ridgecrest catalog (pyCSEP's sample, 829 events, 2019-07-06..13).

End to end through ``jobs.hindcast.main``: the results table, its numbers recomputed independently, no
look-ahead (changing the future changes no earlier forecast), refit cadence, kill-and-resume, settings guard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.archive.catalog import read_catalog_table
from geodl_hpc.config import from_dict, read_yaml, to_dict
from geodl_hpc.errors import ConfigError
from geodl_hpc.evaluation.csep.forecast import read_forecast
from geodl_hpc.evaluation.csep.kernels import (
    area_skill_score,
    brier_score,
    cumulative_t_test,
    molchan_curve,
    t_test,
    w_test,
)
from geodl_hpc.forecasting.binning import bin_catalog, window_edges
from geodl_hpc.forecasting.forecasters import build_forecaster
from geodl_hpc.forecasting.hindcast_config import PAIRED_TESTS, HindcastConfig
from geodl_hpc.forecasting.hindcast_inputs import build_grid
from geodl_hpc.forecasting.hindcast_scoring import item_seeds
from geodl_hpc.forecasting.hindcast_stores import export_window_forecast, read_forecast_rates, window_forecast
from geodl_hpc.forecasting.scores import information_gain_per_event, poisson_log_likelihood
from geodl_hpc.launch.campaign import KILL_ENV, CampaignError
from jobs.hindcast import main
from tests.launch.test_local_cluster import Cluster, slurm_cluster

__all__ = ["slurm_cluster"]  # the local Slurm fixture, for the array test

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "hindcast_ridgecrest.yaml"
Run = tuple[HindcastConfig, dict[str, Any], pd.DataFrame]  # config, summary, results table


def config(output: Path, **changes: Any) -> HindcastConfig:
    """The shipped Ridgecrest config, made quicker (200 simulations) and quiet, with ``changes`` applied."""
    data = {**read_yaml(CONFIG), "output": str(output), "n_sim": 200}
    data["campaign"] = {**data.get("campaign", {}), "progress": False}
    data.update(changes)
    return from_dict(HindcastConfig, data)


@pytest.fixture(scope="module")
def ridgecrest(tmp_path_factory: pytest.TempPathFactory) -> Run:
    cfg = config(tmp_path_factory.mktemp("hindcast") / "run")
    summary = main(cfg)
    return cfg, summary, pd.read_parquet(summary["results"])


def test_table_has_one_row_per_model_window_and_test(ridgecrest: Run) -> None:
    cfg, summary, table = ridgecrest
    n_test = summary["windows"]["test"]
    assert n_test == 12 and summary["catalog"]["synthetic"] is False
    paired = [t for t in cfg.tests if t in PAIRED_TESTS]
    assert paired == ["T", "W"] and "Brier" in cfg.tests
    # paired tests: one row per window for every model but the reference
    assert len(table) == len(cfg.models) * n_test * len(cfg.tests) - n_test * len(paired)
    assert not table.duplicated(["model", "window", "test"]).any()
    assert set(table["model"]) == {m.key for m in cfg.models} and set(table["test"]) == set(cfg.tests)
    is_paired = table["test"].isin(paired)
    assert set(table.loc[is_paired, "model"]) == {m.key for m in cfg.models[1:]}
    assert (table.loc[is_paired, "versus"] == "uniform_poisson").all() and (table.loc[~is_paired, "versus"] == "").all()
    assert table["window_start"].min() == pd.Timestamp("2019-07-07", tz="UTC")
    assert table["window_end"].max() == pd.Timestamp("2019-07-13", tz="UTC")
    assert summary["campaign"]["computed"] == summary["campaign"]["n_items"] == 3 * 6
    out = Path(summary["output"])
    names = ["tests", "information_gain", "molchan_roc", "forecast_map", "whole_period"]
    names += [f"information_gain_{m.key}" for m in cfg.models[1:]]  # T-test gains against the reference
    assert sorted(summary["plots"]) == sorted(names)
    for name in names:
        assert Path(summary["plots"][name]).stat().st_size > 10_000, name
    report = (out / "report.md").read_text()
    assert "real data" in report and "SYNTHETIC" not in report and "plots/molchan_roc.png" in report
    assert "## Whole test period" in report
    assert json.loads((out / "summary.json").read_text())["models"] == summary["models"]


def test_numbers_agree_with_an_independent_recomputation(ridgecrest: Run, tmp_path: Path) -> None:
    cfg, summary, table = ridgecrest
    run = Path(summary["output"])
    events = read_catalog_table(Path(summary["catalog"]["file"]))
    grid = build_grid(cfg)
    edges = window_edges(cfg.period.training_start, cfg.period.test_end, cfg.period.window_days)
    counts = bin_catalog(events, grid, edges)
    first = 2
    n_rows = table[table["test"] == "N"].set_index(["model", "window"])
    ll = {}
    for m in cfg.models:
        rates = read_forecast_rates(run, m.key)
        assert rates.shape == (12, grid.n_cells, grid.n_mags) and np.isfinite(rates).all()
        for i in range(12):
            w = first + i
            # refit before every window on windows < w only: fitting here gives the same forecast
            f = build_forecaster(m.name, {**m.option_dict(), "grid": grid})
            f.fit(counts, np.zeros((len(counts), 1, 1)), w)
            np.testing.assert_allclose(rates[i], f.rates(w), rtol=1e-12)
            row = n_rows.loc[(m.key, w)]
            assert row["n_events"] == row["observed_statistic"] == counts[w].sum()
            assert row["n_fore"] == pytest.approx(rates[i].sum())
            ll[m.key, w] = poisson_log_likelihood(rates[i], counts[w])
            assert row["log_likelihood"] == pytest.approx(ll[m.key, w])
        fc = window_forecast(run, m.key, 3)
        assert fc.start == edges[first + 3] and fc.end == edges[first + 4]
        whole = summary["models"][m.key]["whole_period"]
        assert whole["N"]["observed_statistic"] == counts[first:].sum()
        assert whole["N"]["n_fore"] == pytest.approx(rates.sum())
        assert whole["L"]["observed_statistic"] == pytest.approx(sum(ll[m.key, first + i] for i in range(12)))
        exported = read_forecast(export_window_forecast(run, m.key, 3, tmp_path / f"{m.key}-3.zarr"))
        np.testing.assert_array_equal(exported.rates, rates[3])
        assert (exported.start, exported.end) == (fc.start, fc.end)
    for (model, w), row in n_rows.iterrows():
        gain = information_gain_per_event(ll[model, w], ll["uniform_poisson", w], int(counts[w].sum()))
        assert row["information_gain"] == pytest.approx(gain)
    assert (n_rows.loc["uniform_poisson", "information_gain"] == 0).all()
    # the paired T-test's gain per event (sum over events of log rate ratios) is the same quantity
    reference = read_forecast_rates(run, "uniform_poisson")
    t = t_test(read_forecast_rates(run, "smoothed_5km"), reference, counts[first:])
    np.testing.assert_allclose(t.observed_statistic, n_rows.loc["smoothed_5km", "information_gain"], rtol=1e-9)
    # on a sequence that clusters on the faults, the smoothed models beat the uniform reference
    assert summary["models"]["smoothed_5km"]["information_gain_vs_uniform_poisson"] > 0.5


def _rows(table: pd.DataFrame, model: str, test: str) -> pd.DataFrame:
    return table[(table["model"] == model) & (table["test"] == test)].sort_values("window")


def test_brier_t_and_w_rows_agree_with_direct_kernel_calls(ridgecrest: Run) -> None:
    """Brier per item block with the item's seed; T and W per window against the reference's stored forecasts;
    the whole-period T, W and Molchan area skill score in the summary from the pooled windows."""
    cfg, summary, table = ridgecrest
    run, first = Path(summary["output"]), 2
    counts = bin_catalog(
        read_catalog_table(Path(summary["catalog"]["file"])),
        build_grid(cfg),
        window_edges(cfg.period.training_start, cfg.period.test_end, cfg.period.window_days),
    )[first:]
    reference = read_forecast_rates(run, "uniform_poisson")
    block = cfg.block(cfg.models[0])
    for index, m in enumerate(cfg.models):
        rates = read_forecast_rates(run, m.key)
        brier = _rows(table, m.key, "Brier")
        for start in range(0, len(counts), block):
            seed = item_seeds(cfg.seed, index, first + start, len(cfg.tests))[cfg.tests.index("Brier")]
            direct = brier_score(
                rates[start : start + block], counts[start : start + block], n_sim=cfg.n_sim, seed=seed
            )
            rows = brier.iloc[start : start + block]
            np.testing.assert_allclose(rows["observed_statistic"], direct.observed_statistic, rtol=1e-12)
            np.testing.assert_allclose(rows["quantile"], direct.quantile, rtol=0, atol=0)
            assert (rows["passed"].to_numpy() == (np.asarray(direct.quantile) >= 0.025)).all()
        whole = summary["models"][m.key]
        pooled_ass = area_skill_score(*molchan_curve(rates.sum(axis=0), counts.sum(axis=0)))
        assert whole["molchan_area_skill_score"]["whole_period"] == pytest.approx(pooled_ass, abs=1e-4)
        if m.key == "uniform_poisson":
            assert not {"T", "W"} & set(whole["whole_period"])
            continue
        t, w = t_test(rates, reference, counts), w_test(rates, reference, counts)
        t_rows, w_rows = _rows(table, m.key, "T"), _rows(table, m.key, "W")
        np.testing.assert_allclose(t_rows["observed_statistic"], t.observed_statistic, rtol=1e-12)
        np.testing.assert_allclose(t_rows["ci_lower"], t.extra["ig_lower"], rtol=1e-12)
        np.testing.assert_allclose(t_rows["ci_upper"], t.extra["ig_upper"], rtol=1e-12)
        np.testing.assert_allclose(t_rows["t_statistic"], t.extra["t_statistic"], rtol=1e-12)
        assert (t_rows["passed"].to_numpy() == (np.asarray(t.extra["ig_lower"]) > 0)).all()
        np.testing.assert_allclose(w_rows["observed_statistic"], w.observed_statistic, rtol=1e-12)
        np.testing.assert_allclose(w_rows["quantile"], w.quantile, rtol=1e-12)
        expected_w = (np.asarray(w.quantile) < 0.05) & (np.asarray(t.observed_statistic) > 0)
        assert (w_rows["passed"].to_numpy() == expected_w).all()
        # the T-test's gain is the per-window information gain of the log-likelihoods
        np.testing.assert_allclose(t_rows["observed_statistic"], t_rows["information_gain"], rtol=1e-9)
        cum = cumulative_t_test(rates, reference, counts).windows()[-1]
        assert whole["whole_period"]["T"]["observed_statistic"] == pytest.approx(cum.observed_statistic)
        assert whole["whole_period"]["T"]["ig_lower"] == pytest.approx(cum.extra["ig_lower"])
        assert whole["whole_period"]["T"]["passed"] == (cum.extra["ig_lower"] > 0)
        pooled_w = w_test(
            rates.reshape(-1, rates.shape[-1]),
            reference.reshape(-1, rates.shape[-1]),
            counts.reshape(-1, rates.shape[-1]),
        )
        assert whole["whole_period"]["W"]["quantile"] == pytest.approx(float(pooled_w.quantile))
        assert whole["whole_period"]["W"]["observed_statistic"] == pytest.approx(float(pooled_w.observed_statistic))
    report = (run / "report.md").read_text()
    assert "| Brier | T | W |" in report and "Molchan ASS" in report


def test_paired_rows_use_the_references_own_refit_origins(tmp_path: Path) -> None:
    """Items of a model refit every 2 windows recompute a reference refit every 3: same rates as its own items."""
    period = {**to_dict(config(tmp_path).period), "refit_every": 2, "refits_per_item": 1}
    models = [{"name": "smoothed_adaptive", "label": "ref", "refit_every": 3}, {"name": "smoothed_gaussian"}]
    cfg = config(tmp_path / "run", period=period, models=models, tests=["N", "T", "W"], plots=False)
    summary = main(cfg)
    table = pd.read_parquet(summary["results"])
    run = Path(summary["output"])
    counts = bin_catalog(
        read_catalog_table(Path(summary["catalog"]["file"])),
        build_grid(cfg),
        window_edges(cfg.period.training_start, cfg.period.test_end, cfg.period.window_days),
    )[2:]
    rates, reference = read_forecast_rates(run, "smoothed_gaussian"), read_forecast_rates(run, "ref")
    assert (reference[0] == reference[2]).all() and not np.allclose(reference[2], reference[3])  # refit every 3
    t, w = t_test(rates, reference, counts), w_test(rates, reference, counts)
    t_rows, w_rows = _rows(table, "smoothed_gaussian", "T"), _rows(table, "smoothed_gaussian", "W")
    assert len(t_rows) == len(w_rows) == 12 and _rows(table, "ref", "T").empty
    np.testing.assert_allclose(t_rows["observed_statistic"], t.observed_statistic, rtol=1e-12)
    np.testing.assert_allclose(w_rows["quantile"], w.quantile, rtol=1e-12)


def _perturbed_catalog(source: Path, after: str, out: Path) -> Path:
    """The catalog with every event from ``after`` on moved 0.15 deg east, 0.3 units larger, and duplicated."""
    table = read_catalog_table(source)
    late = table["time"] >= pd.Timestamp(after, tz="UTC")
    moved = table[late].copy()
    moved["longitude"] = np.minimum(moved["longitude"] + 0.15, -117.21)
    moved["magnitude"] = np.minimum(moved["magnitude"] + 0.3, 5.5)
    changed = pd.concat([table[~late], moved, moved.assign(latitude=moved["latitude"] - 0.05)])
    changed = changed.rename(columns={"depth_km": "depth_km"})[
        ["time", "latitude", "longitude", "depth_km", "magnitude"]
    ]
    changed.to_csv(out, index=False)
    return out


@pytest.mark.slow  # two hindcasts with an RNN and ETAS: about 5-20 s
def test_changing_the_future_changes_no_earlier_forecast(ridgecrest: Run, tmp_path: Path) -> None:
    cfg, summary, _ = ridgecrest
    after = "2019-07-10T00:00:00"  # start of window 8 (test index 6)
    catalog = _perturbed_catalog(Path(summary["catalog"]["file"]), after, tmp_path / "changed.csv")
    models = [
        {"name": "smoothed_adaptive", "label": "adaptive_k3", "options": {"k": 3}},
        {"name": "etas", "label": "etas", "options": {"params": "california_mizrahi2021"}},
        {"name": "rnn", "refit_every": 4, "options": {"epochs": 1, "hidden": 8, "seq_len": 4, "batch_size": 1024}},
    ]
    period = {**to_dict(cfg.period), "refit_every": 2, "refits_per_item": 2}
    runs = {}
    for name, source in (("real", {"package": "csep", "path": cfg.catalog.path}), ("changed", {"path": str(catalog)})):
        c = config(tmp_path / name, catalog=source, models=models, period=period, tests=["N", "S"], plots=False)
        runs[name] = main(c)
    for model in ("adaptive_k3", "etas", "rnn"):
        real, changed = (read_forecast_rates(Path(runs[k]["output"]), model) for k in ("real", "changed"))
        np.testing.assert_array_equal(real[:7], changed[:7])  # windows starting up to `after`: history is the same
        assert not np.allclose(real[8:], changed[8:])  # refit at window 10 on the changed windows 8, 9
    real_table, changed_table = (pd.read_parquet(runs[k]["results"]) for k in ("real", "changed"))
    early = real_table["window_start"] < pd.Timestamp(after, tz="UTC")
    pd.testing.assert_frame_equal(
        real_table[early].drop(columns=["cumulative_information_gain"]),
        changed_table[early].drop(columns=["cumulative_information_gain"]),
    )


def test_refit_cadence_holds_the_fit_of_the_origin(tmp_path: Path) -> None:
    period = {**to_dict(config(tmp_path).period), "refit_every": 3, "refits_per_item": 1}
    models = [{"name": "uniform_poisson"}, {"name": "smoothed_gaussian", "refit_every": 6}]
    cfg = config(tmp_path / "run", period=period, models=models, tests=["N"], plots=False)
    summary = main(cfg)
    table = pd.read_parquet(summary["results"]).set_index("model")
    assert list(table.loc["uniform_poisson", "fit_origin"]) == [2, 2, 2, 5, 5, 5, 8, 8, 8, 11, 11, 11]
    assert list(table.loc["smoothed_gaussian", "fit_origin"]) == [2] * 6 + [8] * 6
    assert summary["campaign"]["n_items"] == 4 + 2  # one item per refit of each model
    rates = read_forecast_rates(Path(summary["output"]), "uniform_poisson")
    for block in range(4):
        assert (rates[3 * block : 3 * block + 3] == rates[3 * block]).all()
    assert not np.allclose(rates[0], rates[3])


KILLED = """
import json, sys
from geodl_hpc.config import from_dict
from geodl_hpc.forecasting.hindcast_config import HindcastConfig
from jobs.hindcast import main
from tests.launch.test_local_cluster import Cluster, slurm_cluster

__all__ = ["slurm_cluster"]  # the local Slurm fixture, for the array test
main(from_dict(HindcastConfig, json.loads(sys.argv[1])))
"""


def test_killed_hindcast_resumes_with_the_uninterrupted_table(
    ridgecrest: Run,
    tmp_path: Path,
) -> None:
    cfg, _, reference = ridgecrest
    resumed_cfg = config(tmp_path / "run", plots=False)  # figures are not results: faster, same table
    env = {**os.environ, KILL_ENV: "7"}
    args = [sys.executable, "-c", KILLED, json.dumps(to_dict(resumed_cfg))]
    assert subprocess.run(args, cwd=REPO, env=env, timeout=300).returncode == -9
    pieces = sorted((tmp_path / "run" / "pieces").glob("*.parquet"))
    assert len(pieces) == 7 and not (tmp_path / "run" / "results.parquet").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in pieces}
    summary = main(resumed_cfg)
    assert (summary["campaign"]["skipped"], summary["campaign"]["computed"]) == (7, 11)
    assert {p.name: p.stat().st_mtime_ns for p in pieces} == stamps  # finished pieces untouched
    pd.testing.assert_frame_equal(pd.read_parquet(summary["results"]), reference)
    for m in cfg.models:
        np.testing.assert_array_equal(
            read_forecast_rates(tmp_path / "run", m.key), read_forecast_rates(Path(cfg.output), m.key)
        )
    again = main(resumed_cfg)
    assert again["campaign"]["status"] == "noop"


def test_a_changed_config_refuses_the_old_run_folder(ridgecrest: Run) -> None:
    cfg, _, _ = ridgecrest
    with pytest.raises(CampaignError, match=r"settings changed.*n_sim"):
        main(config(Path(cfg.output), n_sim=300))


def test_etas_config_small_runs_and_says_synthetic(tmp_path: Path) -> None:
    """configs/hindcast_etas.yaml cut to 6 years and one model: the catalog is simulated, stored, labelled."""
    data = {**read_yaml(REPO / "configs" / "hindcast_etas.yaml"), "output": str(tmp_path / "etas"), "n_sim": 50}
    data["period"] = {**data["period"], "test_start": "1984-01-03", "test_end": "1986-01-01", "refit_every": 26}
    data["models"] = [data["models"][0], data["models"][1]]
    data["catalog"] = {"etas": {**data["catalog"]["etas"], "burn_in_days": 365}}
    data.update(campaign={"progress": False}, plots=False)
    summary = main(from_dict(HindcastConfig, data))
    source = summary["catalog"]
    assert source["synthetic"] is True and source["params"]["name"] == "california_mizrahi2021"
    stored = pd.read_parquet(source["file"])
    assert len(stored) >= source["events_in_region"] > 0 and set(stored["magnitude_type"]) == {"M(ETAS)"}
    assert "SYNTHETIC catalog" in (Path(summary["output"]) / "report.md").read_text()
    assert summary["windows"]["test"] == 104 and summary["campaign"]["n_items"] == 2 * 2  # 52-window items


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    period = {**to_dict(config(tmp_path).period), "test_start": "2019-07-07T05:00:00"}
    with pytest.raises(ConfigError, match=r"period.test_start: .* use 2019-07-07T12:00"):
        main(config(tmp_path / "a", period=period))
    with pytest.raises(ConfigError, match=r"models\[1\]\.name: 'poisson' is not one of uniform_poisson"):
        main(config(tmp_path / "m", models=[{"name": "uniform_poisson"}, {"name": "poisson"}]))
    with pytest.raises(ConfigError, match=r"models\[0\] \(smoothed_gaussian\): .*bad options"):
        main(config(tmp_path / "o", models=[{"name": "smoothed_gaussian", "options": {"sigma": 3}}]))
    with pytest.raises(ConfigError, match="label 'uniform_poisson' used twice"):
        config(tmp_path / "b", models=[{"name": "uniform_poisson"}, {"name": "uniform_poisson"}])
    with pytest.raises(ConfigError, match="reference: 'rnn' is not a model label"):
        config(tmp_path / "c", reference="rnn")


@pytest.mark.slurm
def test_slurm_array_tasks_give_the_in_process_table(
    ridgecrest: Run, slurm_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same campaign as three Slurm array tasks (two at a time) on the local cluster."""
    cfg, _, reference = ridgecrest
    monkeypatch.chdir(tmp_path)
    campaign = {
        "executor": "slurm",
        "cluster": "localslurm",
        "cluster_overrides": ["array_parallelism=2"],
        "array_tasks": 3,
        "timeout_s": 300,
        "progress": False,
    }
    summary = main(config(tmp_path / "run", campaign=campaign, plots=False))
    assert summary["campaign"]["computed"] == 18
    status = json.loads((tmp_path / "run" / "slurm" / "run.json").read_text())
    assert status["executor"] == "slurm" and len(status["tasks"]) == 3
    pd.testing.assert_frame_equal(pd.read_parquet(summary["results"]), reference)
    for m in cfg.models:
        np.testing.assert_array_equal(
            read_forecast_rates(tmp_path / "run", m.key), read_forecast_rates(Path(cfg.output), m.key)
        )
