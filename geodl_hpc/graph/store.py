"""Graph archives: a Zarr v3 group of node and edge arrays plus ``nodes.parquet`` (one row per node) inside it,
with the usual provenance, staged writing and completion flag (``geodl_kind = "graph"``).

Arrays: ``features`` (n, F) float32, ``xy`` (n, 2) float64, ``labels`` (n,), ``pixel`` (n,) int64,
``edge_index`` (2, E) int64, ``edge_kind`` (E,) int8. Attributes: ``feature_names``, ``edge_kinds``, ``meta``
(builder settings), ``provenance``. ``nodes.parquet`` holds node id, x, y, label and the features, for pandas,
GIS tools (points) or a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geodl_hpc.archive.store import (
    COMPLETE_ATTR,
    KIND_ATTR,
    CodecSpec,
    mark_complete_zarr,
    require_complete,
    staged_output,
)
from geodl_hpc.graph.types import EDGE_KINDS, Graph

ARRAYS = ("features", "xy", "labels", "pixel", "edge_index", "edge_kind")


def node_table(graph: Graph) -> Any:
    """The nodes as a pandas DataFrame: node, x, y, label and one column per feature."""
    import pandas as pd

    frame = pd.DataFrame({"node": np.arange(graph.n_nodes), "x": graph.xy[:, 0], "y": graph.xy[:, 1],
                          "label": graph.labels, "pixel": graph.pixel})  # fmt: skip
    for j, name in enumerate(graph.feature_names):
        frame[name] = graph.features[:, j]
    return frame


def write_graph(
    out: Path,
    graph: Graph,
    provenance_record: dict[str, Any],
    *,
    codec: CodecSpec = CodecSpec(),  # noqa: B008 - frozen dataclass, safe default
    overwrite: bool = False,
) -> Path:
    """Write ``graph`` as a complete graph archive at ``out`` (staged: no half-written archive looks complete)."""
    import zarr

    out = Path(out)
    with staged_output(out, overwrite=overwrite) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for name in ARRAYS:
            data = np.ascontiguousarray(getattr(graph, name))
            chunks = (min(len(data), 262_144), *data.shape[1:]) if data.ndim and data.shape[0] else data.shape
            if name == "edge_index":
                chunks = (2, max(1, min(data.shape[1], 1_048_576)))
            arr = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks,
                                     compressors=codec.zarr_compressors())  # fmt: skip
            arr[...] = data
        group.attrs.update({KIND_ATTR: "graph", "feature_names": list(graph.feature_names),
                            "edge_kinds": list(EDGE_KINDS), "meta": graph.meta, "provenance": provenance_record,
                            "n_nodes": graph.n_nodes, "n_edges": graph.n_edges})  # fmt: skip
        node_table(graph).to_parquet(tmp / "nodes.parquet", index=False)
        mark_complete_zarr(tmp)
    return out


def read_graph(path: Path) -> Graph:
    """A complete graph archive back as a :class:`Graph`."""
    import zarr

    require_complete(Path(path), "graph")
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    arrays = {name: np.asarray(group[name][...]) for name in ARRAYS}  # type: ignore[index]
    meta: dict[str, Any] = dict(attrs.get("meta") or {})  # type: ignore[arg-type]
    meta.setdefault("provenance", attrs.get("provenance"))
    meta.pop(COMPLETE_ATTR, None)
    return Graph(feature_names=tuple(attrs["feature_names"]), meta=meta, **arrays)  # type: ignore[arg-type]
