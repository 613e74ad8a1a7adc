"""The ``annotate`` job end to end, the way `geodl annotate ARCHIVE --model RUN` calls it: a picker run folder
(as `geodl train` writes it; UNTRAINED weights from a fixed seed, so the scores check plumbing, not skill) over
the synthetic-on-real archive (synthetic events on real ObsPy noise, with a validation and a test split), plus
the real RJOB event next to ObsPy's AR picker."""

from __future__ import annotations

import json
from pathlib import Path

import obspy
import pandas as pd
import pytest
import xarray as xr

from geodl_hpc.config import from_dict
from geodl_hpc.errors import InputDataError
from geodl_hpc.inference.annotate_config import AnnotateJobConfig

WINDOW, RATE = 256, 50.0


def picker_run(folder: Path, archive: Path, rate: float = RATE, window: int = WINDOW) -> Path:
    """A run folder like `geodl train` leaves: config.resolved.yaml, picker.json, checkpoints/step-*.pt."""
    import torch

    from geodl_hpc.config import dump_config
    from geodl_hpc.models.picker import build_picker
    from geodl_hpc.training.config import DataConfig, ModelConfig, TrainConfig, TrainJobConfig

    model = ModelConfig(name="phasenet", width=4, depth=3, kernel=5)
    config = TrainJobConfig(
        archive=str(archive), output=str(folder), train=TrainConfig(model=model, data=DataConfig(chip=window))
    )
    folder.mkdir(parents=True)
    dump_config(config, folder / "config.resolved.yaml")
    meta = {"window": window, "sampling_rate": rate, "channels": ["Z", "N", "E"]}
    (folder / "picker.json").write_text(json.dumps(meta))
    torch.manual_seed(0)
    module = build_picker("phasenet", 3, width=4, depth=3, kernel=5)
    (folder / "checkpoints").mkdir()
    torch.save({"step": 1, "model": module.state_dict()}, folder / "checkpoints" / "step-00000001.pt")
    return folder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geodl_hpc.archive.synthetic_seismic import SyntheticSeismicConfig, build_synthetic_archive

    out = tmp_path_factory.mktemp("syn") / "syn.zarr"
    return build_synthetic_archive(out, SyntheticSeismicConfig(records=(2, 16, 16), record_samples=512, seed=2))


def test_job_writes_picks_quakeml_metrics_and_rjob_comparison(synthetic: Path, tmp_path: Path) -> None:
    from jobs.annotate import main

    run = picker_run(tmp_path / "picker", synthetic)
    # What `geodl annotate ARCHIVE --model RUN threshold.P=0.4 rjob=true progress=false` builds.
    data = {"archive": str(synthetic), "model": str(run), "threshold": {"P": 0.4}, "rjob": True, "progress": False}
    config = from_dict(AnnotateJobConfig, data)
    assert config.output_path() == synthetic.with_name("syn.annotations.zarr")
    result = main(config)
    assert result["status"] == "complete" and result["blocks_total"] == 34
    files = result["files"]
    table = pd.read_csv(files["picks"])
    assert len(table) == result["n_picks"] == len(obspy.read_events(files["quakeml"])[0].picks)
    assert (table[table["phase"] == "P"]["probability"] >= 0.4).all()
    metrics = json.loads(Path(files["metrics"]).read_text())
    held = metrics["held_out"]
    assert held["test"]["n_stations"] == 16 and held["ours"]["thresholds"] == {"P": 0.4, "S": 0.3}
    assert set(held["sta_lta"]["params"]) >= {"sta_s", "lta_s", "on", "off"}
    assert held["sta_lta"]["scores"]["P"]["n_true"] == held["ours"]["scores"]["P"]["n_true"] > 0
    rjob = metrics["rjob"]
    assert abs(rjob["ar_pick"]["P"] - 30.635) < 1e-3 and abs(rjob["ar_pick"]["S"] - 31.165) < 0.05
    assert set(rjob["ours"]) == {"P", "S"}
    again = main(config)
    assert again["status"] == "noop" and again["files"]["metrics"] == files["metrics"]


def test_job_rejects_a_model_at_another_rate(synthetic: Path, tmp_path: Path) -> None:
    from jobs.annotate import main

    run = picker_run(tmp_path / "picker", synthetic)
    meta = json.loads((run / "picker.json").read_text())
    (run / "picker.json").write_text(json.dumps({**meta, "sampling_rate": 100.0}))
    config = AnnotateJobConfig(archive=str(synthetic), model=str(run), output=str(tmp_path / "a.zarr"))
    with pytest.raises(InputDataError, match=r"sampled at 50 Hz but the picker expects 100 Hz"):
        main(config)


def test_cli_annotate_runs_the_job(synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jobs.cli import main

    run = picker_run(tmp_path / "picker", synthetic)
    out = tmp_path / "cli.zarr"
    args = ["annotate", str(synthetic), "--model", str(run), "--output", str(out), "stacking=max", "progress=false"]
    assert main([*args, "threshold.S=0.6", "evaluate=false"]) == 0
    assert "complete" in capsys.readouterr().out
    ds = xr.open_zarr(str(out), consolidated=False)
    assert ds.attrs["geodl_complete"] is True and ds.attrs["geodl_inference"]["stacking"] == "max"
    assert ds.attrs["geodl_inference"]["threshold"] == {"P": 0.3, "S": 0.6}
    assert not out.with_name("cli.metrics.json").exists()
