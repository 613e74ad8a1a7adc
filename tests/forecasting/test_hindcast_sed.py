"""``configs/hindcast_sed.yaml`` end to end through the CLI on the REAL SED 2023 catalog (seismostats wheel):
quarry blasts and other non-earthquakes are dropped, every model is tested per window, T/W against the reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodl_hpc.config import from_dict, read_yaml
from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.forecasting.hindcast_config import HindcastConfig
from geodl_hpc.forecasting.hindcast_inputs import load_events
from tests.conftest import RunGeodl, package_file

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "hindcast_sed.yaml"


def test_sed_config_runs_end_to_end_without_quarry_blasts(geodl: RunGeodl, tmp_path: Path) -> None:
    done = geodl("hindcast", CONFIG, "output=run", "n_sim=200", "plots=false", "campaign.progress=false")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    cfg = from_dict(HindcastConfig, read_yaml(CONFIG))
    # independent count: earthquakes of the raw file inside the box, before test_end (2023-12-31), >= Mc
    raw = pd.read_csv(package_file("seismostats", "analysis", "tests", "data", "catalog_sed.csv"))
    lon_min, lat_min, lon_max, lat_max = cfg.region.bbox
    box = raw["longitude"].between(lon_min, lon_max, inclusive="left")
    box &= raw["latitude"].between(lat_min, lat_max, inclusive="left")
    before_end = pd.to_datetime(raw["time"]) < pd.Timestamp(cfg.period.test_end)
    quakes = raw[box & before_end & (raw["event_type"] == "earthquake")]
    source = summary["catalog"]
    assert source["synthetic"] is False and source["excluded_event_types"]["quarry blast"] == 375
    assert source["events_in_region"] == len(quakes)
    assert source["events_binned"] == int((quakes["magnitude"] >= cfg.region.mc - 1e-9).sum())
    table = pd.read_parquet(tmp_path / "run" / "results.parquet")
    n_test = summary["windows"]["test"]
    assert n_test == 20 and summary["windows"]["window_days"] == 14
    assert len(table) == 3 * n_test * 6 + 2 * n_test * 2  # N L CL S M Brier for all, T W for the two non-references
    assert np.isfinite(table.loc[table["test"] == "Brier", "observed_statistic"]).all()
    models = summary["models"]
    assert set(models["smoothed_10km"]["whole_period"]) == {"N", "L", "CL", "S", "M", "Brier", "T", "W"}
    assert 0 < models["adaptive_k3"]["molchan_area_skill_score"]["whole_period"] <= 1
    report = (tmp_path / "run" / "report.md").read_text()
    assert "catalog_sed.csv" in report and "real data" in report


def test_event_types_need_an_event_type_column(tmp_path: Path) -> None:
    data = {**read_yaml(CONFIG), "output": str(tmp_path / "run")}
    data["catalog"] = {"package": "csep", "path": "artifacts/ObservedCatalogs/sample_comcat_catalog.csv"}
    data["catalog"]["event_types"] = ["earthquake"]
    with pytest.raises(InputDataError, match=r"sample_comcat_catalog.csv has no event_type column"):
        load_events(from_dict(HindcastConfig, data))
    data["catalog"]["event_types"] = []
    with pytest.raises(ConfigError, match=r"catalog.event_types: give at least one type"):
        from_dict(HindcastConfig, data)
