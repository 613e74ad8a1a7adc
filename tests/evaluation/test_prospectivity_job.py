"""The main prospectivity job end to end on the real Murchison data at 2000 m with a tiny CNN (about 40 s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geodl_hpc.config import from_dict
from geodl_hpc.errors import ConfigError
from geodl_hpc.evaluation.prospectivity_config import ProspectivityConfig
from geodl_hpc.evaluation.report import CONTRACT_KEYS
from jobs.prospectivity import main
from jobs.registry import entry, load

FAST = {
    "final": "oof",
    "ingest": {"storage": {"chunk": 128}, "murchison": {"resolution": 2000.0}},
    "cv": {"folds": 2, "blocks": [3, 3], "baselines": ["logistic", "gboost"]},
    "sampling": {"n_pos": 32, "n_neg": 32, "buffer": 1, "likely_negative": True, "pu_distance": 2},
    "train": {
        "epochs": 1,
        "progress": False,
        "model": {"width": 4, "depth": 2, "per_pixel": False, "dropout": 0.2},
        "data": {"chip": 8, "batch_size": 16, "backend": "local", "num_workers": 1},
    },
    "infer": {"tile": 64, "mc_samples": 2},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("prospectivity")
    data = {**FAST, "output": str(root / "run"), "ingest": {**FAST["ingest"], "output": str(root / "archive")}}
    config = from_dict(ProspectivityConfig, data)
    return root / "run", main(config)


def test_run_folder_holds_every_output(run: tuple[Path, dict[str, Any]]) -> None:
    output, _ = run
    for name in ("map.zarr", "map.tif", "map.png", "probability_cnn.png", "uncertainty_cnn.png", "success_rate.png",
                 "learning_curves.png", "report.md", "metrics.json", "config.resolved.yaml"):  # fmt: skip
        assert (output / name).exists(), name
    report = (output / "report.md").read_text()
    assert "| CNN |" in report and "| logistic |" in report and "out-of-fold CNN map" in report


def test_metrics_have_contract_keys_for_cnn_and_baselines(run: tuple[Path, dict[str, Any]]) -> None:
    output, doc = run
    on_disk = json.loads((output / "metrics.json").read_text())
    assert on_disk == doc
    for key in CONTRACT_KEYS:
        assert 0.0 <= doc[key] <= 1.0, key
        assert doc[key] == doc["cnn"][key]
        for name in ("logistic", "gboost"):
            assert 0.0 <= doc["baselines"][name][key] <= 1.0, (name, key)
    assert doc["setup"]["folds"] == 2
    assert len(doc["setup"]["cnn"]["folds"]) == 2


def test_registered_and_config_file_loads() -> None:
    assert entry("prospectivity").config_class.endswith(":ProspectivityConfig")
    name, config = load(Path("configs/prospectivity_murchison.yaml"))
    assert name == "prospectivity"
    assert isinstance(config, ProspectivityConfig)
    assert config.cv.folds == 5 and config.ingest.murchison.resolution == 500.0


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"cv\.folds"):
        from_dict(ProspectivityConfig, {"cv": {"folds": 30}})
    with pytest.raises(ConfigError, match="mc_samples"):
        from_dict(ProspectivityConfig, {"infer": {"mc_samples": 4}, "train": {"model": {"dropout": 0.0}}})
