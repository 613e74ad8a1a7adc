"""A small fully-convolutional CNN for mineral prospectivity: P(deposit) = sigmoid(f(X)) per pixel or per chip."""

from __future__ import annotations

from collections.abc import Sequence

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


class EnsembleMean(nn.Module):
    """Averages the probabilities of several per-pixel models (an ensemble of training seeds).

    Returns the logit of the mean probability, so ``sigmoid(output)`` is the ensemble's P(deposit) and any code
    that applies a sigmoid to a model's logits (the tiled inference runner) serves the ensemble unchanged.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("EnsembleMean: needs at least one member model")
        self.members = nn.ModuleList(members)

    @property
    def per_pixel(self) -> bool:
        """Whether the members return per-pixel logits (they all share one setting)."""
        return bool(getattr(self.members[0], "per_pixel", True))

    @per_pixel.setter
    def per_pixel(self, value: bool) -> None:
        for m in self.members:
            m.per_pixel = value  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prob = torch.stack([torch.sigmoid(m(x)) for m in self.members]).mean(dim=0)
        return torch.logit(prob, eps=1e-7)
