"""Phase pickers: any window length, softmax outputs, the soft-target loss, one normalisation, loading, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from geodl_hpc.config import dump_config
from geodl_hpc.errors import InputDataError
from geodl_hpc.models import build_model
from geodl_hpc.models.picker import (
    PICK_OUTPUTS,
    PhaseNet,
    SpectrogramPicker,
    load_picker,
    normalise_windows,
    pick_metrics,
    window_picks,
)
from geodl_hpc.training.checkpoint import CheckpointManager
from geodl_hpc.training.config import DataConfig, ModelConfig, TrainConfig, TrainJobConfig


@pytest.mark.parametrize("name", ["phasenet", "spectrogram_cnn"])
@pytest.mark.parametrize("length", [37, 512, 1001])
def test_pickers_keep_any_length_and_give_probabilities(name: str, length: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, 3, width=4, depth=3, kernel=5)
    logits = model(torch.randn(2, 3, length))
    assert logits.shape == (2, 3, length)
    prob = model.probabilities(logits)  # type: ignore[operator]
    torch.testing.assert_close(prob.sum(dim=1), torch.ones(2, length))
    assert model.output_names == PICK_OUTPUTS == ("noise", "P", "S")


def test_training_loss_is_soft_target_cross_entropy() -> None:
    torch.manual_seed(1)
    model = PhaseNet(3, width=4, depth=2)
    logits = torch.randn(2, 3, 50)
    y = torch.softmax(torch.randn(2, 3, 50) * 3, dim=1)
    loss, correct, total = model.training_loss(logits, y)
    want = -(y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(loss, want)
    assert total == 100 and correct == float((logits.argmax(1) == y.argmax(1)).sum())


def test_spectrogram_picker_sees_frequency_content() -> None:
    model = SpectrogramPicker(3, width=4, depth=1, n_fft=32, hop=4)
    t = torch.arange(256) / 50.0
    low = torch.sin(2 * math.pi * 2.0 * t).expand(1, 3, 256)
    high = torch.sin(2 * math.pi * 20.0 * t).expand(1, 3, 256)
    spec_low, spec_high = model.spectrogram(low), model.spectrogram(high)
    freq = torch.fft.rfftfreq(32, 1 / 50.0)
    assert spec_low.shape[2] == len(freq)
    assert freq[spec_low[0, 0].mean(-1).argmax()] < 5 < freq[spec_high[0, 0].mean(-1).argmax()]


def test_normalise_windows_demeans_and_scales_by_the_largest_channel_std() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 1.0, size=(4, 3, 200)) * np.array([1.0, 3.0, 0.5])[:, None]
    x[3] = 7.0  # a flat window stays finite (zero)
    out = normalise_windows(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:3].std(axis=-1).max(axis=-1), 1.0, rtol=1e-5)
    ratio = out[:3].std(axis=-1) / x[:3].std(axis=-1)
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(3, axis=1), rtol=1e-5)  # channel ratios kept
    assert np.all(out[3] == 0.0)


def test_pick_metrics_counts_hits_within_tolerance() -> None:
    n, length, rate = 6, 300, 50.0
    true = np.array([[100, 150], [100, 150], [100, -1], [-1, -1], [-1, -1], [50, 250]])
    predicted_at = np.array([[103, 150], [120, 151], [100, -1], [-1, 200], [-1, -1], [50, 200]])
    prob = np.zeros((n, 3, length))
    prob[:, 0] = 1.0
    for i, row in enumerate(predicted_at):
        for j, at in enumerate(row):
            if at >= 0:
                prob[i, j + 1, at] = 0.9
    out = pick_metrics(prob, true, rate, tolerance_s=0.1)
    err_p = np.abs(predicted_at[:, 0] - true[:, 0])[true[:, 0] >= 0]
    assert out["P"]["true_picks"] == 4 and out["P"]["within_tolerance"] == int((err_p <= 5).sum())
    assert out["S"]["predicted_picks"] == 4 and out["S"]["within_tolerance"] == 2
    assert out["S"]["precision"] == 0.5 and out["S"]["recall"] == 2 / 3
    assert out["detection"]["false_alarm_rate"] == 0.5 and out["detection"]["recall"] == 1.0
    picks = {0: (np.array([1, 2, 1]), np.array([10, 40, 400]))}
    np.testing.assert_array_equal(
        window_picks(picks, np.array([[0, 0], [0, 30], [1, 0]]), 100), [[10, 40], [-1, 10], [-1, -1]]
    )


def _fake_run(folder: Path, name: str, model: torch.nn.Module | None) -> TrainJobConfig:
    """A run folder as the train job leaves it: resolved config, picker.json and one checkpoint."""
    train = TrainConfig(model=ModelConfig(name=name, width=4, depth=2, kernel=5), data=DataConfig(chip=128))  # type: ignore[arg-type]
    config = TrainJobConfig(archive=str(folder / "missing.zarr"), output=str(folder), train=train)
    folder.mkdir(parents=True, exist_ok=True)
    dump_config(config, folder / "config.resolved.yaml")
    (folder / "picker.json").write_text('{"window": 128, "sampling_rate": 50.0, "channels": ["Z", "N", "E"]}')
    if model is not None:
        CheckpointManager(folder / "checkpoints", 2, "h", {}).save({"model": model.state_dict()}, 3)
    return config


def test_load_picker_from_folder_or_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(2)
    trained = PhaseNet(3, width=4, depth=2, kernel=5)
    _fake_run(tmp_path / "run", "phasenet", trained)
    x = np.random.default_rng(3).normal(size=(2, 3, 128)).astype(np.float32)
    with torch.no_grad():
        want = trained.probabilities(trained(torch.from_numpy(normalise_windows(x)))).numpy()
    for path in (tmp_path / "run", tmp_path / "run" / "checkpoints" / "step-00000003.pt"):
        picker = load_picker(path)
        assert (picker.window, picker.sampling_rate, picker.channels) == (128, 50.0, ("Z", "N", "E"))
        assert picker.output_names == ("noise", "P", "S") and not picker.module.training
        np.testing.assert_allclose(picker.probabilities(x), want, rtol=1e-5, atol=1e-6)


def test_load_picker_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="no such picker run"):
        load_picker(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match=r"no config\.resolved\.yaml"):
        load_picker(tmp_path / "empty")
    _fake_run(tmp_path / "raster", "prospectivity_cnn", None)
    with pytest.raises(InputDataError, match="not a phase picker"):
        load_picker(tmp_path / "raster")
    _fake_run(tmp_path / "fresh", "phasenet", None)
    with pytest.raises(InputDataError, match="no checkpoints"):
        load_picker(tmp_path / "fresh")
