"""Smoke test of the forecasting benchmark at tiny sizes (the real run is in the report, not in tests)."""

from __future__ import annotations

from pathlib import Path

from geodl_hpc.forecasting.benchmark import run


def test_benchmark_runs_and_labels_its_catalog_synthetic(tmp_path: Path) -> None:
    result = run(years=4.0, test_years=1.0, window_days=60.0, epochs=1, out=tmp_path, with_etas=False, threads=1)
    assert result["synthetic"] is True and "Mizrahi" in result["catalog"]
    assert set(result["models"]) == {"uniform_poisson", "smoothed_gaussian", "smoothed_adaptive", "rnn"}
    assert result["models"]["uniform_poisson"]["information_gain_per_event_vs_uniform"] == 0.0
    assert result["rnn_train"]["epoch"] == 1 and result["rnn_train"]["train_s"] > 0
