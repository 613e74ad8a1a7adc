"""`geodl train` as users run it: one process, N local Horovod ranks, and a clear error for an impossible --np."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from geodl_hpc.cli.models import rank_launcher
from geodl_hpc.errors import GeodlError
from tests.training.conftest import REPO, job_dict, need_horovod

GEODL = Path(sys.executable).parent / "geodl"


def _tiny_config(tmp_path: Path, archive: Path) -> Path:
    data = {"job": "train", **job_dict(archive, tmp_path / "out", epochs=1)}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _geodl(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GEODL), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_train_one_process_writes_checkpoints_and_resolved_config(tmp_path: Path, tiny_archive: Path) -> None:
    result = _geodl("train", _tiny_config(tmp_path, tiny_archive), "train.threads=1", cwd=REPO)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["size"] == 1 and summary["step"] == 6
    resolved = yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text())
    assert resolved["job"] == "train" and resolved["train"]["epochs"] == 1
    assert (tmp_path / "out" / "metrics.jsonl").exists()


def test_train_two_horovod_ranks(tmp_path: Path, tiny_archive: Path) -> None:
    need_horovod()
    config = _tiny_config(tmp_path, tiny_archive)
    result = _geodl("train", config, "--np", "2", "train.backend=horovod", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "horovod.runner.launch -np 2" in result.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    # 48 samples in batches of 8 over 2 equal shards (padded to equal counts): 3 or 4 steps, where one process takes 6.
    assert max(line["step"] for line in lines if line["kind"] == "step") in (3, 4)


def test_np_needs_a_distributed_backend() -> None:
    with pytest.raises(GeodlError, match=r"train\.backend=none runs one process"):
        rank_launcher("none", 2)
    assert rank_launcher("torch", 3)[-1] == "--nproc-per-node=3"
