"""ForecastRNN: a GRU/LSTM over each cell's sequence of past-window features giving the occurrence logit
(P(N >= 1 event >= Mc) = sigmoid(logit)) and the log expected count (a Poisson rate) of the next window."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from geodl_hpc.errors import ConfigError


class ForecastRNN(nn.Module):
    """Input ``x`` (B, L, F) raw features (normalised inside with stored training statistics); output (B, 2):
    column 0 the occurrence logit, column 1 the log expected count.

    ``b_value`` (a buffer, saved in checkpoints) is the Gutenberg-Richter b of the training period that spreads
    the expected count over magnitude bins.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    b_value: torch.Tensor

    def __init__(
        self,
        n_features: int,
        *,
        hidden: int = 32,
        layers: int = 1,
        cell: Literal["gru", "lstm"] = "gru",
        dropout: float = 0.0,
        feature_mean: np.ndarray | None = None,
        feature_std: np.ndarray | None = None,
        base_rate: float = 0.01,
        b_value: float = 1.0,
    ) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ConfigError(f"forecast_rnn.cell: {cell!r} is not one of 'gru', 'lstm'")
        if n_features < 1 or hidden < 1 or layers < 1:
            raise ConfigError("forecast_rnn: n_features, hidden and layers must be at least 1")
        rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            n_features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, 2)
        mean = np.zeros(n_features) if feature_mean is None else np.asarray(feature_mean)
        std = np.ones(n_features) if feature_std is None else np.asarray(feature_std)
        self.register_buffer("feature_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))
        self.register_buffer("b_value", torch.tensor(float(b_value), dtype=torch.float32))
        with torch.no_grad():  # start at the training-period base rate: P = 1 - exp(-rate), log rate
            rate = max(float(base_rate), 1e-6)
            p = min(max(1.0 - float(np.exp(-rate)), 1e-6), 1 - 1e-6)
            self.head.bias.copy_(torch.tensor([float(np.log(p / (1 - p))), float(np.log(rate))]))
            self.head.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.feature_mean) / self.feature_std
        out, _ = self.rnn(z)
        return self.head(out[:, -1])

    def training_loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """BCE on occurrence (``y > 0``) + Poisson NLL of the counts ``y`` (B, 1); correct = occurrence hits."""
        logits = logits.float()
        counts = y.reshape(-1).float()
        occurred = (counts > 0).float()
        bce = nn.functional.binary_cross_entropy_with_logits(logits[:, 0], occurred)
        nll = nn.functional.poisson_nll_loss(logits[:, 1], counts, log_input=True, full=False)
        correct = ((logits[:, 0].detach() > 0).float() == occurred).sum().item()
        return bce + nll, float(correct), float(counts.numel())
