"""Node-level graph neural networks on PyTorch Geometric: a relational GraphSAGE for cell and structural graphs.

``NodeGNN`` stacks ``layers`` message-passing layers; each layer sums one ``SAGEConv`` (mean aggregation) per
edge kind, so neighbours on the grid and neighbours along a fault carry separate weights (a relational
GraphSAGE). Inputs are standardised by statistics fixed at construction (buffers, saved with the weights).
It runs inside the training engine: a batch is a :class:`GraphBatch` (one or more partitions with their halos)
and ``forward`` returns the logits of the core nodes only, which ``training_loss`` scores against the labels
(``-1`` = not a training node). P(deposit) comes from a sigmoid; uncertainty from MC dropout or an ensemble.

PyTorch Geometric is imported lazily (``pip install torch_geometric``; pure Python on CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from geodl_hpc.errors import MissingDependencyError


def _pyg() -> Any:
    try:
        import torch_geometric
    except ImportError:
        raise MissingDependencyError(
            "the graph models need PyTorch Geometric; install it with `pip install torch_geometric`"
        ) from None
    return torch_geometric


def graph_batch(
    x: np.ndarray, edge_index: np.ndarray, edge_kind: np.ndarray, n_core: int, y: np.ndarray | None = None
) -> Any:
    """A :class:`GraphBatch` (PyG ``Data`` whose ``shape`` is the core-node count, as the training loop expects
    of a batch) from numpy arrays; core nodes are the first ``n_core``."""
    data_cls = _batch_class()
    return data_cls(
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        edge_index=torch.from_numpy(np.ascontiguousarray(edge_index, dtype=np.int64)),
        edge_kind=torch.from_numpy(np.ascontiguousarray(edge_kind, dtype=np.int64)),
        n_core=torch.tensor(int(n_core)),
        **({"y": torch.from_numpy(np.asarray(y, dtype=np.float32))} if y is not None else {}),
    )


_BATCH: Any = None


def _batch_class() -> Any:
    global _BATCH
    if _BATCH is None:
        data = _pyg().data.Data

        class GraphBatch(data):  # type: ignore[misc,valid-type]
            """Partition subgraph(s): ``x``, ``edge_index``, ``edge_kind``; the first ``n_core`` nodes are scored."""

            @property
            def shape(self) -> tuple[int]:
                return (int(self.n_core),)

        _BATCH = GraphBatch
    return _BATCH


class NodeGNN(torch.nn.Module):
    """Relational GraphSAGE giving one logit per node."""

    per_pixel = True

    def __init__(
        self,
        in_dim: int,
        *,
        hidden: int = 32,
        layers: int = 2,
        dropout: float = 0.2,
        relations: int = 1,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        pos_weight: float = 1.0,
    ) -> None:
        super().__init__()
        sage = _pyg().nn.SAGEConv
        self.relations, self.n_layers, self.dropout = relations, layers, dropout
        dims = [in_dim] + [hidden] * layers
        self.convs = torch.nn.ModuleList(
            torch.nn.ModuleList(sage(dims[i], dims[i + 1], aggr="mean") for _ in range(relations))
            for i in range(layers)
        )
        self.head = torch.nn.Linear(dims[-1] + in_dim, 1)  # skip connection: the node's own evidence
        self.register_buffer("mean", torch.as_tensor(np.zeros(in_dim) if mean is None else mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.ones(in_dim) if std is None else std, dtype=torch.float32))
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)))

    def node_logits(self, x: torch.Tensor, edge_index: torch.Tensor, edge_kind: torch.Tensor) -> torch.Tensor:
        """Logits of every node of the (sub)graph."""
        mean: torch.Tensor = self.mean  # type: ignore[assignment]
        std: torch.Tensor = self.std  # type: ignore[assignment]
        x0 = (x - mean) / std
        h = x0
        per_kind = [edge_index[:, edge_kind == r] for r in range(self.relations)]
        for layer in self.convs:
            convs: Any = layer
            h = torch.stack([conv(h, e) for conv, e in zip(convs, per_kind, strict=True)]).sum(dim=0)
            h = torch.relu(h)
            h = torch.nn.functional.dropout(h, self.dropout, self.training)
        return self.head(torch.cat([h, x0], dim=1)).squeeze(1)

    def forward(self, batch: Any) -> torch.Tensor:
        """Logits of the core nodes of a :class:`GraphBatch`."""
        logits = self.node_logits(batch.x, batch.edge_index, batch.edge_kind)
        return logits[: int(batch.n_core)]

    def training_loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """Class-weighted BCE on the core nodes with a label (``y >= 0``); a batch without one gives loss 0."""
        y = y.reshape(-1)
        use = y >= 0
        if not bool(use.any()):
            return logits.sum() * 0.0, 0.0, 0.0
        target = (y[use] > 0).float()
        pos_weight: torch.Tensor = self.pos_weight  # type: ignore[assignment]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[use], target, pos_weight=pos_weight)
        correct = float(((logits[use].detach() > 0).float() == target).sum())
        return loss, correct, float(use.sum())


def predict_nodes(
    model: NodeGNN, x: np.ndarray, edge_index: np.ndarray, edge_kind: np.ndarray, *, mc_samples: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """P(deposit) per node and its std over ``mc_samples`` MC-dropout passes (zeros when ``mc_samples < 2``)."""
    b = graph_batch(x, edge_index, edge_kind, len(x))
    model.eval()
    with torch.inference_mode():
        p = torch.sigmoid(model.node_logits(b.x, b.edge_index, b.edge_kind)).double().numpy()
        if mc_samples < 2:
            return p, np.zeros_like(p)
        torch.manual_seed(seed)
        model.train()  # dropout on; there is no batch norm
        draws = np.stack(
            [
                torch.sigmoid(model.node_logits(b.x, b.edge_index, b.edge_kind)).double().numpy()
                for _ in range(mc_samples)
            ]
        )
        model.eval()
    return draws.mean(axis=0), draws.std(axis=0)
