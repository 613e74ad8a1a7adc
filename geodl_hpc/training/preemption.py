"""Preemption as a flag: USR2/TERM only *request* a checkpoint; the loop acts on it at a step boundary.

The handler does nothing but set a flag (safe at any instruction). The loop allreduces the flag with its step
metrics, so when any rank was signalled every rank sees it after the same step, all stop together, rank 0 writes
the checkpoint, and the job returns status ``preempted``. Training never talks to the scheduler: on a cluster the
launcher (``geodl_hpc.launch.preemption.requeue_if_preempted``) requeues a job that returns that status, and the
requeued run resumes from the checkpoint; elsewhere, run it again on the same output.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

PREEMPT_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class PreemptionFlag:
    """Context manager: while inside, USR2/TERM set ``requested`` (old handlers restored on exit)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = PREEMPT_SIGNALS) -> None:
        self.signals = signals
        self.requested = False
        self.signum: int | None = None
        self._old: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signum = signum

    def __enter__(self) -> PreemptionFlag:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in self.signals:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
