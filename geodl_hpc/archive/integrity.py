"""Chunk checksums: every chunk we write ends in a crc32c (Zarr v3's ``crc32c`` codec), checked on every read.

Writing: :meth:`CodecSpec.zarr_compressors` puts :func:`checksum_codec` last in every array's codec chain, so the
stored chunk is ``compressed bytes + crc32c``. Reading: zarr's codec checks the crc before decompressing; with
:func:`enable_checked_reads` (the CLI and batch processes call it) a mismatch or an undecodable chunk becomes a
:class:`ChunkDamagedError` naming the array and the chunk instead of zarr's anonymous ``ValueError``.
:func:`verify_zarr` reads every chunk of a store and lists what is damaged; arrays written before checksums
existed are reported as unchecked (their chunks are still decoded, so a torn chunk still shows).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geodl_hpc.errors import ArchiveError

log = logging.getLogger(__name__)

CHECKSUM_CODEC = "crc32c"
_warned: set[str] = set()


class ChunkDamagedError(ArchiveError):
    """A stored chunk fails its checksum or cannot be decoded (names the array and the chunk)."""


def checksum_codec() -> Any:
    """The bytes-to-bytes codec that appends (and on read checks) a crc32c of each stored chunk."""
    from zarr.codecs import Crc32cCodec

    return Crc32cCodec()


def crc32c_ok(raw: bytes) -> bool:
    """True when the last four bytes of ``raw`` are the little-endian crc32c of the rest."""
    import google_crc32c

    return len(raw) >= 4 and google_crc32c.value(raw[:-4]).to_bytes(4, "little") == raw[-4:]


def split_chunk_key(key: str) -> tuple[str, str]:
    """``layers/dist_fault/c/3/4`` -> (``layers/dist_fault``, ``(3, 4)``); v2 keys ``a/3.4`` likewise."""
    if "/c/" in f"/{key}":
        array, _, chunk = f"/{key}".rpartition("/c/")
        return array.strip("/") or "/", "(" + ", ".join(chunk.split("/")) + ")"
    array, _, chunk = key.rpartition("/")
    return array or "/", "(" + ", ".join(chunk.split(".")) + ")"


def damaged_message(root: str, key: str, why: str) -> str:
    array, chunk = split_chunk_key(key)
    return (
        f"{root}: array {array}, chunk {chunk} ({key}) is damaged ({why}); re-create the file by re-running the "
        f"step that wrote it (geodl verify {root} lists every damaged chunk)"
    )


def _store_root(byte_getter: Any) -> tuple[str, str]:
    """(archive, chunk key inside it): the outermost Zarr folder above a local chunk, whatever was opened."""
    store = getattr(byte_getter, "store", None)
    root = getattr(store, "root", None)
    key = str(getattr(byte_getter, "path", byte_getter))
    if root is None:
        return str(store), key
    top = Path(root)
    while (top.parent / "zarr.json").is_file() and top.parent != top:
        top = top.parent
    return str(top), str((Path(root) / key).relative_to(top))


def _checked_pipeline_class() -> type[Any]:
    from zarr.core.codec_pipeline import BatchedCodecPipeline

    class CheckedCodecPipeline(BatchedCodecPipeline):
        """zarr's pipeline, but a chunk that fails to decode raises :class:`ChunkDamagedError` naming it."""

        async def read_batch(self, batch_info: Iterable[Any], out: Any, drop_axes: tuple[int, ...] = ()) -> None:
            batch = list(batch_info)
            try:
                await super().read_batch(batch, out, drop_axes)
            except ArchiveError:
                raise
            except (ValueError, RuntimeError, TypeError) as exc:
                for byte_getter, spec, *_ in batch:
                    raw = await byte_getter.get(spec.prototype)
                    if raw is None:
                        continue
                    root, key = _store_root(byte_getter)
                    data = raw.to_bytes()
                    if "checksum" in str(exc).lower() and not crc32c_ok(data):
                        raise ChunkDamagedError(damaged_message(root, key, "crc32c checksum mismatch")) from None
                    if len(batch) == 1 or "checksum" not in str(exc).lower():
                        why = f"cannot be decoded: {type(exc).__name__}: {str(exc)[:80]}"
                        raise ChunkDamagedError(damaged_message(root, key, why)) from None
                raise

    CheckedCodecPipeline.__module__ = __name__
    CheckedCodecPipeline.__qualname__ = "CheckedCodecPipeline"
    return CheckedCodecPipeline


def enable_checked_reads() -> None:
    """Make zarr (in this process) report a damaged chunk as a :class:`ChunkDamagedError` naming it."""
    import zarr
    from zarr.registry import register_pipeline

    name = f"{__name__}.CheckedCodecPipeline"
    if zarr.config.get("codec_pipeline.path") == name:
        return
    register_pipeline(_checked_pipeline_class())
    zarr.config.set({"codec_pipeline.path": name})


