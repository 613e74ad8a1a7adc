"""Picker training end to end: synthetic-on-real archive -> pick/noise windows -> PhaseNet -> held-out scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from geodl_hpc.archive.synthetic_seismic import SyntheticSeismicConfig, build_synthetic_archive
from geodl_hpc.config import from_dict
from geodl_hpc.errors import ConfigError
from geodl_hpc.models.picker import load_picker
from geodl_hpc.training.config import TrainJobConfig
from jobs.train import main

REPO = Path(__file__).resolve().parents[2]
GEODL = Path(sys.executable).parent / "geodl"
TINY = {
    "epochs": 1, "checkpoint_every_steps": 2, "log_every": 1, "progress": False, "plot": False, "threads": 1,
    "model": {"name": "phasenet", "width": 4, "depth": 2, "kernel": 5},
    "data": {"chip": 256, "batch_size": 8, "n_samples": 24, "noise_fraction": 0.25, "mix_units": 4,
             "backend": "local", "pick_sigma": 5.0, "split": "train", "eval_split": "validation",
             "augment": ["shift", "gain", "noise"], "shift_max": 16},
}  # fmt: skip


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SyntheticSeismicConfig(records=(24, 8, 8), record_samples=256, event_fraction=0.6, seed=1)
    return build_synthetic_archive(tmp_path_factory.mktemp("picker") / "syn.zarr", config)


def test_train_job_builds_the_archive_trains_a_picker_and_scores_validation(archive: Path, tmp_path: Path) -> None:
    synthetic = {"records": [24, 8, 8], "record_samples": 256, "event_fraction": 0.6, "seed": 1}
    built = tmp_path / "built.zarr"
    data = {"archive": str(built), "output": str(tmp_path / "run"), "train": TINY, "synthetic": synthetic}
    config = from_dict(TrainJobConfig, data)
    result = main(config)
    # The missing archive was built from the config: the same records as the fixture's (same settings and seed).
    assert np.array_equal(zarr.open_array(str(built / "data"))[:], zarr.open_array(str(archive / "data"))[:])
    assert result["status"] == "completed" and result["step"] == 3 and np.isfinite(result["loss"])
    scores = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert scores == json.loads(json.dumps(result["validation"]))
    assert scores["split"] == "validation" and scores["tolerance_s"] == 0.1
    assert scores["P"]["true_picks"] + scores["detection"]["noise_windows"] == scores["windows"]
    meta = json.loads((tmp_path / "run" / "picker.json").read_text())
    assert meta["window"] == 256 and meta["sampling_rate"] == 50.0 and meta["channels"] == ["Z", "N", "E"]
    picker = load_picker(tmp_path / "run")
    prob = picker.probabilities(np.random.default_rng(0).normal(size=(2, 3, 300)).astype(np.float32))
    assert prob.shape == (2, 3, 300) and np.allclose(prob.sum(axis=1), 1.0, atol=1e-5)
    again = main(config)  # finished run: resumes at its end, same weights
    assert again["param_checksum"] == result["param_checksum"] and again["step"] == 3


def test_model_and_archive_kinds_must_match(archive: Path, tmp_path: Path) -> None:
    train = {**TINY, "model": {"name": "prospectivity_cnn"}}
    config = from_dict(TrainJobConfig, {"archive": str(archive), "output": str(tmp_path / "run"), "train": train})
    with pytest.raises(ConfigError, match="trains on a raster archive"):
        main(config)
    bad_split = {**TINY, "data": {**TINY["data"], "split": "nope"}}  # type: ignore[dict-item]
    config = from_dict(TrainJobConfig, {"archive": str(archive), "output": str(tmp_path / "b"), "train": bad_split})
    with pytest.raises(ConfigError, match="no stations in split 'nope'"):
        main(config)


@pytest.mark.slow
def test_geodl_train_seismic_config(archive: Path, tmp_path: Path) -> None:
    overrides = [
        f"archive={archive}", f"output={tmp_path / 'run'}", "train.epochs=1", "train.data.chip=256",
        "train.data.n_samples=16", "train.model.name=spectrogram_cnn", "train.model.width=4", "train.model.depth=2",
        "train.progress=false", "train.plot=false", "train.threads=1",
    ]  # fmt: skip
    result = subprocess.run(
        [str(GEODL), "train", str(REPO / "configs" / "seismic_picker.yaml"), *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["validation"]["split"] == "validation"
    assert load_picker(tmp_path / "run").module.__class__.__name__ == "SpectrogramPicker"
