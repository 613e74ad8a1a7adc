"""Job: count steps slowly, save progress when preempted or out of time, and resume after the requeue.

A small, real check that a cluster profile's preemption path works end to end (USR2 -> checkpoint hook -> requeue
-> resume): ``geodl submit resume_check configs/resume_check.yaml --cluster PROFILE``. ``state.json`` in the
output folder records each start and the step it resumed from.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Literal

from geodl_hpc.launch.preemption import on_preemption, restart_count, save_json_atomic


@dataclasses.dataclass(frozen=True)
class ResumeCheckConfig:
    """How many steps to count and how long each takes."""

    job: Literal["resume_check"] = "resume_check"
    output: str = "runs/resume-check"
    steps: int = 20
    step_seconds: float = 1.0


def main(config: ResumeCheckConfig) -> dict[str, Any]:
    """Count from the saved step to ``config.steps``; the preemption hook saves the step reached."""
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / "state.json"
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"step": 0, "starts": []}
    state["starts"].append({"from_step": state["step"], "restart_count": restart_count()})
    save_json_atomic(path, state)

    def save() -> None:
        state["checkpointed_at"] = state["step"]
        save_json_atomic(path, state)

    with on_preemption(save):
        while state["step"] < config.steps:
            time.sleep(config.step_seconds)
            state["step"] += 1
    state["done"] = True
    save_json_atomic(path, state)
    return dict(state)
