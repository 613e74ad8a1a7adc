"""The output map of tiled inference: a raster stack on the input grid, written region by region with a ledger.

Layout: ``OUT`` is a raster stack (docs/archives.md) created once, atomically, with ``geodl_complete = false``
and the run's settings in ``geodl_inference``. Beside it, the hidden ledger folder ``.OUT.ledger`` holds one small
JSON file per finished region (written to a temporary name and renamed, so it is there whole or not at all).
Regions are whole output chunks, so concurrent writers never touch the same chunk. The finaliser merges the
per-region statistics, writes the stack's root attributes and sets ``geodl_complete = true`` last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import Layer, RunningStats, _create_store, _write_planes
from geodl_hpc.archive.store import COMPLETE_ATTR, PROVENANCE_ATTR, CodecSpec
from geodl_hpc.errors import ArchiveError
from geodl_hpc.osutil import atomic_write_text, fsync_dir, pid_alive

log = logging.getLogger(__name__)

SETTINGS_ATTR = "geodl_inference"
RUN_ID_ATTR = "geodl_inference_id"
PROBABILITY = Layer("probability", "probability of the positive class (sigmoid of the model's logit)", "1", "model")
UNCERTAINTY = Layer("uncertainty", "standard deviation of the probability over MC-dropout passes", "1", "model")
ATTRIBUTION_PREFIX = "attribution_"


def attribution_layer(layer: str) -> Layer:
    """The occlusion attribution band of input ``layer`` (probability minus probability without the layer)."""
    return Layer(
        f"{ATTRIBUTION_PREFIX}{layer}",
        f"occlusion attribution of input layer {layer}: probability minus probability with {layer} at its mean",
        "1",
        "model",
    )


def ledger_folder(out: Path) -> Path:
    """The ledger of ``out``: a hidden sibling folder (kept out of the Zarr hierarchy)."""
    out = Path(out)
    return out.with_name(f".{out.name}.ledger")


class Ledger:
    """One ``region-NNNNNNNN-KEY.json`` per finished region; readers see a region as done or not, never half.

    ``key`` is the map's id (:func:`map_id`), so entries left by an earlier map at the same path never count."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = Path(folder)
        self.key = key

    def path(self, index: int) -> Path:
        return self.folder / f"region-{index:08d}-{self.key}.json"

    def done(self) -> set[int]:
        """Indices of the regions recorded as finished."""
        if not self.folder.is_dir():
            return set()
        out = set()
        suffix = f"-{self.key}.json"
        for p in self.folder.iterdir():
            stem = p.name.removeprefix("region-").removesuffix(suffix)
            if p.name.startswith("region-") and p.name.endswith(suffix) and stem.isdigit():
                out.add(int(stem))
        return out

    def record(self, index: int, entry: dict[str, Any]) -> None:
        """Write region ``index``'s entry atomically (temp file, fsync, rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(index), json.dumps(entry))

    def read(self, index: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path(index).read_text())
        return data

    def done_intact(self, store: Path) -> set[int]:
        """:meth:`done`, less regions whose entry is unreadable or whose output chunks changed since they were
        recorded (``chunk_crc32c``); those entries are removed, so a resumed run redoes the region."""
        from geodl_hpc.archive.integrity import chunk_checks_failed

        intact = set()
        for index in sorted(self.done()):
            try:
                recorded = self.read(index).get("chunk_crc32c") or {}
            except (OSError, ValueError):
                recorded, bad = {}, ["its ledger entry (unreadable)"]
            else:
                bad = chunk_checks_failed(store, recorded)
            if bad:
                log.warning("%s: region %d: %s changed since it was marked done; redoing the region", store, index,
                            bad[0])  # fmt: skip
                self.path(index).unlink(missing_ok=True)
            else:
                intact.add(index)
        return intact


def region_chunk_keys(arrays: Sequence[Any], names: Sequence[str], window: Sequence[int]) -> list[str]:
    """Store keys (``NAME/c/I/J``) of every output chunk that the region ``window`` (r0, r1, c0, c1) covers."""
    r0, r1, c0, c1 = window
    keys = []
    for array, name in zip(arrays, names, strict=True):
        ch, cw = array.chunks[-2:]
        lead = "0/" * (len(array.shape) - 2)
        keys += [
            f"{name}/c/{lead}{i}/{j}" for i in range(r0 // ch, -(-r1 // ch)) for j in range(c0 // cw, -(-c1 // cw))
        ]
    return keys


def stats_to_dict(stats: RunningStats) -> dict[str, Any]:
    """Exact (mergeable) state of a :class:`RunningStats`."""
    return {k: getattr(stats, k) for k in ("count", "total", "mean", "m2", "minimum", "maximum")}


def stats_from_dict(data: dict[str, Any]) -> RunningStats:
    stats = RunningStats()
    for key, value in data.items():
        setattr(stats, key, type(getattr(stats, key))(value))
    return stats


def read_settings(out: Path) -> tuple[dict[str, Any] | None, bool]:
    """The inference settings recorded in ``out`` (None if it is not an inference map) and its completion flag."""
    meta_path = Path(out) / "zarr.json"
    if not meta_path.is_file():
        raise ArchiveError(f"{out}: exists but is not a Zarr store; remove it or choose another output path")
    attrs = json.loads(meta_path.read_text()).get("attributes", {})
    return attrs.get(SETTINGS_ATTR), bool(attrs.get(COMPLETE_ATTR, False))


def map_id(out: Path) -> str:
    """The id given to ``out`` when it was created (names its ledger entries)."""
    attrs = json.loads((Path(out) / "zarr.json").read_text()).get("attributes", {})
    return str(attrs.get(RUN_ID_ATTR, "none"))


def settings_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two settings dicts."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def create_once(out: Path, build: Callable[[Path], None]) -> bool:
    """Create the store at ``out`` with ``build(tmp)`` unless it exists; True if this call created it.

    Built under a private temporary name and renamed into place: with several ranks starting at once exactly
    one rename wins (renaming onto a non-empty folder fails) and the others use the winner's store."""
    out = Path(out)
    if out.exists():
        return False
    if not out.parent.exists():
        raise ArchiveError(f"{out.parent}: output folder does not exist; create it first")
    tmp = out.with_name(f".{out.name}.init-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp)
        try:
            os.rename(tmp, out)
        except OSError:
            if out.exists():
                return False  # another rank created it first
            raise
        fsync_dir(out.parent)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def create_output(
    out: Path, grid: GridSpec, layers: Sequence[Layer], chunk: int, codec: CodecSpec, settings: dict[str, Any]
) -> bool:
    """Create the empty map at ``out`` unless it exists (see :func:`create_once`); True if this call created it."""
    import zarr

    def build(tmp: Path) -> None:
        _create_store(tmp, grid, layers, chunk, codec)
        # A fresh id per created store names its ledger entries: entries of an earlier, deleted map never count.
        attrs: dict[str, Any] = {
            SETTINGS_ATTR: settings,
            RUN_ID_ATTR: uuid.uuid4().hex[:16],
            "layers": [x.name for x in layers],
        }
        zarr.open_group(str(tmp), mode="r+").attrs.update(attrs)

    return create_once(out, build)


def open_arrays(out: Path, names: Sequence[str]) -> list[Any]:
    """The output layer arrays, opened for writing."""
    import zarr

    group = zarr.open_group(str(out), mode="r+")
    return [group[name] for name in names]


def write_region(arrays: Sequence[Any], selection: tuple[slice, slice], planes: Sequence[np.ndarray]) -> None:
    """Write one region (whole chunks) of every output layer."""
    _write_planes(arrays, selection, [np.ascontiguousarray(p, dtype=np.float32) for p in planes])


@contextlib.contextmanager
def _finalise_lock(out: Path) -> Iterator[bool]:
    """An exclusive lock file beside ``out``; yields False when a live process holds it (a stale one is taken)."""
    lock = out.with_name(f".{out.name}.finalise.lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            text = lock.read_text().strip() if lock.exists() else ""
            if text.isdigit() and pid_alive(int(text)) and int(text) != os.getpid():
                yield False
                return
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)
        return
    yield False


def _wait_for_finaliser(out: Path, timeout_s: float = 300.0) -> bool:
    """Wait while another live process finalises ``out``; True if it ended complete."""
    import time

    lock = out.with_name(f".{out.name}.finalise.lock")
    deadline = time.monotonic() + timeout_s
    while lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return read_settings(out)[1]


def finalise_once(out: Path, n_items: int, write: Callable[[Ledger], None]) -> bool:
    """Run ``write(ledger)`` once every item is in the ledger, in one process only; True if ``out`` is complete.

    ``write`` must set the completion flag as its last write; the ledger is removed after it."""
    if read_settings(out)[1]:
        return True
    ledger = Ledger(ledger_folder(out), map_id(out))
    if set(range(n_items)) - ledger.done():
        return False
    with _finalise_lock(out) as mine:
        if not mine:
            return _wait_for_finaliser(out)
        if read_settings(out)[1]:
            return True
        write(ledger)
        shutil.rmtree(ledger.folder, ignore_errors=True)
    return True


def finalise(out: Path, n_regions: int, layer_names: Sequence[str], grid: GridSpec, record: dict[str, Any]) -> bool:
    """Mark ``out`` complete once every region is in the ledger; True if it is complete after this call.

    Statistics are merged from the ledger in region order, so they do not depend on which rank did what."""
    import zarr

    out = Path(out)

    def write(ledger: Ledger) -> None:
        stats = {name: RunningStats() for name in layer_names}
        for index in range(n_regions):
            entry = ledger.read(index)
            for name in layer_names:
                stats[name].merge(stats_from_dict(entry["stats"][name]))
        group = zarr.open_group(str(out), mode="r+")
        for name in layer_names:
            group[name].attrs["statistics"] = stats[name].as_dict()
        group.attrs.update({"layers": list(layer_names), **grid.root_attrs(), PROVENANCE_ATTR: record})
        group.attrs[COMPLETE_ATTR] = True  # the last write: the map is complete from here on

    return finalise_once(out, n_regions, write)
