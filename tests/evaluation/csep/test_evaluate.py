"""`evaluate_csep` and `geodl evaluate csep` on the real shipped forecast and the real ComCat catalog."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geodl_hpc.errors import ConfigError
from geodl_hpc.evaluation.csep.evaluate import evaluate_csep
from geodl_hpc.evaluation.csep.forecast import GriddedForecast, write_forecast_zarr
from tests.conftest import RunGeodl
from tests.evaluation.csep.conftest import Pair


def _by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in result["tests"]}


def test_real_forecast_and_catalog_agree_with_pycsep(helmstetter_path: Path, comcat_csv: Path) -> None:
    """Helmstetter (all California, M >= 4.95, no time window) vs Ridgecrest: 3 target events."""
    from csep.core import poisson_evaluations as pe

    from geodl_hpc.evaluation.csep.forecast import load_csep_ascii, to_pycsep
    from tests.evaluation.csep.conftest import pycsep_catalog

    result = evaluate_csep(helmstetter_path, comcat_csv, ["N", "l", "CL", "S", "M"], seed=5, n_sim=200)
    json.dumps(result, allow_nan=False)
    assert result["n_catalog_events"] == result["n_window_events"] == 829 and result["n_events"] == 3
    tests = _by_name(result)
    assert list(tests) == ["Poisson N-Test", "Poisson L-Test", "Poisson CL-Test", "Poisson S-Test", "Poisson M-Test"]
    assert result == evaluate_csep(helmstetter_path, comcat_csv, ["N", "L", "CL", "S", "M"], seed=5, n_sim=200)
    fc = load_csep_ascii(helmstetter_path)
    from geodl_hpc.archive.catalog import read_catalog_table

    table = read_catalog_table(comcat_csv)
    lon, lat, mag = (table[c].to_numpy(dtype=np.float64) for c in ("longitude", "latitude", "magnitude"))
    ref_fc = to_pycsep(fc)
    catalog = pycsep_catalog(lon, lat, mag, ref_fc.region)
    refs = {
        "Poisson N-Test": pe.number_test(ref_fc, catalog),
        "Poisson L-Test": pe.likelihood_test(ref_fc, catalog, num_simulations=2, seed=1),
        "Poisson S-Test": pe.spatial_test(ref_fc, catalog, num_simulations=2, seed=1),
    }
    for name, ref in refs.items():
        assert tests[name]["observed_statistic"] == pytest.approx(ref.observed_statistic, abs=1e-9)
    assert tests["Poisson N-Test"]["quantile"] == pytest.approx(list(refs["Poisson N-Test"].quantile), abs=1e-12)
    assert tests["Poisson L-Test"]["n_sim"] == 200


def test_zarr_forecast_time_window_and_archive_catalog(
    ridgecrest_pair: Pair, comcat_csv: Path, comcat: Any, tmp_path: Path
) -> None:
    """A Zarr forecast with [start, end) counts only the catalog's events in that window; an ingested Parquet
    catalog gives the same result as the CSV it came from."""
    from geodl_hpc.archive.catalog import ingest_catalog

    fc: GriddedForecast = replace(ridgecrest_pair.a, start="2019-07-07T00:00:00", end="2019-07-09T00:00:00")
    path = write_forecast_zarr(fc, tmp_path / "window.zarr")
    result = evaluate_csep(path, comcat_csv, ["N", "M"], seed=1, n_sim=50)
    times = comcat["time"].dt.tz_convert(None)
    in_window = (times >= "2019-07-07") & (times < "2019-07-09")
    assert result["n_window_events"] == int(in_window.sum())
    assert 0 < result["n_events"] <= result["n_window_events"] < 829
    assert _by_name(result)["Poisson N-Test"]["observed_statistic"] == result["n_events"]
    archive = ingest_catalog(tmp_path / "comcat.parquet", comcat_csv)
    from_archive = evaluate_csep(path, archive, ["N", "M"], seed=1, n_sim=50)
    assert from_archive["tests"] == result["tests"]


def test_unknown_test_names_the_valid_ones(helmstetter_path: Path, comcat_csv: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown test X.*N, L, CL, S, M, BRIER"):
        evaluate_csep(helmstetter_path, comcat_csv, ["N", "X"], seed=1, n_sim=10)


def test_cli_json_and_plots(geodl: RunGeodl, ridgecrest_pair: Pair, comcat_csv: Path, tmp_path: Path) -> None:
    """The way a user runs it: a Zarr forecast, the ComCat CSV, JSON on stdout, PNGs written."""
    path = write_forecast_zarr(ridgecrest_pair.a, tmp_path / "ridgecrest.zarr")
    proc = geodl(
        "evaluate", "csep", "--forecast", path, "--catalog", comcat_csv, "--tests", "N,S,M", "--seed", "3",
        "--n-sim", "100", "--json", "--plot", tmp_path / "plots",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n_events"] == 827
    assert [t["name"] for t in result["tests"]] == ["Poisson N-Test", "Poisson S-Test", "Poisson M-Test"]
    assert result["tests"][1]["quantile"] == 0.0  # the real aftershock sequence fails the long-term forecast
    for png in result["plots"].values():
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_text_output_and_inspect_of_a_forecast(geodl: RunGeodl, ridgecrest_pair: Pair, tmp_path: Path) -> None:
    """Plain output prints every test (``n/a`` for an undefined statistic); `geodl inspect` knows forecasts."""
    path = write_forecast_zarr(ridgecrest_pair.a, tmp_path / "ridgecrest.zarr")
    empty = tmp_path / "empty.csv"  # a catalog with no event in the forecast: L-test log-likelihood is finite
    empty.write_text("time,latitude,longitude,depth,mag\n2019-07-06T00:00:00,0.0,0.0,10.0,3.0\n")
    proc = geodl("evaluate", "csep", "--forecast", path, "--catalog", empty, "--tests", "N,L", "--n-sim", "50")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "0 events" in lines[0]
    assert [line.split()[1] for line in lines[1:]] == ["N-Test", "L-Test"]
    shown = geodl("inspect", path)
    assert shown.returncode == 0, shown.stderr
    assert "forecast archive, complete" in shown.stdout
    wrong = geodl("evaluate", "csep", "--forecast", path)
    assert wrong.returncode == 2 and "--catalog" in wrong.stderr and "Traceback" not in wrong.stderr
