"""Integrity: every chunk carries a crc32c, a damaged chunk is a one-line error naming it, `geodl verify`
lists damage, old archives still open with one warning, and a resumed run redoes a damaged region (issue 13)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from geodl_hpc.archive.integrity import has_checksums, verify_zarr
from geodl_hpc.inference.synthetic import synthetic_stack
from tests.conftest import RunGeodl
from tests.inference.conftest import write_checkpoint

LAYERS = ["synthetic_0", "synthetic_1", "synthetic_2"]


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    return synthetic_stack(tmp_path / "in put ü.zarr", 45, 53, n_layers=3, chunk=16, seed=1, nodata_box=(5, 11, 30, 41))


def flip_byte(path: Path, at: int = 7) -> None:
    raw = bytearray(path.read_bytes())
    raw[at % len(raw)] ^= 0x40
    path.write_bytes(bytes(raw))


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("geodl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def infer_config(tmp_path: Path, stack: Path, out: Path, **extra: Any) -> Path:
    ckpt = write_checkpoint(tmp_path / "best.pt", LAYERS)
    doc = {"job": "infer", "archive": str(stack), "checkpoint": str(ckpt), "output": str(out), "tile": 12,
           "region_chunks": 1, "batch_size": 4, "progress": False, "threads": 1, "export_png": False}  # fmt: skip
    doc.update(extra)
    path = tmp_path / f"infer-{len(list(tmp_path.glob('infer-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def strip_checksums(store: Path) -> None:
    """Make ``store`` look as archives did before checksums: no crc32c codec, no 4-byte trailer."""
    for meta_path in store.rglob("zarr.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("node_type") != "array" or not has_checksums(meta):
            continue
        meta["codecs"] = meta["codecs"][:-1]
        meta_path.write_text(json.dumps(meta))
        for chunk in (meta_path.parent / "c").rglob("*"):
            if chunk.is_file():
                chunk.write_bytes(chunk.read_bytes()[:-4])


def test_every_array_we_write_carries_checksums(stack: Path) -> None:
    report = verify_zarr(stack)
    assert report.ok and report.arrays >= 3 and report.chunks > 0 and report.unchecked_arrays == []


def test_bit_flip_in_an_archive_chunk_stops_infer_with_one_line(geodl: RunGeodl, tmp_path: Path, stack: Path) -> None:
    flip_byte(stack / "synthetic_1" / "c" / "1" / "2")
    out = tmp_path / "map.zarr"
    line = one_line_error(geodl("infer", infer_config(tmp_path, stack, out)), "array synthetic_1, chunk (1, 2)")
    assert "crc32c" in line and "geodl verify" in line
    assert not (out.exists() and json.loads((out / "zarr.json").read_text())["attributes"].get("geodl_complete"))

    verify = geodl("verify", stack)
    one_line_error(verify, "1 damaged chunk")
    assert verify.stdout.count("DAMAGED") == 1 and "synthetic_1/c/1/2" in verify.stdout


def test_old_archive_without_checksums_opens_with_one_warning(geodl: RunGeodl, tmp_path: Path, stack: Path) -> None:
    strip_checksums(stack)
    out = tmp_path / "map.zarr"
    ran = geodl("infer", infer_config(tmp_path, stack, out))
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("written without chunk checksums") == 1
    verify = geodl("verify", stack, "--json")
    assert verify.returncode == 0, verify.stderr
    (store,) = json.loads(verify.stdout)["stores"]
    assert len(store["unchecked_arrays"]) >= 3
    # A torn chunk in an unchecked archive still shows: verify decodes every chunk of such arrays.
    chunk = stack / "synthetic_0" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:5])
    one_line_error(geodl("verify", stack), "synthetic_0/c/0/0", "cannot be decoded")


def test_resumed_run_redoes_a_region_whose_chunk_was_damaged(geodl: RunGeodl, tmp_path: Path, stack: Path) -> None:
    reference = tmp_path / "reference.zarr"
    assert geodl("infer", infer_config(tmp_path, stack, reference)).returncode == 0
    out = tmp_path / "map.zarr"
    half = geodl("infer", infer_config(tmp_path, stack, out, rank=0, n_ranks=2))
    assert half.returncode == 0, half.stderr
    ledger = tmp_path / ".map.zarr.ledger"
    entries = sorted(ledger.glob("region-*.json"))
    assert entries and all(json.loads(e.read_text())["chunk_crc32c"] for e in entries)
    damaged_key = next(iter(json.loads(entries[0].read_text())["chunk_crc32c"]))
    flip_byte(out / damaged_key)
    report = geodl("verify", tmp_path, "--json")
    assert report.returncode == 2 and any(damaged_key in d for d in json.loads(report.stdout)["damaged"])

    again = geodl("infer", infer_config(tmp_path, stack, out, rank=0, n_ranks=2))
    assert again.returncode == 0, again.stderr
    assert "changed since it was marked done; redoing the region" in again.stderr
    assert json.loads(again.stdout)["regions_computed"] == 1  # only the damaged region, not the whole half
    rest = geodl("infer", infer_config(tmp_path, stack, out, rank=1, n_ranks=2))
    assert rest.returncode == 0 and json.loads(rest.stdout)["complete"]
    import zarr

    got = np.asarray(zarr.open_array(str(out / "probability"), mode="r")[...])
    want = np.asarray(zarr.open_array(str(reference / "probability"), mode="r")[...])
    np.testing.assert_array_equal(got, want)
    assert geodl("verify", out).returncode == 0


def _checkpoint(path: Path, model: Any, width: int = 4) -> Path:
    import torch

    config = {"model": {"name": "prospectivity_cnn", "width": width, "depth": 3, "per_pixel": True, "dropout": 0.0},
              "data": {"layers": LAYERS, "label": "deposits"}}  # fmt: skip
    torch.save({"step": 1, "model": model.state_dict(), "config": json.dumps(config)}, path)
    return path


def test_a_fold_checkpoint_of_the_main_job_loads_in_infer(geodl: RunGeodl, tmp_path: Path, stack: Path) -> None:
    """The main job trains chip-pooled wrappers (weights under ``net.``); their best.pt maps like any other."""
    from geodl_hpc.evaluation.cnn_folds import chip_model as _chip_model
    from tests.inference.conftest import tiny_cnn

    fold = _checkpoint(tmp_path / "fold-best.pt", _chip_model(tiny_cnn(), "max"))
    plain = _checkpoint(tmp_path / "plain-best.pt", tiny_cnn())
    maps = []
    for name, ckpt in (("fold", fold), ("plain", plain)):
        cfg = infer_config(tmp_path, stack, tmp_path / f"{name}.zarr", checkpoint=str(ckpt))
        ran = geodl("infer", cfg)
        assert ran.returncode == 0, ran.stderr
        import zarr

        maps.append(np.asarray(zarr.open_array(str(tmp_path / f"{name}.zarr" / "probability"), mode="r")[...]))
    np.testing.assert_array_equal(maps[0], maps[1])


def test_a_checkpoint_of_another_config_is_one_line_naming_file_and_key(
    geodl: RunGeodl, tmp_path: Path, stack: Path
) -> None:
    from tests.inference.conftest import tiny_cnn

    other = _checkpoint(tmp_path / "other.pt", tiny_cnn(), width=8)  # weights of width 4, config says 8
    cfg = infer_config(tmp_path, stack, tmp_path / "m.zarr", checkpoint=str(other))
    one_line_error(geodl("infer", cfg), "other.pt: checkpoint does not fit model prospectivity_cnn (width 8", "key '")
    torn = tmp_path / "torn.pt"
    torn.write_bytes(other.read_bytes()[:300])
    cfg = infer_config(tmp_path, stack, tmp_path / "m.zarr", checkpoint=str(torn))
    one_line_error(geodl("infer", cfg), "torn.pt: unreadable checkpoint")
    assert not (tmp_path / "m.zarr").exists()
