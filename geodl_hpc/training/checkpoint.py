"""Checkpoints that load without running pickled code, are never half written, and make resume exact.

A checkpoint is a plain dict of tensors and plain Python values (``torch.load(weights_only=True)`` reads it):
model, optimizer, scheduler and AMP-scaler state, every RNG state, the pipeline cursor, epoch/step and the
config hash. Files are ``step-00000042.pt`` (the last ``keep_last`` kept) and ``best.pt``, each written to a
temporary name in the same folder, fsynced and renamed into place.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.errors import GeodlError

if TYPE_CHECKING:
    import torch

    from geodl_hpc.collective import Collective

STEP_FILE = re.compile(r"^step-(\d{8,})\.pt$")


class CheckpointError(GeodlError):
    """A checkpoint is unreadable or belongs to another configuration (names the file and what to do)."""


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename: readers see old or new, never half."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(path: Path, config_hash: str | None = None, fingerprint: dict[str, Any] | None = None) -> Any:
    """Read a checkpoint with ``weights_only=True``; a different ``config_hash`` is a one-line error."""
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({exc.__class__.__name__}); delete it to resume from an older one"
        ) from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path}: not a geodl training checkpoint; point output at a training run folder")
    if config_hash is not None and state.get("config_hash") != config_hash:
        changed = ""
        if fingerprint is not None and isinstance(state.get("config"), str):
            old = json.loads(state["config"])
            keys = sorted(_diff(old, fingerprint))
            changed = f" (changed: {', '.join(keys[:5])})" if keys else ""
        raise CheckpointError(
            f"{path}: saved with config hash {state.get('config_hash')}, this run has {config_hash}{changed}; "
            "restore those settings to resume, or train into a new output folder"
        )
    return state


def _diff(old: Any, new: Any, prefix: str = "train") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f"{prefix}.{key}")
        return out
    return [] if old == new else [prefix]


class CheckpointManager:
    """Writes, prunes and finds the checkpoints of one run folder."""

    def __init__(self, folder: Path, keep_last: int, config_hash: str, fingerprint: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.keep_last = keep_last
        self.config_hash = config_hash
        self.fingerprint = fingerprint

    def steps(self) -> list[tuple[int, Path]]:
        """Saved ``(step, path)`` pairs, oldest first (temporary files ignored)."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := STEP_FILE.match(p.name))]
        return sorted(found)

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        steps = self.steps()
        return steps[-1][1] if steps else None

    def save(self, state: dict[str, Any], step: int, best: bool = False) -> Path:
        """Write ``step-N.pt`` (and ``best.pt`` if ``best``), then delete all but the last ``keep_last``."""
        state = {**state, "step": step, "config_hash": self.config_hash, "config": json.dumps(self.fingerprint)}
        path = save_atomic(state, self.folder / f"step-{step:08d}.pt")
        if best:
            save_atomic(state, self.folder / "best.pt")
        for _, old in self.steps()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self) -> Any:
        """The newest checkpoint's state (config hash checked), or None when the folder has none."""
        path = self.latest()
        return None if path is None else load_checkpoint(path, self.config_hash, self.fingerprint)


# ------------------------------------------------------------------------------------------------------------------
# RNG states as tensors and plain values (so that weights_only loading works)
# ------------------------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states of this process."""
    import torch

    version, pystate, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(pystate, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    import torch

    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state(
        (nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"], nps["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def gather_rows(collective: Collective, row: torch.Tensor) -> torch.Tensor:
    """Every rank's 1-D int64 ``row`` stacked ``[size, n]`` on every rank (an allgather made of one allreduce)."""
    import torch

    table = torch.zeros(collective.size, row.numel(), dtype=torch.int64)
    table[collective.rank] = row.to(torch.int64)
    out: torch.Tensor = collective.allreduce(table, op="sum")
    return out


def all_rank_torch_rng(collective: Collective) -> torch.Tensor:
    """The torch CPU RNG state of every rank as ``[size, n]`` int64 (rank r restores row r)."""
    import torch

    return gather_rows(collective, torch.get_rng_state().to(torch.int64))


def restore_rank_torch_rng(table: torch.Tensor, rank: int, size: int) -> None:
    """Set this rank's torch RNG from row ``rank`` of a table saved with the same rank count."""
    import torch

    if table.shape[0] != size:
        return  # a different rank count: keep the freshly seeded state
    torch.set_rng_state(table[rank].to(torch.uint8))


# Wrappers whose weights are the model's under a prefix: DDP/Horovod (``module.``) and the main job's chip-pooled
# fold models (``net.``); a checkpoint of either loads into the bare model.
WRAPPER_PREFIXES = ("module.", "net.")


def fit_state_dict(module: torch.nn.Module, weights: dict[str, Any], path: Path, what: str) -> None:
    """Load ``weights`` into ``module`` (unwrapping known wrapper prefixes); a mismatch is a one-line error naming
    ``path`` and the first missing, unexpected or mis-shaped key."""
    own = module.state_dict()
    for prefix in WRAPPER_PREFIXES:
        if weights and all(k.startswith(prefix) for k in weights) and not any(k.startswith(prefix) for k in own):
            weights = {k.removeprefix(prefix): v for k, v in weights.items()}
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and tuple(getattr(weights[k], "shape", ())) != tuple(own[k].shape)]
    for label, keys in (("missing key", missing), ("unexpected key", unexpected), ("wrong shape of key", shapes)):
        if keys:
            detail = ""
            if label.startswith("wrong"):
                detail = f" ({tuple(weights[keys[0]].shape)} in the file, {tuple(own[keys[0]].shape)} in the model)"
            more = f", {len(keys) - 1} more" if len(keys) > 1 else ""
            raise CheckpointError(
                f"{path}: checkpoint does not fit {what}: {label} {keys[0]!r}{detail}{more}; give a checkpoint "
                "of this model and config (or retrain)"
            )
    module.load_state_dict(weights)
