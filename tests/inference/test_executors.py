"""One config, three ways to run it: in-process, as Ray tasks, as ranks of a Slurm step; the same map bitwise.

The Ray test starts a local Ray (2 CPUs) unless one is running; the Slurm test (marker ``slurm``) runs
``geodl infer --cluster localslurm cluster.ntasks_per_node=2`` on the local test cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from geodl_hpc.errors import ConfigError
from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.runner import infer
from geodl_hpc.training.config import ModelConfig
from jobs.infer import main, with_step_rank
from tests.launch.conftest import Cluster, slurm_cluster

from .conftest import config, tiny_cnn

__all__ = ["slurm_cluster"]  # the session fixture of tests/launch, used here by name


def all_layers(out: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(out), mode="r")
    return {str(n): np.asarray(group[str(n)][:]) for n in group.attrs["layers"]}  # type: ignore[union-attr,index]


def assert_same_map(a: Path, b: Path) -> None:
    got, want = all_layers(a), all_layers(b)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)  # bitwise, NaN where NaN


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    from geodl_hpc.pipeline.loader import ensure_ray

    ensure_ray(2)
    yield
    if started:
        ray.shutdown()


def test_ray_tasks_write_the_same_map_as_one_process(stack: Path, tmp_path: Path, ray_session: None) -> None:
    model = tiny_cnn(dropout=0.2)
    settings = {"attribution": "occlusion", "mc_samples": 2}
    local = infer(stack, model, tmp_path / "local.zarr", config(**settings))
    ray = infer(stack, model, tmp_path / "ray.zarr", config(executor="ray", ray_tasks=3, **settings))
    assert local["complete"] and ray["complete"] and ray["regions_computed"] == ray["regions_total"] > 3
    assert ray["pixels"] == local["pixels"]
    assert_same_map(tmp_path / "ray.zarr", tmp_path / "local.zarr")
    stats = [zarr.open_group(str(tmp_path / p), mode="r")["probability"].attrs["statistics"] for p in ("ray.zarr",
             "local.zarr")]  # fmt: skip
    assert stats[0] == stats[1]


def test_ray_resumes_only_missing_regions(stack: Path, tmp_path: Path, ray_session: None) -> None:
    out = tmp_path / "m.zarr"
    first = infer(stack, tiny_cnn(), out, config(rank=0, n_ranks=2))  # half the map, in this process
    assert first["status"] == "partial"
    rest = infer(stack, tiny_cnn(), out, config(executor="ray", ray_tasks=2))
    assert rest["complete"] and rest["regions_computed"] == rest["regions_total"] - first["regions_computed"]
    infer(stack, tiny_cnn(), tmp_path / "ref.zarr", config())
    assert_same_map(out, tmp_path / "ref.zarr")


def test_rank_from_a_slurm_step() -> None:
    cfg = InferJobConfig()
    step = {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"}
    assert (with_step_rank(cfg, step).rank, with_step_rank(cfg, step).n_ranks) == (1, 2)
    assert with_step_rank(cfg, {"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"}) == cfg
    assert with_step_rank(cfg, {}) == cfg
    split = InferJobConfig(rank=1, n_ranks=3)  # a config that splits the work itself keeps its rank
    assert with_step_rank(split, step) == split
    with pytest.raises(ConfigError, match="ray_tasks"):
        InferJobConfig(ray_tasks=-1)


@pytest.mark.slurm
def test_infer_on_two_slurm_tasks_equals_the_local_map(
    slurm_cluster: Cluster, stack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`geodl infer CONFIG --cluster localslurm` as one Slurm job of 2 tasks (ranks from the step)."""
    import json

    from geodl_hpc.config import dump_config
    from jobs.cli import main as cli

    settings = {"archive": str(stack), "model": ModelConfig(width=4, depth=3), "export_png": False}
    local = main(config(output=str(tmp_path / "local" / "map.zarr"), **settings))
    assert local["complete"]
    cfg = config(output=str(tmp_path / "slurm" / "map.zarr"), **settings)
    dump_config(cfg, tmp_path / "infer.yaml")
    capsys.readouterr()
    assert cli(["infer", str(tmp_path / "infer.yaml"), "--cluster", "localslurm", "cluster.ntasks_per_node=2"]) == 0
    rank0 = json.loads(capsys.readouterr().out)
    assert rank0["regions_computed"] < local["regions_total"]  # rank 0 did only its share
    assert_same_map(tmp_path / "slurm" / "map.zarr", tmp_path / "local" / "map.zarr")
    assert (tmp_path / "slurm" / "map.tif").is_file()  # exported by whichever task completed the map
    assert (tmp_path / "slurm" / "run.json").is_file()  # the run folder is the map's parent, not the map
