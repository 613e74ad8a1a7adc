"""A small fully-convolutional CNN for mineral prospectivity: P(deposit) = sigmoid(f(X)) per pixel or per chip."""

from __future__ import annotations

import torch
from torch import nn


class ProspectivityCNN(nn.Module):
    """``depth`` 3x3 conv blocks of ``width`` channels and a 1x1 head; any chip size (fully convolutional).

    ``per_pixel=True`` returns logits ``[B, K, K]``; otherwise the mean over pixels, ``[B]`` (one logit per chip).
    No batch norm: results do not depend on how a batch is split over ranks.
    """

    def __init__(
        self, in_channels: int, width: int = 16, depth: int = 3, per_pixel: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 1, 1)
        self.per_pixel = per_pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))[:, 0]
        return logits if self.per_pixel else logits.mean(dim=(-2, -1))
