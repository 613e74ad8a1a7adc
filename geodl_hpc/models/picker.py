"""Seismic phase pickers: a PhaseNet-like 1-D U-Net and a spectrogram 2-D CNN, both ``(B, C, T) -> (B, 3, T)``.

Both give per-sample logits of ``output_names = ("noise", "P", "S")`` (softmax over the channel axis), are trained
on soft Gaussian pick targets with cross-entropy (``training_loss``), and take any window length ``T``.
:func:`normalise_windows` is the one input normalisation of training and annotation; :func:`load_picker` rebuilds
a trained picker from a training output folder (weights loaded with ``weights_only=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.pipeline.decode import normalise_windows

PICK_OUTPUTS = ("noise", "P", "S")
PICKER_MODELS = ("phasenet", "spectrogram_cnn")


class _PickerHead(nn.Module):
    """What every picker shares: output names, softmax probabilities and the soft-target cross-entropy loss."""

    output_names: tuple[str, ...] = PICK_OUTPUTS

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T)`` probabilities of noise, P and S (softmax over the channel axis)."""
        return torch.softmax(logits.float(), dim=1)

    def training_loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """Cross-entropy against soft targets ``y (B, 3, T)``; correct = samples whose most likely class agrees."""
        logp = torch.log_softmax(logits.float(), dim=1)
        loss = -(y * logp).sum(dim=1).mean()
        correct = (logits.detach().argmax(dim=1) == y.argmax(dim=1)).sum().item()
        return loss, float(correct), float(y.shape[0] * y.shape[2])


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv1d + GroupNorm(1) + ReLU: no batch statistics, so results do not depend on how ranks split a batch."""
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, stride=stride, padding=kernel // 2), nn.GroupNorm(1, cout), nn.ReLU(inplace=True)
    )


class PhaseNet(_PickerHead):
    """A PhaseNet-like 1-D U-Net (Zhu & Beroza 2019): ``depth`` levels, each halving time and doubling width.

    The input is zero-padded on the right to a multiple of ``2 ** (depth - 1)`` and the output cropped back, so
    any ``T`` works and the output length equals the input length.
    """

    def __init__(
        self, in_channels: int = 3, width: int = 8, depth: int = 4, kernel: int = 7, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1 or kernel < 1:
            raise ValueError(f"PhaseNet: depth, width and kernel must be >= 1, got {depth}, {width}, {kernel}")
        chans = [width * 2**i for i in range(depth)]
        self.depth = depth
        self.stem = _conv(in_channels, chans[0], kernel)
        self.down = nn.ModuleList(_conv(chans[i], chans[i + 1], kernel, stride=2) for i in range(depth - 1))
        self.enc = nn.ModuleList(_conv(chans[i + 1], chans[i + 1], kernel) for i in range(depth - 1))
        self.up = nn.ModuleList(nn.ConvTranspose1d(chans[i + 1], chans[i], 2, stride=2) for i in range(depth - 1))
        self.dec = nn.ModuleList(_conv(2 * chans[i], chans[i], kernel) for i in range(depth - 1))
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv1d(chans[0], len(PICK_OUTPUTS), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        mult = 2 ** (self.depth - 1)
        pad = (-t) % mult
        h = self.stem(F.pad(x, (0, pad)) if pad else x)
        skips = [h]
        for down, enc in zip(self.down, self.enc, strict=True):
            h = enc(down(h))
            skips.append(h)
        h = self.drop(skips.pop())
        for i in reversed(range(self.depth - 1)):
            h = self.dec[i](torch.cat([self.up[i](h), skips.pop()], dim=1))
        logits: torch.Tensor = self.head(h)
        return logits[..., :t]


class SpectrogramPicker(_PickerHead):
    """A 2-D CNN over log-amplitude STFT images of each channel, computed on the fly from the same ``x``.

    STFT (``n_fft`` samples, Hann, hop ``hop``) per channel -> ``depth`` 3x3 conv blocks over (frequency, frame)
    -> mean over frequency -> linear upsampling from frames back to samples -> 1-D conv head. Output: the same
    ``(B, 3, T)`` pick logits as :class:`PhaseNet`, so both train on the same targets and annotate the same way.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        depth: int = 3,
        kernel: int = 7,
        dropout: float = 0.0,
        n_fft: int = 64,
        hop: int = 4,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        layers: list[nn.Module] = []
        cin = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.GroupNorm(1, width), nn.ReLU(inplace=True)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Sequential(_conv(width, width, kernel), nn.Conv1d(width, len(PICK_OUTPUTS), 1))
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, F, frames)`` log(1 + |STFT|) of each channel."""
        b, c, t = x.shape
        flat = x.float().reshape(b * c, t)
        if t < self.n_fft:
            flat = F.pad(flat, (0, self.n_fft - t))
        window: torch.Tensor = self.window  # type: ignore[assignment]
        spec = torch.stft(flat, self.n_fft, self.hop, window=window, center=True, return_complex=True)
        mag = torch.log1p(spec.abs())
        return mag.reshape(b, c, *mag.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        h = self.features(self.spectrogram(x)).mean(dim=2)  # (B, width, frames)
        h = F.interpolate(self.drop(h), size=t, mode="linear", align_corners=False)
        logits: torch.Tensor = self.head(h)
        return logits


@dataclass
class LoadedPicker:
    """A trained picker ready to annotate: the module (eval mode) and what its inputs must look like."""

    module: nn.Module
    window: int  # samples per window the model was trained on
    sampling_rate: float  # Hz
    channels: tuple[str, ...]  # component letters in input order, e.g. ("Z", "N", "E")
    output_names: tuple[str, ...] = PICK_OUTPUTS

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """``(B, 3, T)`` probabilities for raw windows ``x (B, C, T)`` (normalised here with the training rule)."""
        with torch.no_grad():
            logits = self.module(torch.from_numpy(normalise_windows(np.asarray(x, np.float32))))
            probs: torch.Tensor = self.module.probabilities(logits)  # type: ignore[operator]
        return probs.numpy()


PICKER_META = "picker.json"  # written beside config.resolved.yaml by the train job


def _run_folder(path: Path) -> tuple[Path, Path | None]:
    """``(run folder, checkpoint file or None)`` for a run folder or a checkpoint inside one."""
    if path.is_file():
        folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return folder, path
    return path, None


def _newest_checkpoint(folder: Path) -> Path:
    from geodl_hpc.training.checkpoint import STEP_FILE

    ckpts = folder / "checkpoints"
    steps = sorted(
        (int(m.group(1)), p) for p in (ckpts.iterdir() if ckpts.is_dir() else ()) if (m := STEP_FILE.match(p.name))
    )
    if steps:
        return steps[-1][1]
    if (ckpts / "best.pt").is_file():
        return ckpts / "best.pt"
    raise InputDataError(f"{ckpts}: no checkpoints (step-*.pt); train the picker first or give a checkpoint file")


def _meta(folder: Path, archive: str, window: int) -> tuple[int, float, tuple[str, ...]]:
    """Window, sampling rate and channels from ``picker.json``, else from the training archive's attributes."""
    import json

    meta_path = folder / PICKER_META
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return int(meta["window"]), float(meta["sampling_rate"]), tuple(str(c) for c in meta["channels"])
    import zarr

    try:
        group = zarr.open_group(str(archive), mode="r")
        rate = float(group.attrs["sampling_rate"])  # type: ignore[arg-type]
        channels = tuple(str(c) for c in np.asarray(zarr.open_array(f"{archive}/channel", mode="r")[:]).tolist())
    except Exception:
        raise InputDataError(
            f"{folder}: no {PICKER_META} and the training archive {archive} is not readable; "
            "retrain with this version or restore the archive"
        ) from None
    return window, rate, channels


