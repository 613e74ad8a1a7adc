"""Tiled maps equal the whole-raster forward: exactly (crop, 1x1 blend) or without seams (blend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from geodl_hpc.archive.store import archive_kind
from geodl_hpc.inference.geometry import TilePlan
from geodl_hpc.inference.runner import InputSpec, Predictor, infer, predict_region, read_input

from .conftest import CHUNK, HEIGHT, NODATA_BOX, WIDTH, config, reference, tiny_cnn


def read_map(out: Path, layer: str = "probability") -> np.ndarray:
    return np.asarray(zarr.open_group(str(out), mode="r")[layer][:])  # type: ignore[index]


def test_crop_equals_whole_raster_forward(stack: Path, tmp_path: Path) -> None:
    model = tiny_cnn()
    result = infer(stack, model, tmp_path / "m.zarr", config(stitch="crop"))
    assert result["complete"] and result["halo"] == 3  # the model's receptive-field margin
    got = read_map(tmp_path / "m.zarr")
    want = reference(stack, model, halo=3)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) <= 1e-5
    assert archive_kind(tmp_path / "m.zarr") == ("raster", True)


def test_nodata_propagates_with_and_without_mask_channel(stack: Path, tmp_path: Path) -> None:
    r0, r1, c0, c1 = NODATA_BOX
    for mask in (False, True):
        model = tiny_cnn(3 + mask)
        out = tmp_path / f"m{int(mask)}.zarr"
        infer(stack, model, out, config(mask_channel=mask))
        got = read_map(out)
        expected = np.zeros((HEIGHT, WIDTH), bool)
        expected[r0:r1, c0:c1] = True
        np.testing.assert_array_equal(np.isnan(got), expected)
        assert np.nanmax(np.abs(got - reference(stack, model, 3, mask_channel=mask))) <= 1e-5
        stats = zarr.open_group(str(out), mode="r")["probability"].attrs["statistics"]
        assert stats["count"] == HEIGHT * WIDTH - (r1 - r0) * (c1 - c0)  # type: ignore[index]


def test_blend_of_a_pointwise_model_is_exact(stack: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 1, 1)
    infer(stack, model, tmp_path / "b.zarr", config(stitch="blend", overlap=5, halo=0))
    got = read_map(tmp_path / "b.zarr")
    assert np.nanmax(np.abs(got - reference(stack, model, halo=0))) <= 1e-6


def _region_map(stack: Path, model: torch.nn.Module, plan: TilePlan) -> np.ndarray:
    group = zarr.open_group(str(stack), mode="r")
    names = tuple(str(n) for n in group.attrs["layers"])  # type: ignore[union-attr]
    stats = [group[n].attrs["statistics"] for n in names]
    spec = InputSpec(names, np.asarray([s["mean"] for s in stats], np.float32),  # type: ignore[index]
                     np.asarray([s["std"] for s in stats], np.float32), False)  # type: ignore[index]  # fmt: skip
    predictor = Predictor(model, config(), plan.halo)
    out = np.empty((HEIGHT, WIDTH), np.float32)
    for i in range(plan.n_regions):
        region = plan.region(i)
        want = plan.input_window(region)
        x, _ = read_input(stack, spec, plan, want, "reflect")
        out[region.slices()] = predict_region(plan, region, x, want, predictor, 4, i)[0]
    return out


def test_blend_is_smoother_than_crop_without_halo(stack: Path) -> None:
    model = tiny_cnn()
    ref = reference(stack, model, halo=3)
    inner = (slice(3, -3), slice(3, -3))  # at the raster edge, halo 0 differs from reflect padding: not a seam
    crop = (_region_map(stack, model, TilePlan(HEIGHT, WIDTH, 12, 0, 0, CHUNK, 1, "crop")) - ref)[inner]
    blend = (_region_map(stack, model, TilePlan(HEIGHT, WIDTH, 12, 0, 6, CHUNK, 1, "blend")) - ref)[inner]

    def jump(err: np.ndarray) -> float:  # the largest step of the error between neighbouring pixels (a seam)
        return float(max(np.nanmax(np.abs(np.diff(err, axis=0))), np.nanmax(np.abs(np.diff(err, axis=1)))))

    assert jump(crop) > 1e-3  # without halo, crop tiles disagree at their borders
    assert jump(blend) < 0.5 * jump(crop)
    assert np.nanmax(np.abs(blend)) <= np.nanmax(np.abs(crop))


@pytest.mark.parametrize("stitch", ["crop", "blend"])
def test_mc_dropout_uncertainty_layer(stack: Path, tmp_path: Path, stitch: str) -> None:
    model = tiny_cnn(dropout=0.3)
    out = tmp_path / "u.zarr"
    infer(stack, model, out, config(mc_samples=3, stitch=stitch, overlap=4 if stitch == "blend" else 0))
    unc = read_map(out, "uncertainty")
    assert np.isnan(unc).sum() == np.isnan(read_map(out)).sum()
    assert np.nanmax(unc) > 0 and np.nanmin(unc) >= 0
