"""Inference fixtures: a small synthetic stack (odd size, with a nodata box), a tiny CNN and its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.synthetic import synthetic_stack
from geodl_hpc.training.config import ModelConfig

HEIGHT, WIDTH, CHUNK = 45, 53, 16  # not multiples of the chunk or of the tiles used below
NODATA_BOX = (5, 11, 30, 41)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stack")
    return synthetic_stack(folder / "s.zarr", HEIGHT, WIDTH, n_layers=3, chunk=CHUNK, seed=1, nodata_box=NODATA_BOX)


def tiny_cnn(in_channels: int = 3, dropout: float = 0.0, seed: int = 0) -> Any:
    import torch

    from geodl_hpc.models import build_model

    torch.manual_seed(seed)
    return build_model("prospectivity_cnn", in_channels, width=4, depth=3, dropout=dropout)


def write_checkpoint(path: Path, layers: list[str] | None, in_channels: int = 3, dropout: float = 0.0) -> Path:
    """A checkpoint shaped like `geodl train`'s (model weights + the train config fingerprint)."""
    import torch

    model = tiny_cnn(in_channels, dropout)
    config = {
        "model": {"name": "prospectivity_cnn", "width": 4, "depth": 3, "per_pixel": True, "dropout": dropout},
        "data": {"layers": layers, "label": "deposits"},
    }
    torch.save({"step": 1, "model": model.state_dict(), "config": json.dumps(config)}, path)
    return path


def config(**kw: Any) -> InferJobConfig:
    base: dict[str, Any] = {"tile": 12, "region_chunks": 1, "batch_size": 4, "progress": False, "threads": 1}
    if "checkpoint" not in kw:
        base["model"] = ModelConfig(width=4, depth=3)
    return InferJobConfig(**{**base, **kw})


def normalised_stack(stack: Path, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, valid)``: the stack's ``names`` layers (default: all) normalised by their statistics, NaN set to 0,
    and where every layer has data."""
    import zarr

    group = zarr.open_group(str(stack), mode="r")
    if names is None:
        names = list(group.attrs["layers"])  # type: ignore[arg-type]
    planes = []
    for n in names:
        s = group[n].attrs["statistics"]
        planes.append((np.asarray(group[n][:]) - np.float32(s["mean"])) / np.float32(s["std"]))  # type: ignore[index]
    x = np.stack(planes).astype(np.float32)
    valid = np.isfinite(x).all(axis=0)
    return np.nan_to_num(x), valid


def reference(stack: Path, model: Any, halo: int, mask_channel: bool = False) -> np.ndarray:
    """Whole-raster forward: normalised stack, padded by ``halo`` (reflect) once, cropped, NaN where nodata."""
    import torch

    x, valid = normalised_stack(stack)
    if mask_channel:
        x = np.concatenate([x, valid[None].astype(np.float32)])
    xp = np.pad(x, [(0, 0), (halo, halo), (halo, halo)], mode="reflect")
    with torch.inference_mode():
        logits = model.eval()(torch.from_numpy(xp)[None])
        y = torch.sigmoid(logits.reshape(logits.shape[-2:])).numpy()
    y = y[halo : y.shape[0] - halo, halo : y.shape[1] - halo].copy()
    y[~valid] = np.nan
    return y
