"""Tiled inference of a model over a raster stack into a probability map (Zarr), resumable through a ledger.

Per region (whole output chunks): read the input window with halo once (all layers in one zarr call),
normalise as the pipeline does (``(x - mean) / std`` with the stored statistics, NaN -> 0, optional mask
channel), pad at the raster edge, run the tiles in batches (probability, MC-dropout std, per-layer occlusion),
stitch (crop or blend), set nodata where any input layer is nodata, write the region and record it in the ledger.
A reader thread reads the next region and a writer thread writes the last ones while this one runs
(:func:`run_regions`); with ``executor="ray"`` blocks of regions run as Ray tasks that do all of that themselves.
"""

from __future__ import annotations

import dataclasses
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
from geodl_hpc.archive.integrity import chunk_crc32c
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
    attribution_layer,
    create_output,
    finalise,
    ledger_folder,
    map_id,
    open_arrays,
    read_settings,
    region_chunk_keys,
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


def module_digest(module: torch.nn.Module) -> str:
    """A digest of the module's weights: names the model in the output's settings."""
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
    from geodl_hpc.training.checkpoint import fit_state_dict, load_checkpoint

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
    fit_state_dict(module, weights, path, f"model {m['name']} (width {m['width']}, depth {m['depth']})")
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
    """Runs batches of tiles: probability, the MC-dropout std when ``mc_samples`` > 1, and per-layer occlusion.

    ``n_layers`` is how many leading input channels are layers (the mask channel is never occluded)."""

    def __init__(self, module: torch.nn.Module, config: InferJobConfig, halo: int, n_layers: int = 0) -> None:
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
        self.occlude = n_layers if config.attribution == "occlusion" else 0
        if config.attribution == "occlusion" and n_layers < 1:
            raise ConfigError("attribution: occlusion needs the number of input layers (n_layers >= 1)")
        self.dropouts = [m for m in module.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
        if self.mc and not self.dropouts:
            raise ConfigError("mc_samples: the model has no dropout layers; set mc_samples=0 or train with dropout")

    @property
    def n_outputs(self) -> int:
        return 1 + int(bool(self.mc)) + self.occlude

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
            for layer in range(self.occlude):
                # 0 after normalisation is the layer's archive mean (and what nodata becomes): "layer absent".
                occluded = x.clone()
                occluded[:, layer] = 0.0
                outs.append(prob - self._forward(occluded))
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


# ------------------------------------------------------------------------------------------------ workers

#: Regions computed but not yet written that a worker holds at most (the writer thread's queue bound).
WRITE_QUEUE = 2


@dataclass(frozen=True)
class RegionWork:
    """What a worker (this process or a Ray task) needs to compute, write and record regions of one map."""

    archive: Path
    out: Path
    config: InferJobConfig
    spec: InputSpec
    plan: TilePlan
    halo: int
    names: tuple[str, ...]


def _has_dropout(module: torch.nn.Module) -> bool:
    import torch

    return any(isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in module.modules())


def run_regions(
    work: RegionWork,
    module: torch.nn.Module,
    indices: list[int],
    *,
    on_region: Callable[[int], None] | None = None,
    store: Any = None,
) -> dict[str, float]:
    """Compute, write and record ``indices`` (regions of ``work.plan``) in order; pixels done and stage times.

    Three stages overlap: a reader thread decodes the next region's input (through a chunk cache), this thread
    predicts, and a writer thread encodes, writes and records finished regions (at most ``WRITE_QUEUE`` waiting,
    so memory stays bounded). ``on_region(index)`` runs here once ``index`` is recorded, in order. The stage times
    (``read_s``, ``predict_s``, ``write_s``) are each stage's busy seconds: where the time goes."""
    from collections import deque

    config, plan, spec = work.config, work.plan, work.spec
    if config.threads > 0:
        import torch

        torch.set_num_threads(config.threads)
    predictor = Predictor(module, config, work.halo, len(spec.layers))
    ledger = Ledger(ledger_folder(work.out), map_id(work.out))
    arrays = open_arrays(work.out, work.names)
    # Regions run in index order (row-major within this rank's block), so a region's halo chunks were mostly
    # decoded by the region before it (same row) or above it; the cache keeps them until their last use.
    cache = ChunkCache(str(work.archive), spec.layers, store=store)
    cache.plan(clip_to_raster(plan.input_window(plan.region(i)), plan.height, plan.width) for i in indices)

    times = {"read_s": 0.0, "predict_s": 0.0, "write_s": 0.0}

    def load(k: int) -> tuple[Window, np.ndarray, np.ndarray]:
        start = time.perf_counter()
        want = plan.input_window(plan.region(indices[k]))
        x, valid = read_input(work.archive, spec, plan, want, config.edge, cache)
        cache.retire(k)
        times["read_s"] += time.perf_counter() - start
        return want, x, valid

    def save(index: int, region: Window, result: np.ndarray) -> int:
        start = time.perf_counter()
        write_region(arrays, region.slices(), list(result))
        stats = {n: stats_to_dict(RunningStats.of_block(p)) for n, p in zip(work.names, result, strict=True)}
        window = [region.r0, region.r1, region.c0, region.c1]
        crcs = chunk_crc32c(work.out, region_chunk_keys(arrays, work.names, window))
        ledger.record(index, {"region": index, "window": window, "stats": stats, "chunk_crc32c": crcs})
        times["write_s"] += time.perf_counter() - start
        return index

    t0 = time.perf_counter()
    pixels = 0
    bar = progress_bar(
        indices, total=len(indices), enabled=config.progress, unit="region", desc=f"infer {work.out.name}"
    )
    writes: deque[Future[int]] = deque()

    def settle(block: bool) -> None:
        """Report finished writes in order; with ``block``, wait until at most ``WRITE_QUEUE`` are pending."""
        while writes and (writes[0].done() or (block and len(writes) > WRITE_QUEUE)):
            index = writes.popleft().result()  # a failed write raises here
            if on_region is not None:
                on_region(index)

    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodl-infer-read")
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geodl-infer-write")
    try:
        pending: Future[tuple[Window, np.ndarray, np.ndarray]] | None = reader.submit(load, 0) if indices else None
        for k, index in enumerate(bar):
            assert pending is not None
            want, x, valid = pending.result()
            pending = reader.submit(load, k + 1) if k + 1 < len(indices) else None
            start = time.perf_counter()
            region = plan.region(index)
            result = predict_region(plan, region, x, want, predictor, config.batch_size, index)
            have = clip_to_raster(want, plan.height, plan.width)
            result[:, ~valid[region.relative_to(have)]] = np.nan
            times["predict_s"] += time.perf_counter() - start
            writes.append(writer.submit(save, index, region, result))
            settle(block=True)
            pixels += region.size
            if hasattr(bar, "set_postfix_str"):
                rate = pixels / 1e6 / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix_str(f"{rate:.2f} Mpx/s", refresh=False)
        while writes:
            writes[0].result()
            settle(block=False)
    finally:
        # On an error (or a test's crash), regions not yet being written are dropped, as a killed process drops them.
        for future in writes:
            future.cancel()
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)
    return {"pixels": float(pixels), **times}


