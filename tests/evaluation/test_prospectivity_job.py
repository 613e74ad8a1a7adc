"""The main prospectivity job end to end on the real Murchison data at 2000 m with tiny CNNs (about 60 s):
ensembles of two seeds, one repeated fold assignment, MC-dropout uncertainty and occlusion attribution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geodl_hpc.config import from_dict
from geodl_hpc.errors import ConfigError
from geodl_hpc.evaluation.prospectivity_config import ProspectivityConfig
from geodl_hpc.evaluation.report import CONTRACT_KEYS
from geodl_hpc.registry import entry, load
from jobs.prospectivity import main
from tests.launch.conftest import Cluster, slurm_cluster

__all__ = ["slurm_cluster"]  # the session fixture of tests/launch, used here by name

FAST: dict[str, Any] = {
    "final": "oof",
    "ensemble": 2,
    "ingest": {"storage": {"chunk": 128}, "murchison": {"resolution": 2000.0}},
    "cv": {"folds": 2, "blocks": [3, 3], "baselines": ["logistic", "gboost"], "repeat_seeds": [1]},
    "sampling": {"n_pos": 32, "n_neg": 32, "buffer": 1, "likely_negative": True, "pu_distance": 2},
    "train": {
        "epochs": 1,
        "threads": 1,
        "progress": False,
        "model": {"width": 4, "depth": 2, "per_pixel": False, "dropout": 0.2},
        "data": {"chip": 8, "batch_size": 16, "backend": "local", "num_workers": 1},
    },
    "infer": {"tile": 64, "mc_samples": 2, "attribution": "occlusion"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("prospectivity")
    data = {**FAST, "output": str(root / "run"), "ingest": {**FAST["ingest"], "output": str(root / "archive")}}
    config = from_dict(ProspectivityConfig, data)
    return root / "run", main(config)


def test_run_folder_holds_every_output(run: tuple[Path, dict[str, Any]]) -> None:
    output, _ = run
    names = (
        "map.zarr",
        "map.tif",
        "map.png",
        "probability_cnn.png",
        "uncertainty_cnn.png",
        "success_rate.png",
        "attribution_cnn.png",
        "learning_curves.png",
        "report.md",
        "metrics.json",
        "config.resolved.yaml",
    )
    for name in names:
        assert (output / name).exists(), name
    report = (output / "report.md").read_text()
    assert "| CNN |" in report and "| logistic |" in report and "out-of-fold CNN map" in report
    assert "## Spread over fold assignments" in report and "attribution_<layer>" in report
    assert "mean probability of 2 CNNs" in report and "## How the CNN settings were chosen" in report


def test_map_holds_out_of_fold_uncertainty_and_attribution_bands(run: tuple[Path, dict[str, Any]]) -> None:
    import zarr

    output, doc = run
    group = zarr.open_group(str(output / "map.zarr"), mode="r")
    layers = list(group.attrs["layers"])  # type: ignore[arg-type]
    bands = [f"attribution_{name}" for name in doc["setup"]["layers"]]
    assert layers == ["probability", "uncertainty", *bands]
    for name in layers:
        values = np.asarray(group[name][:])  # type: ignore[index]
        assert np.isfinite(values).all(), name  # every pixel came from one fold's held-out blocks
    # occlusion of a layer changes the probability somewhere; the bands are not copies of each other
    planes = [np.asarray(group[b][:]) for b in bands]  # type: ignore[index]
    assert all(np.abs(p).max() > 0 for p in planes)
    assert not np.allclose(planes[0], planes[1])


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
    assert all(len(f["loss"]) == 2 for f in doc["setup"]["cnn"]["folds"])  # two seeds per fold model


def test_spread_over_fold_seeds_and_selection_metadata(run: tuple[Path, dict[str, Any]]) -> None:
    _, doc = run
    spread = doc["spread"]
    assert spread["fold_seeds"] == [0, 1]
    for name in ("cnn", "logistic", "gboost"):
        per_seed = spread["per_seed"][name]
        assert len(per_seed) == 2
        # the headline (fold seed 0) is the first of the repeats; the mean covers both
        headline = doc[name] if name == "cnn" else doc["baselines"][name]
        assert per_seed[0]["capture_top5pct"] == headline["capture_top5pct"]
        mean = spread["models"][name]["capture_top5pct"]["mean"]
        assert mean == pytest.approx((per_seed[0]["capture_top5pct"] + per_seed[1]["capture_top5pct"]) / 2)
    assert set(spread["targets"]) == {"capture_top5pct", "auc_within_greenstone"}
    assert spread["cnn_minus_best_baseline"]["auc_blockcv"]["n"] == 2
    assert doc["selection"]["method"] == "nested"


def test_in_memory_prediction_equals_the_tiled_runner(run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The repeats and the tuning benchmark predict in memory; the pixels must be the runner's (tiles, halo,
    reflect at the raster edge), for one CNN and for a seed ensemble."""
    import torch

    import jobs.ingest_murchison as ingest
    from geodl_hpc.evaluation.blockcv import load_raster
    from geodl_hpc.evaluation.cnn_folds import normalised_input, predict_in_memory
    from geodl_hpc.inference.config import InferJobConfig
    from geodl_hpc.inference.runner import infer
    from geodl_hpc.models.prospectivity import EnsembleMean, ProspectivityCNN

    output, doc = run
    archive = output.parent / "archive" / ingest.ARCHIVE_NAME
    layers = tuple(doc["setup"]["layers"])
    x = normalised_input(archive, layers, load_raster(archive, layers, "deposits"))
    torch.manual_seed(0)
    members = [ProspectivityCNN(len(layers), width=4, depth=2, per_pixel=True).eval() for _ in range(2)]
    for model in (members[0], EnsembleMean(members)):
        out = tmp_path / f"{type(model).__name__}.zarr"
        conf = InferJobConfig(archive=str(archive), output=str(out), layers=layers, mask_channel=False, tile=32,
                              progress=False, export_tif=False, export_png=False)  # fmt: skip
        infer(archive, model, out, conf)
        tiled = np.asarray(zarr_read(out, "probability"))
        np.testing.assert_allclose(predict_in_memory(model, x), tiled, atol=2e-6)
    ensemble = predict_in_memory(EnsembleMean(members), x)
    np.testing.assert_allclose(ensemble, (predict_in_memory(members[0], x) + predict_in_memory(members[1], x)) / 2,
                               atol=1e-6)  # fmt: skip


