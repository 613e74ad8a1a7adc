"""Crash-safe archive writing, provenance records and archive discovery shared by every archive kind.

An archive is written under a hidden temporary sibling name and renamed into place only when it is
complete, and its root carries ``geodl_complete = true`` written last. A killed ingest therefore
leaves at most a ``.NAME.partial-PID`` folder, never something at ``NAME`` that looks complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geodl_hpc import __version__
from geodl_hpc.errors import ArchiveError, ConfigError, InputDataError
from geodl_hpc.osutil import pid_alive

Kind = Literal["raster", "waveforms", "catalog", "forecast", "hindcast_forecasts", "graph"]
KIND_ATTR = "geodl_kind"
COMPLETE_ATTR = "geodl_complete"
PROVENANCE_ATTR = "geodl_provenance"
PARQUET_META_KEY = b"geodl"


@dataclass(frozen=True)
class CodecSpec:
    """Compression of archive arrays: ``zstd`` (default), ``blosc`` (shuffled zstd), ``gzip`` or ``none``."""

    name: str = "zstd"
    level: int = 3

    def zarr_compressors(self) -> list[Any]:
        """The zarr v3 bytes codecs for this spec: the compressor, then a crc32c of the stored chunk (always)."""
        from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

        from geodl_hpc.archive.integrity import checksum_codec

        if self.name == "zstd":
            return [ZstdCodec(level=self.level), checksum_codec()]
        if self.name == "blosc":
            return [BloscCodec(cname="zstd", clevel=self.level, shuffle="shuffle"), checksum_codec()]
        if self.name == "gzip":
            return [GzipCodec(level=self.level), checksum_codec()]
        if self.name == "none":
            return [checksum_codec()]
        raise ConfigError(f"storage.codec: unknown codec {self.name!r}; use one of zstd, blosc, gzip, none")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level}


def checked_compressors() -> list[Any]:
    """The default codecs (zstd + crc32c) for arrays without a configured codec: every chunk gets a checksum."""
    return CodecSpec().zarr_compressors()


def checked_encoding(ds: Any, encoding: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """xarray ``to_zarr`` encoding giving every variable of ``ds`` the default codecs with a chunk checksum."""
    out = {str(name): {"compressors": checked_compressors()} for name in ds.variables}
    for name, extra in (encoding or {}).items():
        out[name] = {**out.get(name, {}), **extra}
    return out


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_files(paths: Sequence[Path]) -> list[Path]:
    """Return the paths, or raise a one-line error naming the first that is missing or not a file."""
    if not paths:
        raise InputDataError("no source files given; name at least one input file")
    out = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputDataError(f"{path}: no such file; check the path")
        if path.is_dir():
            raise InputDataError(f"{path}: is a folder; name the files inside it (a shell glob works)")
        out.append(path)
    return out


def provenance(
    sources: Sequence[Path],
    *,
    chunks: dict[str, int] | None = None,
    codec: CodecSpec | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record kept in every archive: sources with sha256, tool, command, time, storage."""
    record: dict[str, Any] = {
        "sources": [{"path": str(Path(p).resolve()), "sha256": file_sha256(Path(p))} for p in sources],
        "tool": f"geodl_hpc {__version__}",
        "command": shlex.join(sys.argv),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "chunks": chunks or {},
        "codec": codec.describe() if codec else None,
    }
    if extra:
        record.update(extra)
    return record


def _partial_name(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def clean_stale_partials(out: Path) -> list[Path]:
    """Remove leftovers of earlier interrupted writes of ``out`` whose process is gone."""
    removed = []
    for candidate in out.parent.glob(f".{out.name}.partial-*"):
        pid_text = candidate.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            _remove(candidate)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def staged_output(out: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to write into; move it to ``out`` only if the block succeeds.

    On any failure the temporary is removed and an existing ``out`` is untouched. With ``overwrite``
    the old archive is replaced only after the new one is complete.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ArchiveError(f"{out}: already exists; pass --overwrite to replace it or choose another output path")
    if not out.parent.exists():
        raise ArchiveError(f"{out.parent}: output folder does not exist; create it first")
    clean_stale_partials(out)
    tmp = _partial_name(out)
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        _remove(old)
    else:
        os.replace(tmp, out)


def mark_complete_zarr(path: Path) -> None:
    """Set the completion flag on a Zarr group: the last write of every ingest."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    group.attrs[COMPLETE_ATTR] = True


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").exists() or (path / ".zgroup").exists())


def archive_kind(path: Path) -> tuple[Kind, bool]:
    """Kind and completeness of an archive at ``path``; a one-line error if it is none of ours."""
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"{path}: no such archive; check the path or run `geodl ingest` first")
    if _is_zarr(path):
        meta = json.loads((path / "zarr.json").read_text()) if (path / "zarr.json").exists() else {}
        attrs = meta.get("attributes", {})
        kind = attrs.get(KIND_ATTR)
        if kind not in ("raster", "waveforms", "catalog", "forecast", "hindcast_forecasts", "graph"):
            raise ArchiveError(f"{path}: a Zarr store but not a geodl archive (no {KIND_ATTR}); use `geodl ingest`")
        return kind, bool(attrs.get(COMPLETE_ATTR, False)) and ".partial-" not in path.name
    if path.suffix == ".parquet" and path.is_file():
        meta = parquet_geodl_meta(path)
        if meta is None:
            raise ArchiveError(f"{path}: a Parquet file but not a geodl catalog; ingest it with `geodl ingest catalog`")
        return "catalog", bool(meta.get(COMPLETE_ATTR, False))
    raise ArchiveError(f"{path}: not a geodl archive (expected a .zarr folder or a .parquet catalog)")


def parquet_geodl_meta(path: Path) -> dict[str, Any] | None:
    """The geodl metadata block of a Parquet catalog, or None when it has none."""
    import pyarrow.parquet as pq

    try:
        schema_meta = pq.read_schema(path).metadata or {}
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ArchiveError(f"{path}: unreadable Parquet file ({exc.__class__.__name__}); re-run the ingest") from None
    raw = schema_meta.get(PARQUET_META_KEY)
    return json.loads(raw) if raw else None


def require_complete(path: Path, expected: Kind | None = None) -> Kind:
    """Check that ``path`` is a complete archive (of the expected kind) before a job reads it."""
    kind, complete = archive_kind(path)
    if not complete:
        raise ArchiveError(f"{path}: archive is incomplete (an ingest was interrupted); re-run the ingest")
    if _is_zarr(Path(path)):
        from geodl_hpc.archive.integrity import warn_if_unchecked

        warn_if_unchecked(Path(path))
    if expected and kind != expected:
        raise ArchiveError(f"{path}: is a {kind} archive, but a {expected} archive is needed here")
    return kind
