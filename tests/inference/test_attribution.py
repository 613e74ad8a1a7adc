"""Per-layer occlusion attribution: equal to the whole-raster occlusion (no seams), nodata kept, exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import zarr

from geodl_hpc.errors import ConfigError
from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.runner import infer
from geodl_hpc.training.config import ModelConfig
from jobs.infer import main

from .conftest import HEIGHT, NODATA_BOX, WIDTH, config, normalised_stack, tiny_cnn

LAYERS = ["synthetic_0", "synthetic_1", "synthetic_2"]


def whole_raster_occlusion(stack: Path, model: torch.nn.Module, halo: int) -> np.ndarray:
    """``(layers, H, W)``: the whole-raster forward minus the forward with one normalised layer set to 0."""
    x, valid = normalised_stack(stack, LAYERS)

    def forward(inp: np.ndarray) -> np.ndarray:
        xp = np.pad(inp, [(0, 0), (halo, halo), (halo, halo)], mode="reflect")
        with torch.inference_mode():
            y = torch.sigmoid(model.eval()(torch.from_numpy(xp)[None]).reshape(xp.shape[-2:])).numpy()
        return np.asarray(y[halo:-halo, halo:-halo])

    base = forward(x)
    out = []
    for i in range(len(LAYERS)):
        occluded = x.copy()
        occluded[i] = 0.0
        diff = base - forward(occluded)
        diff[~valid] = np.nan
        out.append(diff)
    return np.stack(out)


def read(out: Path, name: str) -> np.ndarray:
    return np.asarray(zarr.open_group(str(out), mode="r")[name][:])  # type: ignore[index]


def test_occlusion_map_equals_the_whole_raster_occlusion(stack: Path, tmp_path: Path) -> None:
    """Crop stitching over tiles of 12 px (not dividing the 45 x 53 raster or its 16 px chunks) has no seams."""
    model = tiny_cnn()
    out = tmp_path / "a.zarr"
    result = infer(stack, model, out, config(attribution="occlusion"))
    assert result["complete"]
    group = zarr.open_group(str(out), mode="r")
    assert list(group.attrs["layers"]) == ["probability"] + [f"attribution_{n}" for n in LAYERS]  # type: ignore[arg-type]
    want = whole_raster_occlusion(stack, model, halo=3)
    r0, r1, c0, c1 = NODATA_BOX
    for i, name in enumerate(LAYERS):
        got = read(out, f"attribution_{name}")
        assert got.shape == (HEIGHT, WIDTH)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want[i]))
        assert np.isnan(got[r0:r1, c0:c1]).all()
        assert np.nanmax(np.abs(got - want[i])) <= 1e-5
        assert np.nanmax(np.abs(got)) > 1e-4  # every layer moves the prediction somewhere


def test_blended_occlusion_of_a_pointwise_model_is_exact(stack: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 1, 1)
    out = tmp_path / "b.zarr"
    infer(stack, model, out, config(attribution="occlusion", stitch="blend", overlap=5, halo=0))
    want = whole_raster_occlusion(stack, model, halo=1)  # a 1x1 conv: any padding gives the same interior
    for i, name in enumerate(LAYERS):
        assert np.nanmax(np.abs(read(out, f"attribution_{name}") - want[i])) <= 1e-6


def test_attribution_with_uncertainty_and_exports(stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "run" / "map.zarr"
    model = ModelConfig(width=4, depth=3, dropout=0.2)
    result = main(config(archive=str(stack), output=str(out), attribution="occlusion", mc_samples=2, model=model))
    bands = ("probability", "uncertainty", *(f"attribution_{n}" for n in LAYERS))
    with rasterio.open(result["files"]["tif"]) as src:
        assert src.descriptions == bands and src.count == 5
        np.testing.assert_array_equal(src.read(3), read(out, "attribution_synthetic_0"))
    png = Path(result["files"]["attribution_png"])
    assert png.name == "map.attribution.png" and png.stat().st_size > 0


def test_attribution_is_a_map_setting(stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.zarr"
    infer(stack, tiny_cnn(), out, config())
    with pytest.raises(Exception, match=r"other settings \(changed: attribution\)"):
        infer(stack, tiny_cnn(), out, config(attribution="occlusion"))
    with pytest.raises(ConfigError, match="attribution"):
        from geodl_hpc.config import from_dict

        from_dict(InferJobConfig, {"attribution": "shap"})
