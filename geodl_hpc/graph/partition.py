"""Spatial partitions of a graph: square tiles of nodes (the *core*) with a k-hop *halo*, as tiled inference
cuts a raster into regions with a margin. A k-layer message-passing model run on the subgraph induced by
core + halo gives every core node exactly its whole-graph output, so tiles train and infer independently (on
ranks, Ray tasks or Slurm array tasks) and their core outputs stitch into the whole-graph result with no seam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodl_hpc.graph.types import Graph, GraphError


@dataclass(frozen=True)
class Partition:
    """One tile: ``nodes`` (global ids, the ``n_core`` core nodes first, then the halo) and its local edges."""

    index: int
    tile: tuple[int, int]
    nodes: np.ndarray
    n_core: int
    edge_index: np.ndarray  # (2, e) local ids
    edge_kind: np.ndarray

    @property
    def core(self) -> np.ndarray:
        return self.nodes[: self.n_core]


def _csr(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(graph.edge_index[0], kind="stable")
    dst = graph.edge_index[1][order]
    indptr = np.r_[0, np.cumsum(np.bincount(graph.edge_index[0], minlength=graph.n_nodes))]
    return indptr, dst


def k_hop(graph: Graph, seeds: np.ndarray, hops: int, csr: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Nodes within ``hops`` edges of ``seeds`` (seeds first, in their order; then the rest sorted)."""
    indptr, dst = csr or _csr(graph)
    seen = np.zeros(graph.n_nodes, bool)
    seen[seeds] = True
    frontier = np.asarray(seeds, dtype=np.int64)
    for _ in range(hops):
        if not len(frontier):
            break
        starts, stops = indptr[frontier], indptr[frontier + 1]
        counts = stops - starts
        if not counts.sum():
            break
        offs = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        nxt = np.unique(dst[offs])
        frontier = nxt[~seen[nxt]]
        seen[frontier] = True
    halo = np.flatnonzero(seen)
    halo = halo[~np.isin(halo, seeds)]
    return np.concatenate([np.asarray(seeds, dtype=np.int64), halo])


def induced_edges(graph: Graph, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges of ``graph`` with both ends in ``nodes``, renumbered to positions in ``nodes``."""
    local = np.full(graph.n_nodes, -1, np.int64)
    local[nodes] = np.arange(len(nodes))
    s, d = local[graph.edge_index[0]], local[graph.edge_index[1]]
    keep = (s >= 0) & (d >= 0)
    return np.stack([s[keep], d[keep]]), graph.edge_kind[keep]


def tile_of(xy: np.ndarray, tile: float, origin: tuple[float, float] | None = None) -> np.ndarray:
    """``(n, 2)`` integer tile (column, row) of each position for square tiles of side ``tile``."""
    if not tile > 0:
        raise GraphError(f"graph.tile: must be a positive length in CRS units, got {tile}")
    o = np.asarray(origin if origin is not None else xy.min(axis=0))
    return np.floor((xy - o) / tile).astype(np.int64)


def tile_partitions(graph: Graph, tile: float, hops: int) -> list[Partition]:
    """Every non-empty tile of side ``tile`` as a partition with a ``hops``-hop halo (tiles in row-major order)."""
    if hops < 0:
        raise GraphError(f"graph.halo_hops: must be >= 0, got {hops}")
    t = tile_of(graph.xy, tile)
    keys, inverse = np.unique(t, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    csr = _csr(graph)
    order = np.argsort(inverse, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(keys)))]
    parts = []
    for i, key in enumerate(keys):
        core = order[bounds[i] : bounds[i + 1]]
        nodes = k_hop(graph, core, hops, csr)
        edges, kinds = induced_edges(graph, nodes)
        parts.append(Partition(i, (int(key[0]), int(key[1])), nodes, len(core), edges, kinds))
    return parts
