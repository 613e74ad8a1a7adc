"""A lazily generated, clearly labelled synthetic raster stack (smooth fields + noise) for tests and benchmarks.

Each window is computed on demand from a seed, so stacks of any size are written with bounded memory.
"""

from __future__ import annotations

from pathlib import Path

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
