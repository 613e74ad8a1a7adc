"""Model families; ``build_model(name, in_channels, **options)`` is how jobs make one. Imports torch when called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geodl_hpc.errors import ConfigError

if TYPE_CHECKING:
    import torch

MODELS = ("prospectivity_cnn", "phasenet", "spectrogram_cnn")


def build_model(name: str, in_channels: int, **options: Any) -> torch.nn.Module:
    """A fresh model ``name`` for inputs with ``in_channels`` channels."""
    if name == "prospectivity_cnn":
        from geodl_hpc.models.prospectivity import ProspectivityCNN

        return ProspectivityCNN(in_channels, **options)
    if name in ("phasenet", "spectrogram_cnn"):
        from geodl_hpc.models.picker import build_picker

        return build_picker(name, in_channels, **options)
    raise ConfigError(f"train.model.name: {name!r} is not one of {', '.join(MODELS)}")


__all__ = ["MODELS", "build_model"]
