"""Graph building (cells, structures), spatial partitions with halos, graph archives: pure numpy, no engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodl_hpc.archive.store import ArchiveError
from geodl_hpc.evaluation.blockcv import RasterData
from geodl_hpc.graph.cells import cell_graph, fault_cell_paths, grid_neighbours, node_map
from geodl_hpc.graph.partition import induced_edges, k_hop, tile_partitions
from geodl_hpc.graph.store import read_graph, write_graph
from geodl_hpc.graph.structural import fault_graph, nearest_node_map
from geodl_hpc.graph.types import EDGE_KINDS, GraphError

TRANSFORM = (1.0, 0.0, 0.0, 0.0, -1.0, 10.0)  # 1 m pixels, top-left corner at (0, 10)


def _raster(h: int = 10, w: int = 10, *, invalid: tuple[int, int] | None = None) -> RasterData:
    green = np.zeros((h, w))
    green[:, : w // 2] = 1.0
    dist = np.abs(np.arange(w) - w / 2)[None, :].repeat(h, 0)
    deposits = np.zeros((h, w))
    deposits[2, 2] = 1
    valid = np.ones((h, w), bool)
    if invalid:
        valid[invalid] = False
    x = np.arange(w) + 0.5
    y = 10 - (np.arange(h) + 0.5)
    return RasterData(np.stack([green, dist]), ("greenstone", "dist"), deposits, valid, green > 0.5, x, y)


def test_grid_neighbours_counts() -> None:
    valid = np.ones((3, 4), bool)
    a4, _ = grid_neighbours(valid, 4)
    a8, _ = grid_neighbours(valid, 8)
    assert len(a4) == 3 * 3 + 2 * 4  # horizontal + vertical pairs
    assert len(a8) == len(a4) + 2 * 2 * 3  # plus both diagonals
    valid[1, 1] = False
    a, b = grid_neighbours(valid, 8)
    assert 5 not in a and 5 not in b
    with pytest.raises(GraphError, match="connectivity"):
        grid_neighbours(valid, 6)


def test_cell_graph_nodes_edges_and_fault_edges() -> None:
    data = _raster(invalid=(0, 0))
    plain = cell_graph(data, transform=TRANSFORM)
    assert plain.n_nodes == 99 and plain.kinds_present() == ["neighbour"]
    np.testing.assert_array_equal(plain.features[:, 1], data.features[1].ravel()[1:])
    assert plain.labels.sum() == 1 and plain.labels[plain.pixel == 22][0] == 1
    # symmetric: every edge appears in both directions
    pairs = set(map(tuple, plain.edge_index.T.tolist()))
    assert all((b, a) in pairs for a, b in pairs)
    segment = np.array([[[0.5, 5.5], [9.5, 5.5]]])  # along row 4 from column 0 to 9
    (path,) = fault_cell_paths(segment, TRANSFORM, data.shape)
    np.testing.assert_array_equal(path, 40 + np.arange(10))
    g = cell_graph(data, transform=TRANSFORM, segments=segment, fault_reach=3)
    fault = g.edge_index[:, g.edge_kind == EDGE_KINDS.index("fault")]
    node_of = {int(p): i for i, p in enumerate(g.pixel)}
    assert (node_of[40], node_of[43]) in set(map(tuple, fault.T.tolist()))  # 3 cells along the fault
    assert (node_of[40], node_of[44]) not in set(map(tuple, fault.T.tolist()))
    back = node_map(g, g.features[:, 1], data.shape)
    assert np.isnan(back[0, 0]) and back[3, 7] == data.features[1, 3, 7]


def test_structural_graph_crossings_continuations_and_deposits() -> None:
    data = _raster()
    segments = np.array(
        [
            [[1.0, 5.0], [9.0, 5.0]],  # east-west across the greenstone contact at x = 5
            [[5.5, 1.0], [5.5, 9.0]],  # north-south, crosses the first one
            [[9.0, 5.0], [9.5, 9.0]],  # continues the first one from its end
        ]
    )
    deposits = np.array([[5.6, 5.1], [0.0, 0.0]])  # one at the crossing, one far away
    g = fault_graph(segments, data, transform=TRANSFORM, deposits_xy=deposits, attach=1.0,
                    indicator_layers=["greenstone"], snap=0.05)  # fmt: skip
    assert g.meta["intersections"] == 1 and g.n_nodes == 4
    f = dict(zip(g.feature_names, g.features.T, strict=True))
    assert f["is_intersection"].tolist() == [0, 0, 0, 1]
    assert f["contact_greenstone"].tolist() == [1, 0, 0, 0]  # only the first segment crosses the contact
    assert f["length_km"][0] == pytest.approx(0.008)
    edges = set(map(tuple, g.edge_index.T.tolist()))
    assert {(0, 3), (1, 3), (0, 2)} <= edges and (0, 1) not in edges  # crossing via its node; continuation
    assert g.labels.sum() == 1 and g.meta["unattached_deposits"] == 1
    values, dist = nearest_node_map(g, np.arange(4.0), data.x, data.y)
    assert values.shape == data.shape and dist.min() >= 0


def test_partitions_cover_every_node_once_with_k_hop_halos() -> None:
    g = cell_graph(_raster(12, 12), transform=TRANSFORM)
    parts = tile_partitions(g, tile=4.0, hops=2)
    assert len(parts) == 9
    cores = np.concatenate([p.core for p in parts])
    assert sorted(cores.tolist()) == list(range(g.n_nodes))
    centre = parts[4]
    assert centre.n_core == 16 and len(centre.nodes) == 8 * 8  # 4 x 4 core + 2-cell ring (8-connectivity)
    ball = k_hop(g, np.array([0]), 1)
    assert sorted(ball.tolist()) == [0, 1, 12, 13]
    edges, _ = induced_edges(g, centre.nodes)
    assert edges.max() < len(centre.nodes)
    with pytest.raises(GraphError, match="tile"):
        tile_partitions(g, tile=0.0, hops=1)


def test_graph_archive_round_trip(tmp_path: Path) -> None:
    g = cell_graph(_raster(), transform=TRANSFORM, meta={"source": "test"})
    out = write_graph(tmp_path / "cells.zarr", g, {"tool": "test"})
    back = read_graph(out)
    np.testing.assert_array_equal(back.edge_index, g.edge_index)
    np.testing.assert_array_equal(back.features, g.features)
    assert back.feature_names == g.feature_names and back.meta["source"] == "test"
    assert back.meta["provenance"] == {"tool": "test"}
    import pandas as pd

    table = pd.read_parquet(out / "nodes.parquet")
    assert len(table) == g.n_nodes and {"x", "y", "label", "greenstone"} <= set(table.columns)
    with pytest.raises(ArchiveError, match="already exists"):
        write_graph(out, g, {})
    import zarr

    zarr.open_group(str(out), mode="r+").attrs["geodl_complete"] = False
    with pytest.raises(ArchiveError, match="incomplete"):
        read_graph(out)
