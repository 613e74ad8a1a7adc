"""Training engine: one loop for every backend (none, Horovod, torch.distributed), exact resume, preemption.

Importing this package imports no torch; ``train`` and the checkpoint helpers import it when called.
"""

from __future__ import annotations

from geodl_hpc.training.config import DataConfig, ModelConfig, TrainConfig, TrainJobConfig

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "TrainJobConfig"]
