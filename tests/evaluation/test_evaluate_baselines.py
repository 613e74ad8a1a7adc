"""The baseline job on the real GSWA Murchison stack at 2000 m: contract keys, report, PNGs, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geodl_hpc.archive.murchison import build_murchison
from geodl_hpc.config import from_dict
from geodl_hpc.errors import ArchiveError, ConfigError
from geodl_hpc.evaluation.config import EvaluationConfig
from geodl_hpc.evaluation.report import CONTRACT_KEYS
from jobs.evaluate_baselines import main


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("murchison") / "murchison.zarr"
    return build_murchison(out, resolution=2000.0, chunk=128, progress=False)


@pytest.fixture(scope="module")
def run(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    output = tmp_path_factory.mktemp("eval")
    return output, main(EvaluationConfig(archive=str(archive), output=str(output)))


def test_contract_keys_for_both_baselines(run: tuple[Path, dict[str, Any]]) -> None:
    output, doc = run
    on_disk = json.loads((output / "metrics.json").read_text())
    assert on_disk == doc
    for key in CONTRACT_KEYS:
        assert doc[key] is None  # no CNN in this job
    for name in ("logistic", "gboost"):
        for key in CONTRACT_KEYS:
            assert 0.0 <= doc["baselines"][name][key] <= 1.0, (name, key)
    assert doc["baselines"]["logistic"]["auc_blockcv"] > 0.8  # greenstone is very predictive
    assert doc["setup"]["n_deposits"] == 255 and doc["setup"]["folds"] == 5 and doc["setup"]["blocks"] == [5, 5]


def test_report_and_figures_exist(run: tuple[Path, dict[str, Any]]) -> None:
    output, _ = run
    report = (output / "report.md").read_text()
    assert "Watkins and Hickman 1990" in report and "Geological Survey of Western Australia" in report
    assert "5x5 blocks" in report and "| logistic |" in report and "| gboost |" in report
    for name in ("success_rate.png", "probability_logistic.png", "probability_gboost.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(output.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_missing_label_layer_is_one_line(archive: Path, tmp_path: Path) -> None:
    config = EvaluationConfig(archive=str(archive), output=str(tmp_path), label="gold", baselines=("logistic",))
    with pytest.raises(ArchiveError, match="has no label layer 'gold'; its layers are greenstone") as err:
        main(config)
    assert "\n" not in str(err.value)


def test_config_from_yaml_mapping_and_bad_values() -> None:
    config = from_dict(EvaluationConfig, {"blocks": [4, 6], "folds": 3, "layers": ["greenstone"]})
    assert config.blocks == (4, 6) and config.layers == ("greenstone",)
    with pytest.raises(ConfigError, match=r"folds: must lie in 2\.\.4"):
        from_dict(EvaluationConfig, {"blocks": [2, 2], "folds": 5})
    with pytest.raises(ConfigError, match="baselines"):
        from_dict(EvaluationConfig, {"baselines": ["forest"]})
