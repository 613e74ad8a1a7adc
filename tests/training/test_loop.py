"""The training loop end to end on a tiny real stack: kill-and-resume exactness, preemption agreed by all ranks,
Horovod ranks ending with identical weights, AMP bf16 on CPU, GPU selection by config, metrics and plots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from geodl_hpc.config import from_dict
from geodl_hpc.errors import ConfigError
from geodl_hpc.training.checkpoint import CheckpointError
from geodl_hpc.training.config import TrainJobConfig
from tests.training.conftest import WORKER, horovodrun, job_dict, need_horovod, result, run_worker, write_job


def _train_in_process(archive: Path, out: Path, **train: object) -> dict[str, object]:
    from jobs.train import main

    return main(from_dict(TrainJobConfig, job_dict(archive, out, **train)))


@pytest.fixture(scope="module")
def uninterrupted(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full run (12 steps, checkpoints every 3) as the reference, in a subprocess like the resumed runs."""
    out = tmp_path_factory.mktemp("uninterrupted")
    assert run_worker(write_job(out, job_dict(tiny_archive, out)), out) == 0
    return out


def test_uninterrupted_run_logs_metrics_curve_and_checkpoints(uninterrupted: Path) -> None:
    res = result(uninterrupted)
    assert res["status"] == "completed" and res["step"] == 12 and res["epoch"] == 2
    records = [json.loads(line) for line in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 13))
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
    assert (uninterrupted / "learning_curve.png").stat().st_size > 1000
    names = sorted(p.name for p in (uninterrupted / "checkpoints").iterdir())
    assert names == ["best.pt", "step-00000006.pt", "step-00000009.pt", "step-00000012.pt"]  # keep_last=3


def test_sigkill_at_several_steps_then_resume_is_bit_identical(tiny_archive: Path, uninterrupted: Path) -> None:
    out = Path(str(uninterrupted) + "-killed")
    job = write_job(out, job_dict(tiny_archive, out))
    # Killed mid-step 4 (resumes from 3), right after checkpoint 6 (resumes from 6), mid-step 8 in epoch 1
    # (resumes from 6 again), then a run to the end.
    for kill in ("4:mid", "6", "8:mid"):
        assert run_worker(job, out, env={"GEODL_TRAIN_KILL_AT": kill}) == -9
        assert not (out / "result-rank0.json").exists()
    assert run_worker(job, out) == 0
    assert result(out)["param_checksum"] == result(uninterrupted)["param_checksum"]
    assert result(out)["loss"] == result(uninterrupted)["loss"]
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x)["step"] for x in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert steps == ref  # what killed runs logged after their checkpoint was dropped on resume


def test_resume_with_changed_settings_is_refused(tiny_archive: Path, uninterrupted: Path) -> None:
    with pytest.raises(CheckpointError, match=r"train\.lr") as err:
        _train_in_process(tiny_archive, uninterrupted, lr=0.5)
    assert "\n" not in str(err.value) and "new output folder" in str(err.value)


def test_amp_bf16_on_cpu_trains(tiny_archive: Path, tmp_path: Path) -> None:
    res = _train_in_process(tiny_archive, tmp_path, amp="bf16", epochs=1, plot=False)
    assert res["status"] == "completed" and res["device"] == "cpu"
    assert 0 < float(res["loss"]) < 10  # type: ignore[arg-type]


def test_gpu_paths_are_chosen_by_config(tiny_archive: Path, tmp_path: Path) -> None:
    import torch

    from geodl_hpc.training.loop import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        return
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda' requested but torch sees no GPU") as err:
        _train_in_process(tiny_archive, tmp_path, device="cuda")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"train\.amp: fp16"):
        _train_in_process(tiny_archive, tmp_path, amp="fp16")


# ------------------------------------------------------------------------------------------------------------------
# Two Horovod ranks (gloo): identical weights, preemption agreed at one step, requeue resumes to the same result
# ------------------------------------------------------------------------------------------------------------------

HVD_TRAIN = {
    "backend": "horovod",
    "epochs": 2,
    "data": {"chip": 8, "batch_size": 8, "n_samples": 64, "backend": "local"},
}


def _wait(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"horovodrun hung (killed after {timeout} s):\n{out[-3000:]}") from None
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.horovod
@pytest.mark.slow
def test_horovod_two_ranks_preempt_together_and_resume_to_identical_weights(tiny_archive: Path, tmp_path: Path) -> None:
    need_horovod()
    ref = tmp_path / "ref"
    _wait(horovodrun(WORKER, write_job(ref, job_dict(tiny_archive, ref, **HVD_TRAIN)), ref), 120)
    r0, r1 = result(ref, 0), result(ref, 1)
    assert (r0["size"], r0["status"], r1["status"]) == (2, "completed", "completed")
    assert r0["param_checksum"] == r1["param_checksum"]  # ranks hold identical parameters

    run = tmp_path / "run"
    job = write_job(run, job_dict(tiny_archive, run, **HVD_TRAIN))
    proc = horovodrun(WORKER, job, run, extra_env={"WORKER_STEP_SLEEP": "0.25"})
    deadline = time.monotonic() + 90
    metrics = run / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count('"kind": "step"') >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be signalled"
        time.sleep(0.1)
    os.kill(int((run / "pid-rank1").read_text()), signal.SIGUSR2)  # one rank only
    _wait(proc, 60)
    p0, p1 = result(run, 0), result(run, 1)
    assert p0["status"] == p1["status"] == "preempted"
    assert p0["step"] == p1["step"] < r0["step"]
    assert p1["signal"] == signal.SIGUSR2 and p0["signal"] is None
    assert Path(p0["checkpoint"]).name == f"step-{p0['step']:08d}.pt"
    assert not list((run / "checkpoints").glob(".*.tmp"))

    # The requeued job resumes from that checkpoint and ends bit-identical to the uninterrupted run.
    for f in run.glob("result-rank*.json"):
        f.unlink()
    _wait(horovodrun(WORKER, job, run), 120)
    f0, f1 = result(run, 0), result(run, 1)
    assert f0["status"] == f1["status"] == "completed"
    assert f0["param_checksum"] == f1["param_checksum"] == r0["param_checksum"]