def _array_metas(root: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """(array path, zarr.json) of every Zarr v3 array under ``root``."""
    for meta_path in sorted(root.rglob("zarr.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            yield str(meta_path.parent.relative_to(root)), {"node_type": "broken"}
            continue
        if meta.get("node_type") == "array":
            yield str(meta_path.parent.relative_to(root)), meta


def has_checksums(meta: dict[str, Any]) -> bool:
    """True when an array's codec chain ends in crc32c (the stored bytes carry a checksum)."""
    codecs = meta.get("codecs") or []
    return bool(codecs) and isinstance(codecs[-1], dict) and codecs[-1].get("name") == CHECKSUM_CODEC


def warn_if_unchecked(path: Path) -> bool:
    """One warning per store when any array of ``path`` was written without chunk checksums; True if so."""
    path = Path(path)
    metas = _array_metas(path)
    unchecked = [name for name, meta in metas if meta.get("node_type") == "array" and not has_checksums(meta)]
    key = str(path.resolve())
    if unchecked and key not in _warned:
        _warned.add(key)
        log.warning(
            "%s: written without chunk checksums (%d array(s), e.g. %s); a damaged chunk may go unnoticed; "
            "re-ingest it to add them",
            path,
            len(unchecked),
            unchecked[0],
        )
    return bool(unchecked)


@dataclasses.dataclass
class VerifyReport:
    """What :func:`verify_zarr` found in one store."""

    path: str
    arrays: int = 0
    chunks: int = 0
    unchecked_arrays: list[str] = dataclasses.field(default_factory=list)
    damaged: list[str] = dataclasses.field(default_factory=list)  # one message per damaged chunk

    @property
    def ok(self) -> bool:
        return not self.damaged


def _chunk_files(array_dir: Path, meta: dict[str, Any]) -> list[Path]:
    encoding = (meta.get("chunk_key_encoding") or {}).get("name", "default")
    base = array_dir / "c" if encoding == "default" else array_dir
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name != "zarr.json")


def verify_zarr(path: Path) -> VerifyReport:
    """Check every chunk of every array under ``path``: crc32c where the array has one, else a full decode."""
    import zarr

    path = Path(path)
    report = VerifyReport(str(path))
    for name, meta in _array_metas(path):
        if meta.get("node_type") == "broken":
            report.damaged.append(f"{path}: {name}/zarr.json is unreadable")
            continue
        report.arrays += 1
        array_dir = path / name
        files = _chunk_files(array_dir, meta)
        report.chunks += len(files)
        if has_checksums(meta):
            for f in files:
                if not crc32c_ok(f.read_bytes()):
                    report.damaged.append(damaged_message(str(path), str(f.relative_to(path)), "crc32c mismatch"))
            continue
        report.unchecked_arrays.append(name)
        array: Any = zarr.open_array(str(array_dir), mode="r")
        import itertools

        grid = [range(-(-s // c)) for s, c in zip(array.shape, array.chunks, strict=True)]
        for index in itertools.product(*grid):
            try:
                array.get_block_selection(index)
            except Exception as exc:  # any codec failure means the chunk is damaged
                key = f"{name}/c/" + "/".join(map(str, index))
                report.damaged.append(damaged_message(str(path), key, f"cannot be decoded: {type(exc).__name__}"))
    return report


def zarr_roots(path: Path) -> list[Path]:
    """The outermost Zarr stores at or under ``path`` (a store, or a run folder holding several)."""
    path = Path(path)
    if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
        return [path]
    found: list[Path] = []
    for meta in sorted(path.rglob("zarr.json")):
        store = meta.parent
        if (store.parent / "zarr.json").is_file() or any(store.is_relative_to(f) for f in found):
            continue
        found.append(store)
    return found


def verify_ledgers(path: Path) -> tuple[int, list[str]]:
    """(entries read, damage) of every ledger (``.NAME.ledger/*.json``) at or under ``path``: each entry must parse,
    and the output chunks it recorded as done must still carry the checksums it noted."""
    path = Path(path)
    folders = [path] if path.name.endswith(".ledger") else sorted(p for p in path.rglob(".*.ledger") if p.is_dir())
    if path.is_dir() and not path.name.endswith(".ledger"):
        sibling = path.with_name(f".{path.name}.ledger")
        folders += [sibling] if sibling.is_dir() else []
    count, damaged = 0, []
    for folder in folders:
        for entry in sorted(folder.glob("*.json")):
            count += 1
            try:
                data = json.loads(entry.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                damaged.append(f"{entry}: ledger entry is unreadable; delete it and resume (the region is redone)")
                continue
            store = folder.with_name(folder.name.removeprefix(".").removesuffix(".ledger"))
            for key in chunk_checks_failed(store, data.get("chunk_crc32c") or {}):
                damaged.append(damaged_message(str(store), key, f"changed since {entry.name} marked it done"))
    return count, damaged


def chunk_crc32c(store: Path, keys: Iterable[str]) -> dict[str, str]:
    """crc32c (hex) of each stored chunk file ``store/key`` that exists, for a ledger entry to record."""
    import google_crc32c

    out = {}
    for key in keys:
        f = Path(store) / key
        if f.is_file():
            out[key] = f"{google_crc32c.value(f.read_bytes()):08x}"
    return out


def chunk_checks_failed(store: Path, recorded: dict[str, str]) -> list[str]:
    """Keys whose chunk file is gone or differs from the crc32c a ledger recorded for it."""
    now = chunk_crc32c(store, recorded)
    return [key for key, crc in recorded.items() if now.get(key) != crc]
