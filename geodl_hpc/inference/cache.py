"""Decoded input chunks kept between regions, so a region's halo reuses what its neighbours already decoded.

A region's input window (region + halo) reaches into the neighbouring chunks; without a cache each region decodes
those whole chunks again (2.25-4x the input with 2 x 2-chunk regions). ``ChunkCache`` reads every chunk a window
touches whole (all missing chunks of all layers in one zarr async call), keeps the decoded chunks least recently
used first out beyond ``max_bytes``, and drops a chunk early once no later region in the run needs it
(``retire``), so memory stays at the working set (about two chunk rows of the raster), not the raster.
Values are the stored bytes, so results are bitwise those of reading the window directly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from geodl_hpc.inference.geometry import Window

#: Default bound of the decoded-chunk cache per process (bytes).
DEFAULT_CACHE_BYTES = 256 << 20

Key = tuple[int, int, int]  # (layer, chunk row, chunk col)


def _store_arrays(store: Any) -> dict[str, Any]:
    """The arrays of a raster stack in a zarr ``Store`` object (e.g. a generated one) as ``AsyncArray`` objects."""
    import zarr.api.asynchronous as zasync
    from zarr.core.sync import sync

    async def _open() -> dict[str, Any]:
        group = await zasync.open_group(store, mode="r")
        return {name: arr async for name, arr in group.arrays()}

    result: dict[str, Any] = sync(_open())
    return result


class ChunkCache:
    """Whole decoded chunks of ``layers`` of the raster archive at ``path``, bounded by ``max_bytes``.

    ``store`` (a zarr store holding the same archive) replaces reading from ``path``: benchmarks pass a store that
    generates chunks on read, so a continental-size input needs no disk."""

    def __init__(
        self, path: str, layers: tuple[str, ...], max_bytes: int = DEFAULT_CACHE_BYTES, store: Any = None
    ) -> None:
        from geodl_hpc.pipeline.decode import _async_arrays

        arrays = _async_arrays(path) if store is None else _store_arrays(store)
        self.arrays = [arrays[name] for name in layers]
        self.chunks = [tuple(int(c) for c in a.chunks[-2:]) for a in self.arrays]
        self.shapes = [tuple(int(s) for s in a.shape[-2:]) for a in self.arrays]
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.decoded = 0  # chunks decoded (for tests and benchmarks)
        self.hits = 0
        self._store: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._last_use: dict[Key, int] = {}
        self._lock = threading.Lock()

    def keys(self, window: Window) -> list[Key]:
        """The chunks of every layer that ``window`` (inside the raster) touches."""
        out = []
        for layer, (ch, cw) in enumerate(self.chunks):
            for i in range(window.r0 // ch, (window.r1 - 1) // ch + 1):
                for j in range(window.c0 // cw, (window.c1 - 1) // cw + 1):
                    out.append((layer, i, j))
        return out

    def plan(self, windows: Iterable[Window]) -> None:
        """Windows in the order they will be read: a chunk is dropped after the last one that needs it."""
        self._last_use = {key: k for k, window in enumerate(windows) for key in self.keys(window)}

    def retire(self, step: int) -> None:
        """Drop the chunks that no window after the ``step``-th (of ``plan``) needs."""
        with self._lock:
            for key in [k for k in self._store if self._last_use.get(k, -1) <= step]:
                self.nbytes -= self._store.pop(key).nbytes

    def _fetch(self, keys: list[Key]) -> list[np.ndarray]:
        import asyncio

        from zarr.core.sync import sync

        def sel(key: Key) -> tuple[slice, slice]:
            layer, i, j = key
            (ch, cw), (h, w) = self.chunks[layer], self.shapes[layer]
            return slice(i * ch, min((i + 1) * ch, h)), slice(j * cw, min((j + 1) * cw, w))

        async def _read() -> list[Any]:
            return list(await asyncio.gather(*(self.arrays[k[0]].getitem(sel(k)) for k in keys)))

        return [np.asarray(block) for block in sync(_read())]

    def read(self, window: Window) -> list[np.ndarray]:
        """Each layer over ``window`` (inside the raster), assembled from cached or freshly decoded chunks."""
        keys = self.keys(window)
        with self._lock:
            found = {k: self._store[k] for k in keys if k in self._store}
            for k in found:
                self._store.move_to_end(k)
        missing = [k for k in keys if k not in found]
        self.hits += len(found)
        self.decoded += len(missing)
        if missing:
            found.update(zip(missing, self._fetch(missing), strict=True))
        blocks = []
        for layer, (ch, cw) in enumerate(self.chunks):
            dtype = found[next(k for k in keys if k[0] == layer)].dtype
            out = np.empty(window.shape, dtype=dtype)
            for key in (k for k in keys if k[0] == layer):
                _, i, j = key
                chunk = Window(i * ch, i * ch + found[key].shape[0], j * cw, j * cw + found[key].shape[1])
                part = chunk.intersect(window)
                assert part is not None
                out[part.relative_to(window)] = found[key][part.relative_to(chunk)]
            blocks.append(out)
        with self._lock:
            for key in missing:
                block = found[key]
                if key in self._store or block.nbytes > self.max_bytes:
                    continue
                self._store[key] = block
                self.nbytes += block.nbytes
            while self.nbytes > self.max_bytes:
                self.nbytes -= self._store.popitem(last=False)[1].nbytes
        return blocks
