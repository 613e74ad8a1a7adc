"""Tiled inference of a model over a raster stack into a probability map (Zarr), resumable through a ledger.

Per region (whole output chunks): read the input window with halo once (all layers in one zarr call),
normalise as the pipeline does (``(x - mean) / std`` with the stored statistics, NaN -> 0, optional mask
channel), pad at the raster edge, run the tiles in batches, stitch (crop or blend), set nodata where any input
layer is nodata, write the region and record it in the ledger. The next region is read while this one runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.archive.grid import GridSpec
from geodl_hpc.archive.stack import RunningStats
from geodl_hpc.archive.store import provenance, require_complete
from geodl_hpc.errors import ArchiveError, ConfigError, InputDataError
from geodl_hpc.inference.blend import RegionStitcher
from geodl_hpc.inference.cache import ChunkCache
from geodl_hpc.inference.config import InferJobConfig
from geodl_hpc.inference.geometry import TilePlan, Window, clip_to_raster, pad_to_window
from geodl_hpc.inference.writer import (
    PROBABILITY,
    UNCERTAINTY,
    Ledger,
    create_output,
    finalise,
    ledger_folder,
    map_id,
    open_arrays,
    read_settings,
    settings_diff,
    stats_to_dict,
    write_region,
)
from geodl_hpc.progress import progress_bar

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class InputSpec:
    """What the model reads: layer names, their normalisation and whether a mask channel is appended."""

    layers: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    mask_channel: bool

    @property
    def channels(self) -> int:
        return len(self.layers) + int(self.mask_channel)


@dataclass
class LoadedModel:
    """A model ready for inference, with the layers it expects and a digest of its weights."""

    module: torch.nn.Module
    layers: tuple[str, ...] | None
    mask_channel: bool | None
    digest: str
    source: Path | None
    label: str | None = None


# ------------------------------------------------------------------------------------------------ model


def receptive_margin(module: torch.nn.Module) -> int | None:
    """Pixels of context a stride-1 conv net needs on each side (sum of its convs' half-widths); None if unknown."""
    from torch import nn

    margin = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if any(s != 1 for s in m.stride):
                return None
            k, d = m.kernel_size, m.dilation
            margin += max(d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        elif isinstance(m, nn.modules.pooling._MaxPoolNd | nn.modules.pooling._AvgPoolNd | nn.Upsample):
            return None
    return margin


def _weights_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _find_checkpoint(path: Path) -> Path:
    if path.is_dir():
        for candidate in (path / "best.pt", path / "checkpoints" / "best.pt"):
            if candidate.is_file():
                return candidate
        steps = sorted(path.glob("step-*.pt")) or sorted(path.glob("checkpoints/step-*.pt"))
        if steps:
            return steps[-1]
    if not path.is_file():
        raise InputDataError(
            f"{path}: no such checkpoint; point checkpoint= at a .pt file of a training run "
            "(e.g. runs/train/checkpoints/best.pt)"
        )
    return path


def load_model_checkpoint(path: Path) -> LoadedModel:
    """A training checkpoint's model (``weights_only`` load) with the layers it was trained on."""
    from geodl_hpc.models import build_model
    from geodl_hpc.training.checkpoint import load_checkpoint

    path = _find_checkpoint(Path(path))
    state = load_checkpoint(path)
    try:
        train_cfg = json.loads(state["config"])
        weights = state["model"]
        m = train_cfg["model"]
        data = train_cfg.get("data", {})
    except (KeyError, TypeError, ValueError):
        raise InputDataError(
            f"{path}: checkpoint lacks its model or config; use one written by `geodl train`"
        ) from None
    first = next((t for t in weights.values() if getattr(t, "ndim", 0) == 4), None)
    if first is None:
        raise InputDataError(f"{path}: checkpoint has no convolution weights; it is not a raster CNN")
    in_ch = int(first.shape[1])
    module = build_model(
        str(m["name"]), in_ch, width=int(m["width"]), depth=int(m["depth"]), per_pixel=True, dropout=float(m["dropout"])
    )
    module.load_state_dict(weights)
    layers = tuple(data["layers"]) if data.get("layers") else None
    if layers is not None and in_ch not in (len(layers), len(layers) + 1):
        raise InputDataError(f"{path}: model has {in_ch} input channels but was trained on layers {list(layers)}")
    mask = None if layers is None else in_ch == len(layers) + 1
    label = data.get("label")  # never an input: "all layers" excludes it
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return LoadedModel(module, layers, mask, digest, path, str(label) if label else None)


def _first_in_channels(module: torch.nn.Module) -> int | None:
    from torch import nn

    conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    return int(conv.in_channels) if conv is not None else None


def input_spec(
    archive: Path, loaded: LoadedModel, config: InferJobConfig, available: list[str], stats: dict[str, Any]
) -> InputSpec:
    """Resolve layers and mask channel from the config, the checkpoint and the archive; check they agree."""
    label = loaded.label or config.label
    layers = config.layers or loaded.layers or tuple(n for n in available if n != label)
    missing = [n for n in layers if n not in available]
    if missing:
        raise InputDataError(
            f"{archive}: has no layer {missing[0]!r} that the model needs; archive layers are {', '.join(available)}"
        )
    in_ch = _first_in_channels(loaded.module)
    mask = config.mask_channel if config.mask_channel is not None else loaded.mask_channel
    if mask is None:
        mask = in_ch == len(layers) + 1
    spec_channels = len(layers) + int(mask)
    if in_ch is not None and in_ch != spec_channels:
        raise InputDataError(
            f"{archive}: the model takes {in_ch} input channels but {len(layers)} layers {list(layers)}"
            f"{' + mask' if mask else ''} give {spec_channels}; set layers= to the layers it was trained on"
        )
    mean = np.asarray([float(stats[n]["mean"]) for n in layers], np.float32)
    std = np.asarray([float(stats[n]["std"]) if float(stats[n]["std"] or 0) > 0 else 1.0 for n in layers], np.float32)
    return InputSpec(tuple(layers), mean, std, bool(mask))


# ------------------------------------------------------------------------------------------------ kernels


def normalise_block(blocks: list[np.ndarray], spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(channels, h, w)`` model input (NaN -> 0, mask channel if asked) and the all-layers-valid mask."""
    h, w = blocks[0].shape
    x = np.empty((spec.channels, h, w), dtype=np.float32)
    scale = 1.0 / spec.std
    shift = spec.mean * scale
    for i, block in enumerate(blocks):
        np.multiply(block, scale[i], out=x[i], casting="unsafe")
        x[i] -= shift[i]
    n = len(spec.layers)
    valid: np.ndarray = np.asarray(np.isfinite(x[:n]).all(axis=0))
    if not valid.all():
        np.nan_to_num(x[:n], copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    if spec.mask_channel:
        x[n] = valid
    return x, valid


def read_input(
    archive: Path, spec: InputSpec, plan: TilePlan, want: Window, edge: str, cache: ChunkCache | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The padded model input over ``want`` and the validity mask over its part inside the raster.

    With ``cache``, whole chunks are decoded once and reused by neighbouring windows (same values)."""
    from geodl_hpc.pipeline.decode import read_raster_unit

    have = clip_to_raster(want, plan.height, plan.width)
    if cache is not None:
        blocks = cache.read(have)
    else:
        blocks = read_raster_unit(str(archive), spec.layers, (have.r0, have.r1, have.c0, have.c1))
    x, valid = normalise_block(blocks, spec)
    return pad_to_window(x, have, want, "zero" if edge == "zero" else "reflect"), valid


class Predictor:
    """Runs batches of tiles: probability, and the MC-dropout standard deviation when ``mc_samples`` > 1."""

    def __init__(self, module: torch.nn.Module, config: InferJobConfig, halo: int) -> None:
        import torch

        from geodl_hpc.training.loop import resolve_device

        self.device = resolve_device(config.device)
        if config.amp == "fp16" and self.device.type == "cpu":
            raise ConfigError("amp: fp16 autocast needs a GPU; use amp=bf16 on CPU or device=cuda")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
        self.module = module.to(self.device).eval()
        self.halo = halo
        self.mc = config.mc_samples
        self.seed = config.seed
        self.dropouts = [m for m in module.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
        if self.mc and not self.dropouts:
            raise ConfigError("mc_samples: the model has no dropout layers; set mc_samples=0 or train with dropout")

    @property
    def n_outputs(self) -> int:
        return 2 if self.mc else 1

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            logits = self.module(x)
        if logits.ndim == 4:
            logits = logits[:, 0]
        h = self.halo
        if h:
            logits = logits[:, h : logits.shape[1] - h, h : logits.shape[2] - h]
        return torch.sigmoid(logits.float())

    def __call__(self, batch: np.ndarray, region_index: int) -> np.ndarray:
        """``(B, n_outputs, tile_rows, tile_cols)`` float32 for a ``(B, C, in_rows, in_cols)`` batch."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            prob = self._forward(x)
            outs = [prob]
            if self.mc:
                torch.manual_seed(self.seed * 1_000_003 + region_index)  # reproducible across resumes and ranks
                for m in self.dropouts:
                    m.train()
                try:
                    samples = torch.stack([self._forward(x) for _ in range(self.mc)])
                finally:
                    for m in self.dropouts:
                        m.eval()
                outs.append(samples.std(dim=0, correction=0))
            return torch.stack(outs, dim=1).cpu().numpy()


def predict_region(
    plan: TilePlan, region: Window, x: np.ndarray, want: Window, predictor: Predictor, batch_size: int, index: int
) -> np.ndarray:
    """Stitched ``(n_outputs, h, w)`` predictions of one region from its padded input ``x`` over ``want``."""
    tiles = plan.tiles(region)
    stitcher = RegionStitcher(plan, region, predictor.n_outputs)
    for b in range(0, len(tiles), batch_size):
        group = tiles[b : b + batch_size]
        batch = np.stack([x[(slice(None), *t.input.relative_to(want))] for t in group])
        preds = predictor(batch, index)
        for tile, pred in zip(group, preds, strict=True):
            stitcher.add(tile, pred)
    return stitcher.result()


# ------------------------------------------------------------------------------------------------ driver


def _resolve_model(config: InferJobConfig, model: Any) -> LoadedModel:
    import torch

    if isinstance(model, torch.nn.Module):
        return LoadedModel(model, None, None, _weights_digest(model), None)
    if model is not None:
        return load_model_checkpoint(Path(model))
    if config.checkpoint is not None:
        return load_model_checkpoint(Path(config.checkpoint))
    if config.model is None:
        raise ConfigError("checkpoint/model: give a checkpoint (a .pt file of a training run) or a model section")
    raise ConfigError("model: build the model first (jobs.infer.main does) or give a checkpoint")


def infer(
    archive: Path | str,
    model: torch.nn.Module | Path | str | None,
    out: Path | str,
    config: InferJobConfig,
    *,
    on_region: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Predict ``model`` (a module or a checkpoint path) over ``archive`` into the map ``out``; see the module doc.

    Runs this config's ``rank``'s regions that the ledger lacks; the process that finds all regions done marks
    the map complete. ``on_region(index)`` is called after each region is recorded (tests use it to crash)."""
    import zarr

    archive, out = Path(archive), Path(out)
    require_complete(archive, "raster")
    grid = GridSpec.from_archive(archive)
    loaded = _resolve_model(config, model)
    group = zarr.open_group(str(archive), mode="r")
    available = [str(n) for n in group.attrs.get("layers") or []]  # type: ignore[union-attr]
    stats: dict[str, Any] = {n: group[n].attrs.get("statistics") or {} for n in available}
    spec = input_spec(archive, loaded, config, available, stats)
    margin = receptive_margin(loaded.module)
    halo = config.halo if config.halo is not None else (margin if margin is not None else 0)
    if config.stitch == "crop" and margin is not None and halo < margin:
        raise ConfigError(
            f"halo: {halo} px is less than the model's receptive-field margin ({margin} px), so stitch=crop would "
            f"leave seams; set halo >= {margin} or stitch=blend"
        )
    chunk = config.chunk or int(group[spec.layers[0]].chunks[0])  # type: ignore[union-attr]
    plan = TilePlan(
        grid.height, grid.width, config.tile, halo, config.overlap, chunk, config.region_chunks, config.stitch
    )
    predictor = Predictor(loaded.module, config, halo)
    out_layers = [PROBABILITY, UNCERTAINTY][: predictor.n_outputs]
    names = [layer.name for layer in out_layers]
    settings = {
        **config.map_settings(),
        "archive": str(archive.resolve()),
        "grid": grid.root_attrs(),
        "layers": list(spec.layers),
        "mask_channel": spec.mask_channel,
        "halo": halo,
        "chunk": chunk,
        "weights": loaded.digest,
    }

    if out.exists():
        old, complete = read_settings(out)
        if old is None:
            raise ArchiveError(f"{out}: exists and is not an inference map; choose another output path")
        changed = settings_diff(old, settings)
        if changed and config.overwrite and config.n_ranks == 1:
            import shutil

            shutil.rmtree(out)
            shutil.rmtree(ledger_folder(out), ignore_errors=True)
        elif changed:
            state = "a complete" if complete else "an unfinished"
            raise ArchiveError(
                f"{out}: holds {state} map made with other settings (changed: {', '.join(changed[:5])}); "
                "choose another output or set overwrite=true"
            )
        elif complete:
            return {"status": "noop", "output": str(out), "complete": True, "regions_total": plan.n_regions,
                    "regions_computed": 0, "regions_skipped": plan.n_regions, "mpx_s": 0.0}  # fmt: skip
    if not create_output(out, grid, out_layers, chunk, config.codec_spec(), settings):
        old, _ = read_settings(out)  # another rank may have created it since the check above
        if old is None or settings_diff(old, settings):
            raise ArchiveError(f"{out}: another run created this map with other settings; give each run its own output")
    ledger = Ledger(ledger_folder(out), map_id(out))
    done = ledger.done()
    mine = plan.regions(config.rank, config.n_ranks)
    todo = [i for i in mine if i not in done]
    arrays = open_arrays(out, names)
    if config.threads > 0:
        import torch

        torch.set_num_threads(config.threads)

    # Regions run in index order (row-major within this rank's block), so a region's halo chunks were mostly
    # decoded by the region before it (same row) or above it; the cache keeps them until their last use.
    cache = ChunkCache(str(archive), spec.layers)
    cache.plan(clip_to_raster(plan.input_window(plan.region(i)), plan.height, plan.width) for i in todo)

    def load(k: int) -> tuple[Window, np.ndarray, np.ndarray]:
        want = plan.input_window(plan.region(todo[k]))
        x, valid = read_input(archive, spec, plan, want, config.edge, cache)
        cache.retire(k)
        return want, x, valid

    t0 = time.perf_counter()
    pixels = 0
    bar = progress_bar(todo, total=len(todo), enabled=config.progress, unit="region", desc=f"infer {out.name}")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodl-infer-read") as pool:
        pending: Future[tuple[Window, np.ndarray, np.ndarray]] | None = pool.submit(load, 0) if todo else None
        for k, index in enumerate(bar):
            assert pending is not None
            want, x, valid = pending.result()
            pending = pool.submit(load, k + 1) if k + 1 < len(todo) else None
            region = plan.region(index)
            result = predict_region(plan, region, x, want, predictor, config.batch_size, index)
            have = clip_to_raster(want, plan.height, plan.width)
            nodata = ~valid[region.relative_to(have)]
            result[:, nodata] = np.nan
            write_region(arrays, region.slices(), list(result))
            entry = {
                "region": index,
                "window": [region.r0, region.r1, region.c0, region.c1],
                "stats": {n: stats_to_dict(RunningStats.of_block(p)) for n, p in zip(names, result, strict=True)},
            }
            ledger.record(index, entry)
            pixels += region.size
            elapsed = time.perf_counter() - t0
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{pixels / 1e6 / max(elapsed, 1e-9):.2f} Mpx/s", refresh=False)
            if on_region is not None:
                on_region(index)
        if pending is not None:
            pending.cancel()
    elapsed = time.perf_counter() - t0

    record = provenance(
        [loaded.source] if loaded.source else [],
        chunks={"y": chunk, "x": chunk},
        codec=config.codec_spec(),
        extra={"archive": str(archive.resolve()), "inference": settings},
    )
    complete = finalise(out, plan.n_regions, names, grid, record)
    return {
        "status": "complete" if complete else "partial",
        "output": str(out),
        "complete": complete,
        "regions_total": plan.n_regions,
        "regions_computed": len(todo),
        "regions_skipped": len(mine) - len(todo),
        "computed": todo,
        "pixels": pixels,
        "seconds": elapsed,
        "mpx_s": pixels / 1e6 / elapsed if elapsed > 0 and pixels else 0.0,
        "halo": halo,
        "tile": config.tile,
        "stitch": config.stitch,
    }
