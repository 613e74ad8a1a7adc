"""The infer job end to end (map, COG, PNG, inspect) and its one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodl_hpc.archive.inspect import describe
from geodl_hpc.errors import ArchiveError, ConfigError, GeodlError, InputDataError
from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.runner import infer
from jobs.infer import main

from .conftest import HEIGHT, WIDTH, config, tiny_cnn, write_checkpoint

LAYERS = ["synthetic_0", "synthetic_1", "synthetic_2"]


def test_job_writes_map_cog_and_png(stack: Path, tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "best.pt", LAYERS)
    out = tmp_path / "run" / "map.zarr"
    result = main(config(archive=str(stack), output=str(out), checkpoint=str(ckpt)))
    assert result["complete"] and Path(result["files"]["png"]).stat().st_size > 0
    info = describe(out)
    assert info["complete"] and info["variables"] == ["probability"] and info["crs_epsg"] == 32750
    assert info["dims"] == {"y": HEIGHT, "x": WIDTH}
    with rasterio.open(result["files"]["tif"]) as src:
        assert src.crs.to_epsg() == 32750
        assert src.descriptions == ("probability",)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert tuple(src.transform)[:6] == pytest.approx(tuple(info["provenance"]["inference"]["grid"]["transform"]))
        band = src.read(1)
        assert np.isnan(band).any() and np.nanmax(band) <= 1.0
    again = main(config(archive=str(stack), output=str(out), checkpoint=str(ckpt)))
    assert again["status"] == "noop" and again["files"] == {}


def test_missing_checkpoint(stack: Path, tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nope\.pt: no such checkpoint"):
        infer(stack, tmp_path / "nope.pt", tmp_path / "m.zarr", config(checkpoint=str(tmp_path / "nope.pt")))
    assert not (tmp_path / "m.zarr").exists()


def test_layer_mismatch_between_model_and_archive(stack: Path, tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "a.pt", ["synthetic_0", "magnetics", "synthetic_2"])
    with pytest.raises(InputDataError, match="has no layer 'magnetics' that the model needs"):
        infer(stack, ckpt, tmp_path / "m.zarr", config(checkpoint=str(ckpt)))
    with pytest.raises(InputDataError, match="the model takes 5 input channels but 3 layers"):
        infer(stack, tiny_cnn(5), tmp_path / "m.zarr", config())


def test_bad_halo_and_settings() -> None:
    with pytest.raises(ConfigError, match="halo: must be >= 0"):
        InferJobConfig(halo=-1)
    with pytest.raises(ConfigError, match="stitch=blend needs overlap > 0"):
        InferJobConfig(stitch="blend")
    with pytest.raises(ConfigError, match="rank"):
        InferJobConfig(rank=2, n_ranks=2)


def test_crop_with_halo_below_receptive_field(stack: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="less than the model's receptive-field margin"):
        infer(stack, tiny_cnn(), tmp_path / "m.zarr", config(halo=1))


def test_complete_output_with_other_settings(stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.zarr"
    infer(stack, tiny_cnn(), out, config())
    with pytest.raises(ArchiveError, match=r"holds a complete map made with other settings \(changed: tile\)"):
        infer(stack, tiny_cnn(), out, config(tile=10))
    assert infer(stack, tiny_cnn(), out, config(tile=10, overwrite=True))["complete"]


def test_errors_are_one_line(stack: Path, tmp_path: Path) -> None:
    with pytest.raises(GeodlError) as info:
        infer(stack, tmp_path / "x.pt", tmp_path / "m.zarr", config())
    assert "\n" not in str(info.value)


def test_job_with_a_model_section_and_two_ranks(stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.zarr"
    first = main(config(archive=str(stack), output=str(out), rank=0, n_ranks=2, export_png=False))
    assert first["status"] == "partial" and first["files"] == {}
    second = main(config(archive=str(stack), output=str(out), rank=1, n_ranks=2, export_png=False))
    assert second["complete"] and set(second["files"]) == {"tif"}


def test_job_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such archive"):
        main(config(archive=str(tmp_path / "none.zarr"), output=str(tmp_path / "m.zarr")))
