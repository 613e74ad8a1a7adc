"""Clearly labelled synthetic raster stacks for tests and benchmarks, computed window by window from a seed.

``synthetic_stack`` writes smooth sinusoidal fields + white noise to disk (bounded memory at any size);
``lazy_stack`` stores only the metadata of Gaussian random fields and generates chunks on read (continental scale
without disk).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import Layer, write_stack
from geodl_hpc.archive.store import CodecSpec, mark_complete_zarr, staged_output


class SyntheticFields:
    """``n_layers`` smooth sinusoidal fields plus white noise; an optional nodata box (NaN in layer 0)."""

    def __init__(
        self,
        n_layers: int,
        seed: int = 0,
        noise: float = 0.1,
        nodata_box: tuple[int, int, int, int] | None = None,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.layers = [Layer(f"synthetic_{i}", f"synthetic field {i} (smooth + noise)", "1", "synthetic") for i in
                       range(n_layers)]  # fmt: skip
        self.freq = rng.uniform(0.005, 0.05, size=(n_layers, 3, 2))
        self.phase = rng.uniform(0, 2 * np.pi, size=(n_layers, 3))
        self.noise = noise
        self.seed = seed
        self.nodata_box = nodata_box

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        r = np.arange(rows.start, rows.stop, dtype=np.float64)[:, None]
        c = np.arange(cols.start, cols.stop, dtype=np.float64)[None, :]
        out = np.empty((len(self.layers), r.shape[0], c.shape[1]), dtype=np.float32)
        rng = np.random.default_rng([self.seed, rows.start, cols.start])  # same values for the same window
        for i in range(len(self.layers)):
            field = sum(np.sin(self.freq[i, k, 0] * r + self.freq[i, k, 1] * c + self.phase[i, k]) for k in range(3))
            out[i] = field + self.noise * rng.standard_normal(out.shape[1:])
        if self.nodata_box is not None:
            r0, r1, c0, c1 = self.nodata_box
            rr = slice(max(r0 - rows.start, 0), max(min(r1, rows.stop) - rows.start, 0))
            cc = slice(max(c0 - cols.start, 0), max(min(c1, cols.stop) - cols.start, 0))
            out[0, rr, cc] = np.nan
        return out

    def close(self) -> None:
        return None


def synthetic_stack(
    path: Path,
    height: int,
    width: int,
    *,
    n_layers: int = 3,
    chunk: int = 512,
    seed: int = 0,
    nodata_box: tuple[int, int, int, int] | None = None,
    res: float = 100.0,
    crs: str = "EPSG:32750",
) -> Path:
    """Write a complete synthetic raster stack (docs/archives.md format) at ``path``; labelled synthetic."""
    grid = GridSpec.from_bounds(crs, res, (400_000.0, 6_900_000.0, 400_000.0 + res * width, 6_900_000.0 + res * height))
    source = SyntheticFields(n_layers, seed, nodata_box=nodata_box)
    record = {"synthetic": True, "generator": "geodl_hpc.inference.synthetic", "seed": seed}
    with staged_output(Path(path)) as tmp:
        write_stack(tmp, grid, [source], chunk=chunk, codec=CodecSpec(), provenance_record=record, progress=False)
        mark_complete_zarr(tmp)
    return Path(path)


class GaussianFields:
    """Stationary Gaussian random fields of any size, generated per window on demand; labelled synthetic.

    Statistical model: per layer, a zero-mean, unit-variance Gaussian random field with squared-exponential
    covariance ``exp(-d² / (2 length²))`` (``d`` in pixels), approximated by ``features`` random Fourier features
    (Rahimi & Recht 2007): ``f(r, c) = sqrt(2 / K) sum_k cos(w_k . (r, c) + phi_k)`` with ``w_k ~ N(0, I / length²)``
    and ``phi_k ~ U(0, 2 pi)``, drawn once from ``seed``. The field is continuous across windows (any window of
    any size gives the same values where they overlap) and costs one small matrix product per window and layer:
    ``cos(a + b) = cos a cos b - sin a sin b`` separates rows from columns.
    """

    def __init__(self, n_layers: int, seed: int = 0, length: float = 64.0, features: int = 32) -> None:
        rng = np.random.default_rng(seed)
        self.layers = [Layer(f"grf_{i}", f"synthetic Gaussian random field {i} (length {length:g} px)", "1",
                             "synthetic") for i in range(n_layers)]  # fmt: skip
        self.omega = rng.normal(0.0, 1.0 / length, size=(n_layers, features, 2))
        self.phase = rng.uniform(0.0, 2 * np.pi, size=(n_layers, features))
        self.scale = math.sqrt(2.0 / features)

    def block(self, layer: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Layer ``layer`` over rows ``[r0, r1)`` x cols ``[c0, c1)`` as float32."""
        rows = np.arange(r0, r1, dtype=np.float64)[:, None] * self.omega[layer, :, 0] + self.phase[layer]
        cols = np.arange(c0, c1, dtype=np.float64)[:, None] * self.omega[layer, :, 1]
        left = np.hstack([np.cos(rows), -np.sin(rows)]).astype(np.float32) * np.float32(self.scale)
        right = np.hstack([np.cos(cols), np.sin(cols)]).astype(np.float32)
        return left @ right.T

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """All layers over a window (the ``BlockSource`` protocol of ``write_stack``)."""
        return np.stack([self.block(i, rows.start, rows.stop, cols.start, cols.stop) for i in range(len(self.layers))])

    def close(self) -> None:
        return None


