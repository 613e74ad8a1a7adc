"""Cell graph of a raster stack: every valid cell is a node with its evidence layers; edges join each cell to
its 4 or 8 neighbours (kind ``neighbour``) and join the cells a mapped fault passes through, along the fault, to
the cells ``fault_reach`` steps further on it (kind ``fault``), so structure carries information farther than
the grid does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geodl_hpc.evaluation.blockcv import RasterData
from geodl_hpc.graph.types import EDGE_KINDS, Graph, GraphError, symmetric_edges


def grid_neighbours(valid: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Flat-pixel pairs ``(a, b)`` of valid neighbouring cells, each unordered pair once."""
    if connectivity not in (4, 8):
        raise GraphError(f"graph.connectivity: {connectivity}; use 4 or 8")
    h, w = valid.shape
    idx = np.arange(h * w).reshape(h, w)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    src, dst = [], []
    for dy, dx in offsets:
        r0, r1 = 0, h - dy
        c0, c1 = max(0, -dx), w - max(0, dx)
        a = idx[r0:r1, c0:c1]
        b = idx[r0 + dy : r1 + dy, c0 + dx : c1 + dx]
        ok = valid[r0:r1, c0:c1] & valid[r0 + dy : r1 + dy, c0 + dx : c1 + dx]
        src.append(a[ok])
        dst.append(b[ok])
    return np.concatenate(src), np.concatenate(dst)


def fault_cell_paths(
    segments: np.ndarray, transform: Sequence[float], shape: tuple[int, int], step: float | None = None
) -> list[np.ndarray]:
    """For each segment ``(2, 2)`` (map coordinates), the flat pixels it passes through, in order, deduplicated."""
    a, _, c, _, e, f = transform
    step = step or min(abs(a), abs(e)) / 3.0
    h, w = shape
    paths = []
    for (x0, y0), (x1, y1) in np.asarray(segments, dtype=np.float64):
        n = max(2, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / step)) + 1)
        t = np.linspace(0.0, 1.0, n)
        col = np.floor((x0 + (x1 - x0) * t - c) / a).astype(np.int64)
        row = np.floor((y0 + (y1 - y0) * t - f) / e).astype(np.int64)
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        flat = row[inside] * w + col[inside]
        if len(flat):
            keep = np.r_[True, flat[1:] != flat[:-1]]
            paths.append(flat[keep])
    return paths


def cell_graph(
    data: RasterData,
    *,
    transform: Sequence[float],
    segments: np.ndarray | None = None,
    connectivity: int = 8,
    fault_reach: int = 4,
    meta: dict[str, Any] | None = None,
) -> Graph:
    """The cell graph of ``data`` (valid cells only); ``segments`` (m, 2, 2) adds fault edges along each
    segment between cells ``1..fault_reach`` steps apart."""
    valid = data.valid
    h, w = data.shape
    node_of = np.full(h * w, -1, np.int64)
    pixels = np.flatnonzero(valid.ravel())
    node_of[pixels] = np.arange(len(pixels))
    a, b = grid_neighbours(valid, connectivity)
    nb_index, nb_kind = symmetric_edges(node_of[a], node_of[b], EDGE_KINDS.index("neighbour"))
    edges, kinds = [nb_index], [nb_kind]
    if segments is not None and len(segments) and fault_reach > 0:
        src, dst = [], []
        for path in fault_cell_paths(segments, transform, (h, w)):
            nodes = node_of[path]
            nodes = nodes[nodes >= 0]
            for k in range(1, fault_reach + 1):
                if len(nodes) > k:
                    src.append(nodes[:-k])
                    dst.append(nodes[k:])
        if src:
            f_index, f_kind = symmetric_edges(np.concatenate(src), np.concatenate(dst), EDGE_KINDS.index("fault"))
            edges.append(f_index)
            kinds.append(f_kind)
    rows, cols = np.divmod(pixels, w)
    xy = np.column_stack([data.x[cols], data.y[rows]]) if len(data.x) else np.column_stack([cols, rows]).astype(float)
    features = data.features.reshape(len(data.layers), -1)[:, pixels].T.astype(np.float32)
    return Graph(
        features=features,
        feature_names=tuple(data.layers),
        xy=xy.astype(np.float64),
        labels=data.deposits.ravel()[pixels].astype(np.float32),
        edge_index=np.concatenate(edges, axis=1),
        edge_kind=np.concatenate(kinds),
        pixel=pixels.astype(np.int64),
        meta={"kind": "cells", "shape": [h, w], "connectivity": connectivity, "fault_reach": fault_reach,
              **(meta or {})},
    )  # fmt: skip


def node_map(graph: Graph, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-node ``values`` of a cell graph back on the raster (NaN where no node)."""
    out = np.full(shape[0] * shape[1], np.nan)
    out[graph.pixel] = values
    return out.reshape(shape)
