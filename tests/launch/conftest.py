"""The local Slurm cluster fixture, shared by every Slurm test module in tests/launch."""

from tests.launch.test_local_cluster import Cluster, slurm_cluster

__all__ = ["Cluster", "slurm_cluster"]
