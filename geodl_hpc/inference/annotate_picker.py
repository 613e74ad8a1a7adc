"""The picker as the annotation engine sees it: module, window, rate, channels, class names and normaliser, from
a training folder, a checkpoint or a loaded picker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import ConfigError, InputDataError
from geodl_hpc.inference.runner import module_digest
from geodl_hpc.pipeline.decode import normalise_windows

if TYPE_CHECKING:
    import torch


@dataclass
class Picker:
    """What the engine needs of a picker: the module, its window, rate, channels, class names and normaliser."""

    module: torch.nn.Module
    window: int
    sampling_rate: float
    channels: tuple[str, ...]
    output_names: tuple[str, ...]
    normalise: Callable[[np.ndarray], np.ndarray]
    digest: str
    source: Path | None = None

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, K, T)`` float32 of windows ``x (B, C, T)`` (normalised here)."""
        import torch

        with torch.inference_mode():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(self.normalise(x), dtype=np.float32)))
            probs = _probabilities_fn(self.module)(logits)
        return np.asarray(probs.float().numpy(), dtype=np.float32)


def _probabilities_fn(module: Any) -> Callable[[Any], Any]:
    """The picker's own logits -> probabilities (``module.probabilities``), else a softmax over classes."""
    if callable(getattr(module, "probabilities", None)):
        fn: Callable[[Any], Any] = module.probabilities
        return fn
    import torch

    return lambda logits: torch.softmax(logits.float(), dim=1)


def as_picker(model: Any) -> Picker:
    """A :class:`Picker` from a path (``models.picker.load_picker``), a ``LoadedPicker`` or a :class:`Picker`."""
    if isinstance(model, Picker):
        return model
    source: Path | None = None
    if isinstance(model, str | Path):
        source = Path(model)
        if not source.exists():
            raise InputDataError(f"{source}: no such picker; point model= at a training output folder or checkpoint")
        try:
            from geodl_hpc.models.picker import load_picker
        except ImportError:
            raise ConfigError("model: this install has no geodl_hpc.models.picker; update geodl_hpc") from None
        model = load_picker(source)
    needed = ("module", "window", "sampling_rate", "channels", "output_names")
    missing = [n for n in needed if not hasattr(model, n)]
    if missing:
        raise ConfigError(f"model: {type(model).__name__} lacks {missing}; give a picker checkpoint")
    module = model.module
    module.eval()
    normalise = getattr(model, "normalise", None) or normalise_windows
    return Picker(
        module=module,
        window=int(model.window),
        sampling_rate=float(model.sampling_rate),
        channels=tuple(str(c) for c in model.channels),
        output_names=tuple(str(c) for c in model.output_names),
        normalise=normalise,
        digest=module_digest(module),
        source=source,
    )


# ------------------------------------------------------------------------------------------------ archive
