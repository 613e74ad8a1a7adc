"""The relational GraphSAGE: partitioned outputs equal whole-graph outputs; it trains in the training engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geodl_hpc.evaluation.blockcv import RasterData
from geodl_hpc.graph.cells import cell_graph
from geodl_hpc.graph.partition import tile_partitions
from geodl_hpc.models.gnn import NodeGNN, graph_batch, predict_nodes
from geodl_hpc.pipeline.graph_batches import PartitionBatches, merge_partitions
from geodl_hpc.sampling import Cursor
from geodl_hpc.training.config import TrainConfig
from geodl_hpc.training.loop import train

TRANSFORM = (1.0, 0.0, 0.0, 0.0, -1.0, 24.0)


def _graph(seed: int = 0) -> tuple[RasterData, object]:
    rng = np.random.default_rng(seed)
    h = w = 24
    signal = rng.normal(size=(h, w))
    noise = rng.normal(size=(h, w))
    deposits = (rng.random((h, w)) < 0.25 * (signal > 1.0)).astype(float)
    data = RasterData(np.stack([signal, noise]), ("signal", "noise"), deposits, np.ones((h, w), bool))
    segments = np.array([[[0.5, 12.5], [23.5, 12.5]], [[3.5, 0.5], [20.5, 23.5]]])
    return data, cell_graph(data, transform=TRANSFORM, segments=segments, fault_reach=2)


def test_partitioned_inference_equals_whole_graph() -> None:
    """A 2-layer model on each tile + 2-hop halo gives the core nodes exactly their whole-graph logits."""
    _, g = _graph()
    torch.manual_seed(0)
    model = NodeGNN(2, hidden=8, layers=2, dropout=0.0, relations=2).eval()
    whole, _ = predict_nodes(model, g.features, g.edge_index, g.edge_kind)
    stitched = np.full(g.n_nodes, np.nan)
    for part in tile_partitions(g, tile=7.0, hops=2):
        p, _ = predict_nodes(model, g.features[part.nodes], part.edge_index, part.edge_kind)
        stitched[part.core] = p[: part.n_core]
    np.testing.assert_allclose(stitched, whole, atol=1e-6)
    short = tile_partitions(g, tile=7.0, hops=1)  # a halo shorter than the model's reach is not exact
    diffs = []
    for part in short:
        p, _ = predict_nodes(model, g.features[part.nodes], part.edge_index, part.edge_kind)
        diffs.append(np.abs(p[: part.n_core] - whole[part.core]).max())
    assert max(diffs) > 1e-6


def test_merged_batches_put_cores_first_and_plan_resumes() -> None:
    _, g = _graph()
    parts = tile_partitions(g, tile=8.0, hops=1)
    nodes, edges, kinds, n_core = merge_partitions(g, parts[:2])
    assert n_core == parts[0].n_core + parts[1].n_core
    np.testing.assert_array_equal(nodes[:n_core], np.concatenate([parts[0].core, parts[1].core]))
    assert edges.max() < len(nodes) and len(kinds) == edges.shape[1]
    train_nodes = np.arange(g.n_nodes) % 2 == 0
    source = PartitionBatches(g, parts, train_nodes, batch_size=2, seed=3)
    full = [b["y"] for b in source.iter_epoch(0, 0, 1)]
    assert all(set(np.unique(y.numpy())) <= {-1.0, 0.0, 1.0} for y in full)
    resumed = list(source.iter_epoch(0, 0, 1, Cursor(0, 1, 4)))  # after 2 batches of 2 partitions
    assert len(resumed) == len(full) - 2
    torch.testing.assert_close(resumed[0]["y"], full[2])
    shards = [len(source.plan(0, r, 2)) for r in range(2)]
    assert shards[0] == shards[1]


@pytest.mark.slow
def test_gnn_learns_in_the_training_engine(tmp_path: Path) -> None:
    _, g = _graph()
    parts = tile_partitions(g, tile=8.0, hops=2)
    train_nodes = np.ones(g.n_nodes, bool)
    source = PartitionBatches(g, parts, train_nodes, batch_size=3, seed=0)
    model = NodeGNN(2, hidden=8, layers=2, dropout=0.1, relations=2, mean=g.features.mean(0),
                    std=g.features.std(0), pos_weight=source.negatives / source.positives)  # fmt: skip
    config = TrainConfig(epochs=30, lr=0.02, checkpoint_every_steps=1000, log_every=1000, progress=False, plot=False)
    result = train(config, source, model, tmp_path / "run")
    assert result["status"] == "completed" and result["step"] == 30 * 3
    p, std = predict_nodes(model, g.features, g.edge_index, g.edge_kind, mc_samples=8)
    from geodl_hpc.evaluation.metrics import roc_auc

    assert roc_auc(p, g.labels) > 0.85  # deposits sit where `signal` > 1
    assert std.max() > 0 and np.all(std >= 0)
    again = NodeGNN(2, hidden=8, layers=2, dropout=0.1, relations=2)
    result2 = train(config, source, again, tmp_path / "run")  # finished run: loads, trains no further
    assert result2["param_checksum"] == result["param_checksum"]
    b = graph_batch(g.features, g.edge_index, g.edge_kind, 5)
    assert again(b).shape == (5,)
