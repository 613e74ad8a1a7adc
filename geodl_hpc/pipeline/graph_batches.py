"""PartitionBatches: the training loop's ``BatchSource`` over spatial partitions of a graph.

A sample is one partition (a tile of core nodes with its k-hop halo, :mod:`geodl_hpc.graph.partition`); a batch
merges ``batch_size`` partitions into one disconnected graph with every core node first, and its target ``y``
holds, per core node, 1 (training node with a deposit), 0 (training node without) or -1 (not a training node:
held out, or in a CV gap). Epochs are planned with :func:`geodl_hpc.sampling.remaining_plan` like every other
source: equal rank shards, a shuffle per ``(seed, epoch)``, exact resume from a cursor, also on another number of
ranks. Partitions without a training node are left out of the plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import ConfigError
from geodl_hpc.graph.partition import Partition
from geodl_hpc.graph.types import Graph
from geodl_hpc.sampling import Cursor, RankPlan, remaining_plan

if TYPE_CHECKING:
    import torch


def merge_partitions(graph: Graph, parts: Sequence[Partition]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Global node ids (all cores first, then all halos), local edge index, edge kinds, and the core count."""
    cores = [p.nodes[: p.n_core] for p in parts]
    halos = [p.nodes[p.n_core :] for p in parts]
    n_core = sum(len(c) for c in cores)
    core_off = np.cumsum([0] + [len(c) for c in cores])
    halo_off = n_core + np.cumsum([0] + [len(h) for h in halos])
    edges, kinds = [], []
    for i, p in enumerate(parts):
        local = np.where(p.edge_index < p.n_core, p.edge_index + core_off[i], p.edge_index - p.n_core + halo_off[i])
        edges.append(local)
        kinds.append(p.edge_kind)
    nodes = np.concatenate(cores + halos)
    edge_index = np.concatenate(edges, axis=1) if edges else np.zeros((2, 0), np.int64)
    return nodes, edge_index, np.concatenate(kinds) if kinds else np.zeros(0, np.int8), n_core


class PartitionBatches:
    """Shuffled, rank-sharded, resumable batches ``{"x": GraphBatch, "y": (n_core,)}`` of graph partitions."""

    def __init__(
        self,
        graph: Graph,
        partitions: Sequence[Partition],
        train_nodes: np.ndarray,
        *,
        batch_size: int = 4,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"graph batch_size: must be at least 1, got {batch_size}")
        train_nodes = np.asarray(train_nodes, dtype=bool)
        if train_nodes.shape != (graph.n_nodes,):
            raise ConfigError(f"train_nodes: {train_nodes.shape} for a graph of {graph.n_nodes} nodes")
        self.graph, self.seed, self._batch_size = graph, seed, batch_size
        self.target = np.where(train_nodes, (graph.labels > 0).astype(np.float32), -1.0).astype(np.float32)
        self.partitions = [p for p in partitions if (self.target[p.core] >= 0).any()]
        if not self.partitions:
            raise ConfigError("PartitionBatches: no partition holds a training node; check the folds and the tiles")
        self.cursor: Cursor | None = None

    def __len__(self) -> int:
        return len(self.partitions)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def positives(self) -> int:
        return int((self.target == 1).sum())

    @property
    def negatives(self) -> int:
        return int((self.target == 0).sum())

    def plan(self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None) -> RankPlan:
        """This rank's plan for the rest of the epoch (from ``cursor`` if given); sets ``self.cursor``."""
        if not 0 <= rank < n_ranks:
            raise ConfigError(f"rank={rank}: must be in [0, n_ranks={n_ranks})")
        start = cursor if cursor is not None else Cursor(epoch, n_ranks)
        if start.epoch != epoch:
            raise ConfigError(f"cursor: saved for epoch {start.epoch}, asked for epoch {epoch}; pass that epoch")
        plans, base = remaining_plan(np.arange(len(self.partitions)), self.seed, start, n_ranks)
        self.cursor = base
        return plans[rank]

    def batch(self, indices: np.ndarray) -> dict[str, Any]:
        """The merged graph of partitions ``indices`` with its core targets."""
        from geodl_hpc.models.gnn import graph_batch

        nodes, edge_index, edge_kind, n_core = merge_partitions(self.graph, [self.partitions[i] for i in indices])
        import torch

        y = self.target[nodes[:n_core]]
        return {"x": graph_batch(self.graph.features[nodes], edge_index, edge_kind, n_core), "y": torch.from_numpy(y)}

    def iter_epoch(
        self, epoch: int, rank: int = 0, n_ranks: int = 1, cursor: Cursor | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of ``batch_size`` partitions (the last may be short); ``self.cursor`` follows each batch."""
        plan = self.plan(epoch, rank, n_ranks, cursor)
        base = self.cursor
        if base is None:
            raise ConfigError("PartitionBatches: no cursor after planning")
        order, done = plan.order, base.position
        for i in range(0, len(order), self._batch_size):
            chunk = order[i : i + self._batch_size]
            done += len(chunk)
            self.cursor = Cursor(base.epoch, base.n_ranks, done, base.history)
            yield self.batch(chunk)
