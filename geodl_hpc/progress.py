"""Progress bars for long work: shown on an interactive terminal, silent in pipes, logs and tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def progress_bar(iterable: Iterable[T], *, desc: str, unit: str, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar on stderr; ``disable=None`` lets tqdm hide it when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=unit, disable=None if enabled else True, **kwargs)