def build_picker(name: str, in_channels: int, **options: Any) -> _PickerHead:
    """A fresh picker ``name`` (one of :data:`PICKER_MODELS`); options the model does not take are dropped."""
    import inspect

    if name not in PICKER_MODELS:
        raise ConfigError(f"train.model.name: {name!r} is not a picker; pickers are {', '.join(PICKER_MODELS)}")
    cls: type[_PickerHead] = PhaseNet if name == "phasenet" else SpectrogramPicker
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "in_channels"}
    return cls(in_channels, **{k: v for k, v in options.items() if k in accepted})


def load_picker(path: Path | str) -> LoadedPicker:
    """A trained picker from a training output folder (``config.resolved.yaml`` + ``checkpoints/``) or one of its
    checkpoint files; the newest ``step-*.pt`` when given a folder."""
    from geodl_hpc.config import from_dict, read_yaml
    from geodl_hpc.training.checkpoint import fit_state_dict, load_checkpoint
    from geodl_hpc.training.config import TrainJobConfig

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: no such picker run folder or checkpoint; give a train output folder")
    folder, ckpt = _run_folder(path)
    cfg_path = folder / "config.resolved.yaml"
    if not cfg_path.is_file():
        raise InputDataError(f"{folder}: no config.resolved.yaml; give the output folder of a picker training run")
    config = from_dict(TrainJobConfig, read_yaml(cfg_path))
    m = config.train.model
    if m.name not in PICKER_MODELS:
        raise InputDataError(f"{folder}: trained model {m.name!r} is not a phase picker ({', '.join(PICKER_MODELS)})")
    window, rate, channels = _meta(folder, config.archive, config.train.data.chip)
    module = build_picker(m.name, len(channels), **_model_options(m))
    path = ckpt or _newest_checkpoint(folder)
    state = load_checkpoint(path)
    if not isinstance(state.get("model"), dict):
        raise InputDataError(f"{path}: checkpoint holds no model weights; give one written by `geodl train`")
    fit_state_dict(module, state["model"], path, f"picker {m.name!r}")
    module.eval()
    return LoadedPicker(module, window, rate, channels, module.output_names)


