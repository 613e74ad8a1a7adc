"""The graph every builder returns and every model, partitioner and archive reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geodl_hpc.errors import GeodlError

EDGE_KINDS = ("neighbour", "fault", "structure")


class GraphError(GeodlError):
    """A graph cannot be built, partitioned or read (names the input or setting and what to change)."""


@dataclass(frozen=True)
class Graph:
    """Nodes with features, coordinates and deposit labels; directed edges (both directions stored) with a kind.

    ``features`` (n, F) float32 with ``feature_names``; ``xy`` (n, 2) node positions in the CRS of the source;
    ``labels`` (n,) deposit counts attached to each node; ``edge_index`` (2, E) int64 source -> target;
    ``edge_kind`` (E,) int8 indexing :data:`EDGE_KINDS`; ``pixel`` (n,) the flat raster pixel of a cell node
    (-1 for other nodes); ``meta`` free provenance (kind, source archive, settings)."""

    features: np.ndarray
    feature_names: tuple[str, ...]
    xy: np.ndarray
    labels: np.ndarray
    edge_index: np.ndarray
    edge_kind: np.ndarray
    pixel: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.features)
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise GraphError(f"graph: features {self.features.shape} do not match {len(self.feature_names)} names")
        for name in ("xy", "labels", "pixel"):
            if len(getattr(self, name)) != n:
                raise GraphError(f"graph: {name} has {len(getattr(self, name))} rows for {n} nodes")
        if self.edge_index.shape[0] != 2 or self.edge_index.shape[1] != len(self.edge_kind):
            raise GraphError(f"graph: edge_index {self.edge_index.shape} vs edge_kind {self.edge_kind.shape}")
        if self.edge_index.size and (self.edge_index.min() < 0 or self.edge_index.max() >= n):
            raise GraphError(f"graph: edge_index points outside the {n} nodes")

    @property
    def n_nodes(self) -> int:
        return len(self.features)

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def kinds_present(self) -> list[str]:
        """Edge kinds that occur, in :data:`EDGE_KINDS` order."""
        return [EDGE_KINDS[k] for k in sorted(set(np.unique(self.edge_kind).tolist()))]


def symmetric_edges(src: np.ndarray, dst: np.ndarray, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of undirected pairs, self-loops and duplicates dropped; returns ``(edge_index, kinds)``."""
    a = np.concatenate([src, dst]).astype(np.int64)
    b = np.concatenate([dst, src]).astype(np.int64)
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]]), axis=1) if keep.any() else np.zeros((2, 0), np.int64)
    return pairs, np.full(pairs.shape[1], kind, np.int8)
