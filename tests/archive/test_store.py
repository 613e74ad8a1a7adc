"""Crash-safe staging: nothing half-written looks complete, nothing already written is lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geodl_hpc.archive.store import (
    CodecSpec,
    archive_kind,
    clean_stale_partials,
    file_sha256,
    provenance,
    require_complete,
    staged_output,
)
from geodl_hpc.errors import ArchiveError, ConfigError, InputDataError


def test_staged_output_moves_into_place_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "a.zarr"
    with staged_output(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.zarr.partial-")
        tmp.mkdir()
        (tmp / "x").write_text("1")
        assert not out.exists()
    assert (out / "x").read_text() == "1"
    assert list(tmp_path.iterdir()) == [out]


def test_failure_leaves_nothing_and_keeps_existing(tmp_path: Path) -> None:
    out = tmp_path / "a.zarr"
    out.mkdir()
    (out / "old").write_text("precious")
    with pytest.raises(RuntimeError), staged_output(out, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("half")
        raise RuntimeError("killed mid-write")
    assert (out / "old").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "a.zarr"
    out.mkdir()
    with pytest.raises(ArchiveError, match=r"a\.zarr: already exists; pass --overwrite"), staged_output(out):
        pass
    with staged_output(out, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert (out / "new").exists() and not (out / "old").exists()


def test_stale_partials_of_dead_processes_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "a.zarr"
    dead = tmp_path / ".a.zarr.partial-999999999"
    live = tmp_path / f".a.zarr.partial-{os.getpid()}"
    dead.mkdir()
    live.mkdir()
    assert clean_stale_partials(out) == [dead]
    assert live.exists()


def test_missing_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="output folder does not exist"), staged_output(tmp_path / "no" / "a.zarr"):
        pass


def test_provenance_records_sources_and_codec(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    record = provenance([src], chunks={"y": 8}, codec=CodecSpec("zstd", 5), extra={"note": 1})
    assert record["sources"][0]["sha256"] == file_sha256(src)
    assert record["sources"][0]["sha256"].startswith("ba7816bf")  # sha256("abc")
    assert record["codec"] == {"name": "zstd", "level": 5}
    assert record["tool"].startswith("geodl_hpc ")
    assert record["note"] == 1


def test_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown codec 'lzma'"):
        CodecSpec("lzma").zarr_compressors()


def test_non_archives_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such archive"):
        archive_kind(tmp_path / "none.zarr")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with pytest.raises(ArchiveError, match="not a geodl archive"):
        archive_kind(plain)


def test_incomplete_zarr_is_reported_and_refused(tmp_path: Path) -> None:
    import zarr

    path = tmp_path / "half.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.attrs["geodl_kind"] = "raster"
    assert archive_kind(path) == ("raster", False)
    with pytest.raises(ArchiveError, match="archive is incomplete"):
        require_complete(path)
    group.attrs["geodl_complete"] = True
    assert require_complete(path, "raster") == "raster"
    with pytest.raises(ArchiveError, match="is a raster archive, but a catalog archive is needed"):
        require_complete(path, "catalog")


def test_require_files_names_the_missing_one(tmp_path: Path) -> None:
    from geodl_hpc.archive.store import require_files

    with pytest.raises(InputDataError, match=r"gone\.tif: no such file"):
        require_files([tmp_path / "gone.tif"])
    with pytest.raises(InputDataError, match="is a folder"):
        require_files([tmp_path])