def lazy_stack(
    path: Path, height: int, width: int, fields: GaussianFields, *, chunk: int = 512, res: float = 100.0
) -> tuple[Path, Any]:
    """A raster stack of ``fields`` whose pixels are never stored: ``(archive, store)``.

    ``path`` gets only the metadata (grid, coordinates, layer attributes with the model's statistics, mean 0 and
    std 1; about 1 MB for a 40,000² grid); ``store`` is a read-only zarr store over it that generates each
    requested chunk from ``fields`` (pass it as ``input_store`` to :func:`geodl_hpc.inference.runner.infer`)."""
    import zarr

    from geodl_hpc.archive.stack import _create_store
    from geodl_hpc.archive.store import PROVENANCE_ATTR

    grid = GridSpec.from_bounds("EPSG:32750", res, (400_000.0, 6_900_000.0, 400_000.0 + res * width,
                                                    6_900_000.0 + res * height))  # fmt: skip
    with staged_output(Path(path)) as tmp:
        _create_store(tmp, grid, fields.layers, chunk, CodecSpec("none"))
        group = zarr.open_group(str(tmp), mode="r+")
        model = {"mean": 0.0, "std": 1.0, "min": None, "max": None, "valid_fraction": 1.0, "count": height * width}
        for layer in fields.layers:
            group[layer.name].attrs["statistics"] = model  # the model's moments, not measured
        record = {"synthetic": True, "lazy": True, "generator": "geodl_hpc.inference.synthetic.GaussianFields"}
        attrs: dict[str, Any] = {
            "layers": [x.name for x in fields.layers],
            **grid.root_attrs(),
            PROVENANCE_ATTR: record,
        }
        group.attrs.update(attrs)
        mark_complete_zarr(tmp)
    return Path(path), generated_store(Path(path), fields, chunk)


def _generated_store_class() -> type:
    """The class of :func:`generated_store`, built on first use (zarr is imported lazily)."""
    import google_crc32c
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import LocalStore

    class _GeneratedStore(LocalStore):
        """Read-only: metadata from the files under ``root``; chunks of the generated layers computed on read."""

        def __init__(self, root: Path, fields: GaussianFields, chunk: int) -> None:
            super().__init__(root, read_only=True)
            self.fields = fields
            self.chunk = chunk
            self.index = {layer.name: i for i, layer in enumerate(fields.layers)}
            self.generated = 0  # chunks generated (benchmarks report it)

        async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
            parts = key.split("/")
            if len(parts) == 4 and parts[1] == "c" and parts[0] in self.index and byte_range is None:
                i, j, n = int(parts[2]), int(parts[3]), self.chunk
                # Zarr stores edge chunks at full size; the part beyond the raster is never read.
                block = self.fields.block(self.index[parts[0]], i * n, (i + 1) * n, j * n, (j + 1) * n)
                self.generated += 1
                raw = block.astype("<f4").tobytes()
                raw += google_crc32c.value(raw).to_bytes(4, "little")  # the layers' codec chain ends in crc32c
                return (prototype or default_buffer_prototype()).buffer.from_bytes(raw)
            return await super().get(key, prototype, byte_range)

    return _GeneratedStore


def generated_store(root: Path, fields: GaussianFields, chunk: int) -> Any:
    """A read-only zarr store over the metadata at ``root`` that generates ``fields``' chunks on read."""
    return _generated_store_class()(root, fields, chunk)