def _model_options(m: Any) -> dict[str, Any]:
    """The model options of a ``ModelConfig`` (every field but ``name``)."""
    import dataclasses

    return {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name != "name"}


def pick_metrics(
    prob: np.ndarray, true: np.ndarray, rate: float, *, tolerance_s: float = 0.1, threshold: float = 0.5
) -> dict[str, Any]:
    """Pick and detection scores of probability traces ``prob (N, 3, T)`` against ``true (N, 2)`` P/S pick
    samples per window (-1 where the window has none); pure numpy.

    Per phase, a window's predicted pick is its trace's highest sample if that reaches ``threshold``. A true pick
    is *hit* when predicted within ``tolerance_s``; precision counts predicted picks that are hits; ``residual_*``
    are over predicted picks within 0.5 s of a true one. Detection: a window is called an event when its P or S
    trace reaches ``threshold``; event windows are those with a true pick.
    """
    prob = np.asarray(prob, np.float64)
    true = np.asarray(true, np.int64)
    tol = tolerance_s * rate
    out: dict[str, Any] = {"windows": len(true), "tolerance_s": tolerance_s, "threshold": threshold}
    for j, phase in ((1, "P"), (2, "S")):
        peak = prob[:, j].max(axis=1) if len(prob) else np.zeros(0)
        at = prob[:, j].argmax(axis=1) if len(prob) else np.zeros(0, np.int64)
        predicted, has = peak >= threshold, true[:, j - 1] >= 0
        err = (at - true[:, j - 1]).astype(np.float64)
        hit = predicted & has & (np.abs(err) <= tol)
        near = predicted & has & (np.abs(err) <= 0.5 * rate)
        n_true, n_pred, n_hit = int(has.sum()), int(predicted.sum()), int(hit.sum())
        precision = n_hit / n_pred if n_pred else math.nan
        recall = n_hit / n_true if n_true else math.nan
        f1 = 2 * precision * recall / (precision + recall) if n_hit else 0.0
        res = err[near] / rate
        out[phase] = {
            "true_picks": n_true,
            "predicted_picks": n_pred,
            "within_tolerance": n_hit,
            "recall": recall,
            "precision": precision,
            "f1": f1,
            "residual_mean_s": float(res.mean()) if len(res) else math.nan,
            "residual_std_s": float(res.std()) if len(res) else math.nan,
            "residual_mae_s": float(np.abs(res).mean()) if len(res) else math.nan,
        }
    event = (true >= 0).any(axis=1)
    called = (prob[:, 1:].max(axis=2) >= threshold).any(axis=1) if len(prob) else np.zeros(0, bool)
    tp, fp = int((event & called).sum()), int((~event & called).sum())
    out["detection"] = {
        "event_windows": int(event.sum()),
        "noise_windows": int((~event).sum()),
        "recall": tp / max(int(event.sum()), 1),
        "false_alarm_rate": fp / max(int((~event).sum()), 1),
        "precision": tp / (tp + fp) if tp + fp else math.nan,
    }
    return out


def window_picks(
    picks: dict[int, tuple[np.ndarray, np.ndarray]] | None, positions: np.ndarray, window: int
) -> np.ndarray:
    """``(N, 2)`` sample of the first P and S pick inside each ``(station, start)`` window (-1 where none)."""
    out = np.full((len(positions), 2), -1, np.int64)
    for i, (station, start) in enumerate(np.asarray(positions, np.int64)):
        phase, sample = (picks or {}).get(int(station), (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        for j in (1, 2):
            inside = sample[(phase == j) & (sample >= start) & (sample < start + window)]
            if len(inside):
                out[i, j - 1] = int(inside.min() - start)
    return out


__all__ = [
    "PICKER_MODELS",
    "PICK_OUTPUTS",
    "LoadedPicker",
    "PhaseNet",
    "SpectrogramPicker",
    "build_picker",
    "load_picker",
    "normalise_windows",
    "pick_metrics",
    "window_picks",
]
