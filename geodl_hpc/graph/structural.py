"""Structural graph: fault segments and their intersections as nodes, deposits attached to nearby nodes.

Nodes: every fault segment (at its midpoint) and every crossing of two segments at more than ``min_angle``
degrees (at the crossing point). Edges (kind ``structure``): segment - segment where two segments touch end to
end or nearly so (within ``snap``; continuations along a mapped fault) and segment - intersection for the two
segments of each crossing. Node features: ``is_intersection``, ``length_km``, ``cos2theta`` / ``sin2theta``
(orientation, or the crossing angle for intersections), ``degree``, the evidence layers sampled at the node and,
for each indicator layer, ``contact_<layer>`` (1 where a segment crosses that layer's boundary). On Murchison the
only lithology layer is ``greenstone``: "lithology at the node" means in or out of greenstone. A deposit is
attached to the nearest node within ``attach`` metres (unattached deposits are counted in ``meta``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from geodl_hpc.evaluation.blockcv import RasterData
from geodl_hpc.graph.cells import fault_cell_paths
from geodl_hpc.graph.types import EDGE_KINDS, Graph, GraphError, symmetric_edges


def sample_pixels(data: RasterData, transform: Sequence[float], xy: np.ndarray) -> np.ndarray:
    """Flat pixel index of each point (clipped onto the grid)."""
    a, _, c, _, e, f = transform
    h, w = data.shape
    col = np.clip(np.floor((xy[:, 0] - c) / a).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor((xy[:, 1] - f) / e).astype(np.int64), 0, h - 1)
    return row * w + col


def _orientation(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    theta = np.arctan2(seg[:, 1, 1] - seg[:, 0, 1], seg[:, 1, 0] - seg[:, 0, 0])
    return np.cos(2 * theta), np.sin(2 * theta)


def fault_graph(
    segments: np.ndarray,
    data: RasterData,
    *,
    transform: Sequence[float],
    deposits_xy: np.ndarray | None = None,
    snap: float = 50.0,
    min_angle: float = 20.0,
    attach: float = 2000.0,
    indicator_layers: Sequence[str] = (),
    meta: dict[str, Any] | None = None,
) -> Graph:
    """The structural graph of ``segments`` (m, 2, 2) with node evidence sampled from ``data``."""
    import shapely

    seg = np.asarray(segments, dtype=np.float64)
    if seg.ndim != 3 or seg.shape[1:] != (2, 2) or not len(seg):
        raise GraphError(f"structural graph: segments must be a non-empty (m, 2, 2) array, got {seg.shape}")
    m = len(seg)
    lines = shapely.linestrings(seg)
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="dwithin", distance=snap)
    keep = left < right
    left, right = left[keep], right[keep]
    c2, s2 = _orientation(seg)
    cos_between = c2[left] * c2[right] + s2[left] * s2[right]  # cos of twice the angle between the two
    angle = np.degrees(np.arccos(np.clip(cos_between, -1, 1))) / 2
    touching = shapely.intersects(lines[left], lines[right])
    ends = np.stack([shapely.points(seg[:, 0]), shapely.points(seg[:, 1])], axis=1)
    end_to_end = np.zeros(len(left), bool)
    for i in (0, 1):
        for j in (0, 1):
            end_to_end |= shapely.distance(ends[left, i], ends[right, j]) <= snap
    crossing = touching & (angle > min_angle) & ~end_to_end
    s_src, s_dst = left[~crossing], right[~crossing]
    cross_pts = shapely.intersection(lines[left[crossing]], lines[right[crossing]])
    cross_xy = shapely.get_coordinates(shapely.centroid(cross_pts)).reshape(-1, 2)
    n_cross = len(cross_xy)
    ids = m + np.arange(n_cross)
    i_src = np.concatenate([left[crossing], right[crossing]])
    i_dst = np.concatenate([ids, ids])
    kind = EDGE_KINDS.index("structure")
    edge_index, edge_kind = symmetric_edges(np.concatenate([s_src, i_src]), np.concatenate([s_dst, i_dst]), kind)
    n = m + n_cross
    degree = np.bincount(edge_index[0], minlength=n).astype(np.float64)

    xy = np.vstack([seg.mean(axis=1), cross_xy])
    pix = sample_pixels(data, transform, xy)
    layers = data.features.reshape(len(data.layers), -1)[:, pix].T
    cross_angle = np.radians(angle[crossing])
    columns: dict[str, np.ndarray] = {
        "is_intersection": np.r_[np.zeros(m), np.ones(n_cross)],
        "length_km": np.r_[np.hypot(*(seg[:, 1] - seg[:, 0]).T) / 1000.0, np.zeros(n_cross)],
        "cos2theta": np.r_[c2, np.cos(2 * cross_angle)],
        "sin2theta": np.r_[s2, np.sin(2 * cross_angle)],
        "degree": degree,
    }
    for j, name in enumerate(data.layers):
        columns[name] = layers[:, j]
    flat = [data.features[data.layers.index(name)].ravel() for name in indicator_layers]
    for name, values in zip(indicator_layers, flat, strict=True):
        contact = np.zeros(n)
        for k, path in enumerate(fault_cell_paths(seg, transform, data.shape)):
            v = values[path] > 0.5
            contact[k] = float(v.any() and not v.all())
        columns[f"contact_{name}"] = contact
    labels = np.zeros(n, np.float32)
    unattached = 0
    if deposits_xy is not None and len(deposits_xy):
        nodes_geom = np.concatenate([lines, shapely.points(cross_xy)])
        near = shapely.STRtree(nodes_geom)
        pts = shapely.points(np.asarray(deposits_xy, dtype=np.float64))
        (dep, node) = near.query_nearest(pts, max_distance=attach, all_matches=False)
        np.add.at(labels, node, 1.0)
        unattached = len(pts) - len(np.unique(dep))
    return Graph(
        features=np.column_stack(list(columns.values())).astype(np.float32),
        feature_names=tuple(columns),
        xy=xy,
        labels=labels,
        edge_index=edge_index,
        edge_kind=edge_kind,
        pixel=-np.ones(n, np.int64),
        meta={"kind": "structural", "segments": m, "intersections": n_cross, "snap_m": snap,
              "min_angle_deg": min_angle, "attach_m": attach, "unattached_deposits": int(unattached),
              **(meta or {})},
    )  # fmt: skip


def nearest_node_map(graph: Graph, values: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's value of its nearest node (a pixel inherits the prospectivity of its nearest structure) and
    the distance to that node, on the ``(len(y), len(x))`` grid of pixel centres."""
    from scipy.spatial import cKDTree

    xx, yy = np.meshgrid(x, y)
    dist, idx = cKDTree(graph.xy).query(np.column_stack([xx.ravel(), yy.ravel()]))
    return np.asarray(values)[idx].reshape(xx.shape), dist.reshape(xx.shape)
