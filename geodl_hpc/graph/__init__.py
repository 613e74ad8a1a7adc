"""Graphs built from the evidence (pure numpy; no graph library needed): cell graphs of a raster stack,
structural graphs of fault segments and their intersections, spatial partitions with halos, and graph archives.

    cells.cell_graph          raster cells as nodes, edges to neighbours and along mapped faults
    structural.fault_graph    fault segments + intersections as nodes, deposits attached to nearby nodes
    partition.tile_partitions tiles of nodes with k-hop halos (exact k-layer message passing per tile)
    store.write_graph         Zarr arrays + a Parquet node table, with provenance
"""

from geodl_hpc.graph.types import Graph

__all__ = ["Graph"]