def zarr_read(path: Path, name: str) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_group(str(path), mode="r")[name][:])  # type: ignore[index]


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


@pytest.mark.slurm
def test_main_job_on_slurm_matches_the_local_run(
    slurm_cluster: Cluster, run: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`geodl run CONFIG --cluster localslurm`: the same config as a Slurm job gives the in-process metrics."""
    from geodl_hpc.config import dump_config
    from jobs.cli import main as cli

    local_out, _ = run
    data = {**FAST, "output": str(tmp_path / "run"), "ingest": {**FAST["ingest"], "output": str(tmp_path / "arc")}}
    dump_config(from_dict(ProspectivityConfig, data), tmp_path / "prospectivity.yaml")
    capsys.readouterr()
    assert cli(["run", str(tmp_path / "prospectivity.yaml"), "--cluster", "localslurm"]) == 0
    assert (tmp_path / "run" / "run.json").is_file() and (tmp_path / "run" / "job.sbatch").is_file()
    ours = json.loads((tmp_path / "run" / "metrics.json").read_text())
    local = json.loads((local_out / "metrics.json").read_text())
    for key in CONTRACT_KEYS:
        assert ours[key] == pytest.approx(local[key], abs=1e-9), key
        for name in ("logistic", "gboost"):
            assert ours["baselines"][name][key] == pytest.approx(local["baselines"][name][key], abs=1e-9), key
    assert (tmp_path / "run" / "map.tif").is_file()