def _ray_regions(work: RegionWork, module: torch.nn.Module, indices: list[int]) -> dict[str, float]:
    """One Ray task: the regions of ``indices`` that the ledger still lacks (a retried task skips finished ones)."""
    done = Ledger(ledger_folder(work.out), map_id(work.out)).done()
    return run_regions(work, module, [i for i in indices if i not in done])


def _run_on_ray(work: RegionWork, module: torch.nn.Module, todo: list[int]) -> dict[str, float]:
    """Fan ``todo`` out as contiguous blocks, one Ray task each; the driver only schedules (nothing gathered).

    Returns the pixels done and the stage times summed over the tasks."""
    import os

    from geodl_hpc.pipeline.loader import ensure_ray

    total = {"pixels": 0.0, "read_s": 0.0, "predict_s": 0.0, "write_s": 0.0}
    if not todo:
        return total
    ray = ensure_ray(work.config.ray_tasks or os.cpu_count() or 1)
    n = work.config.ray_tasks or max(1, int(ray.cluster_resources().get("CPU", 1)))
    n = min(n, len(todo))
    blocks = [todo[k * len(todo) // n : (k + 1) * len(todo) // n] for k in range(n)]
    task = ray.remote(num_cpus=1, num_gpus=1 if work.config.device == "cuda" else 0)(_ray_regions)
    work = dataclasses.replace(work, config=work.config.replace(progress=False))
    model = ray.put(module.cpu())
    for part in ray.get([task.remote(work, model, block) for block in blocks]):
        for key in total:
            total[key] += part[key]
    return total


# ------------------------------------------------------------------------------------------------ driver


def _resolve_model(config: InferJobConfig, model: Any) -> LoadedModel:
    import torch

    if isinstance(model, torch.nn.Module):
        return LoadedModel(model, None, None, module_digest(model), None)
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
    input_store: Any = None,
) -> dict[str, Any]:
    """Predict ``model`` (a module or a checkpoint path) over ``archive`` into the map ``out``; see the module doc.

    Runs this config's ``rank``'s regions that the ledger lacks (in this process, or as Ray tasks with
    ``executor="ray"``); the process that finds all regions done marks the map complete. ``on_region(index)`` is
    called after each region is recorded, in region order (local executor; tests use it to crash).
    ``input_store`` (a zarr store with the archive's layers, e.g. one generating chunks on read) replaces reading
    input chunks from ``archive``, whose metadata is still used."""
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
    if config.mc_samples and not _has_dropout(loaded.module):
        raise ConfigError("mc_samples: the model has no dropout layers; set mc_samples=0 or train with dropout")
    out_layers = [PROBABILITY, *([UNCERTAINTY] if config.mc_samples else [])]
    if config.attribution == "occlusion":
        out_layers += [attribution_layer(name) for name in spec.layers]
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
    done = Ledger(ledger_folder(out), map_id(out)).done_intact(out)
    mine = plan.regions(config.rank, config.n_ranks)
    todo = [i for i in mine if i not in done]
    work = RegionWork(archive, out, config, spec, plan, halo, tuple(names))
    t0 = time.perf_counter()
    if config.executor == "ray" and input_store is not None:
        raise ConfigError("executor: input_store is read in this process only; use executor=local with it")
    if config.executor == "ray":
        done_work = _run_on_ray(work, loaded.module, todo)
    else:
        done_work = run_regions(work, loaded.module, todo, on_region=on_region, store=input_store)
    elapsed = time.perf_counter() - t0
    pixels = int(done_work["pixels"])

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
        "stage_seconds": {k.removesuffix("_s"): round(v, 4) for k, v in done_work.items() if k != "pixels"},
        "halo": halo,
        "tile": config.tile,
        "stitch": config.stitch,
    }
