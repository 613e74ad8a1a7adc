"""Training fixtures: a tiny real Murchison stack, a tiny train-job config, and how to launch 2 ranks."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from geodl_hpc.archive.murchison import build_murchison

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
HOROVODRUN = Path(sys.executable).parent / "horovodrun"


def need_horovod() -> None:
    """Skip (or under CI=true fail) when Horovod is not importable."""
    if importlib.util.find_spec("horovod") is None or not HOROVODRUN.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("horovod is not importable under CI; build it with tools/build_horovod.sh")
        pytest.skip("horovod is not importable (build it with tools/build_horovod.sh)")


def horovodrun(*args: str | Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``horovodrun -np 2 -H localhost:2 --gloo python ARGS`` from the repo root."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(extra_env or {})}
    cmd = [str(HOROVODRUN), "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, *map(str, args)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Murchison stack at 4 km (102 x 83 pixels, 5 layers, 16-pixel chunks), about 3 s to build."""
    out = tmp_path_factory.mktemp("train_archive") / "murchison.zarr"
    return build_murchison(out, resolution=4000.0, chunk=16, progress=False)


def job_dict(archive: Path, output: Path, **train: Any) -> dict[str, Any]:
    """A tiny train-job config: 8-pixel chips, 48 samples, batches of 8, 2 epochs, a checkpoint every 3 steps."""
    base: dict[str, Any] = {
        "epochs": 2,
        "checkpoint_every_steps": 3,
        "log_every": 1,
        "progress": False,
        "plot": True,
        "threads": 1,
        "pos_weight": 10.0,
        "model": {"width": 8, "depth": 2},
        "data": {"chip": 8, "batch_size": 8, "n_samples": 48, "backend": "local"},
    }
    base.update(train)
    return {"archive": str(archive), "output": str(output), "train": base}


def write_job(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.json"
    path.write_text(json.dumps(data))
    return path


def run_worker(job: Path, out: Path, env: dict[str, str] | None = None, timeout: float = 120) -> int:
    """Run the train worker in a subprocess (one rank); returns its exit status (-9 when it killed itself)."""
    full = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(job), str(out)], cwd=REPO, env=full, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if proc.returncode not in (0, -9):
        raise AssertionError(f"worker failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode


def result(out: Path, rank: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / f"result-rank{rank}.json").read_text())
    return data
