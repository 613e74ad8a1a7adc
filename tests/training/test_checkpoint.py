"""Checkpoints: atomic writes, keep-last-K + best, weights_only loading, RNG round trip, config-hash check."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from geodl_hpc.training import checkpoint as ck
from geodl_hpc.training.checkpoint import CheckpointError, CheckpointManager, load_checkpoint
from geodl_hpc.training.config import TrainConfig


def _manager(folder: Path, keep: int = 2, cfg: TrainConfig | None = None) -> CheckpointManager:
    cfg = cfg or TrainConfig()
    return CheckpointManager(folder, keep, cfg.config_hash(), cfg.fingerprint())


def test_keeps_last_k_and_best(tmp_path: Path) -> None:
    m = _manager(tmp_path)
    for step in (3, 6, 9, 12):
        m.save({"w": torch.full((2,), float(step)), "epoch": 0}, step, best=step == 6)
    assert [s for s, _ in m.steps()] == [9, 12]
    assert m.latest() == tmp_path / "step-00000012.pt"
    assert load_checkpoint(tmp_path / "best.pt")["step"] == 6
    state = m.load_latest()
    assert state["step"] == 12 and torch.equal(state["w"], torch.full((2,), 12.0))


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _manager(tmp_path)
    m.save({"w": torch.ones(1)}, 1)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        m.save({"w": torch.zeros(1)}, 2)
    assert [s for s, _ in m.steps()] == [1]  # the half-written temp file is never a checkpoint
    assert m.load_latest()["step"] == 1


def test_loading_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "step-00000001.pt"
    torch.save({"step": 1, "evil": Path("/etc")}, path)  # an arbitrary class: would need unpickling
    with pytest.raises(CheckpointError, match="unreadable checkpoint") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_changed_config_is_a_one_line_error_naming_the_key(tmp_path: Path) -> None:
    _manager(tmp_path).save({"w": torch.ones(1)}, 1)
    with pytest.raises(CheckpointError, match=r"changed: train\.lr\b") as err:
        _manager(tmp_path, cfg=TrainConfig(lr=0.1)).load_latest()
    assert "\n" not in str(err.value) and "step-00000001.pt" in str(err.value)
    # Resume-safe settings (more epochs, other logging) do not block a resume.
    assert _manager(tmp_path, cfg=TrainConfig(epochs=9, log_every=1)).load_latest()["step"] == 1


def test_rng_states_round_trip_through_weights_only(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = ck.save_atomic({"step": 0, "rng": ck.rng_state()}, tmp_path / "s.pt")
    want = (random.random(), np.random.rand(), torch.rand(1))
    ck.set_rng_state(load_checkpoint(path)["rng"])
    got = (random.random(), np.random.rand(), torch.rand(1))
    assert want[:2] == got[:2] and torch.equal(want[2], got[2])
