"""Job: prospectivity mapping on the Murchison data, end to end (the main job).

Stages (progress on stderr): ingest the built-in Murchison stack (skipped when an identical one exists) ->
for each spatial block-CV fold (the baselines' fold map): class-balanced chips from the training blocks only,
train the CNN with the training engine, tiled inference over the whole area, keep the held-out blocks' pixels ->
out-of-fold CNN map -> the baselines on the same folds and layers -> scores, figures, ``map.zarr``/``map.tif``,
``metrics.json`` and ``report.md`` in ``output``.

Per-fold training runs (checkpoints, ``metrics.jsonl``) live in ``output/folds/K/train``; run again on the same
output to resume an interrupted fold or skip finished training.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.config import dump_config
from geodl_hpc.evaluation.prospectivity_config import ProspectivityConfig

if TYPE_CHECKING:
    import torch

    from geodl_hpc.collective import Collective
    from geodl_hpc.evaluation.blockcv import RasterData
    from geodl_hpc.sampling import BlockFolds


def _log(message: str) -> None:
    print(f"[prospectivity] {message}", file=sys.stderr, flush=True)


def _chip_model(net: torch.nn.Module, pool: str) -> torch.nn.Module:
    """``net`` (per-pixel logits) with a chip-level output: the max or mean of its logits over each chip."""
    import torch

    class ChipPooled(torch.nn.Module):
        per_pixel = False

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = self.net(x).flatten(1)
            return logits.amax(dim=1) if pool == "max" else logits.mean(dim=1)

    net.per_pixel = True  # type: ignore[assignment]
    return ChipPooled()


def _train_fold(
    config: ProspectivityConfig,
    archive: Path,
    folds: BlockFolds | None,
    fold: int | None,
    data: RasterData,
    train_mask: np.ndarray,
    output: Path,
    collective: Collective,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train one CNN on balanced chips of the training blocks (``fold=None``: all blocks); returns it and its result."""
    from geodl_hpc.models import build_model
    from geodl_hpc.pipeline import ChipPipeline, PipelineConfig
    from geodl_hpc.sampling import balanced_chips, valid_fraction
    from geodl_hpc.training.loop import seed_everything, train

    tc, sc = config.train, config.sampling
    d = tc.data
    pconf = PipelineConfig(
        archive,
        chip=d.chip,
        layers=tuple(config.cv.layers),
        label=config.cv.label,
        batch_size=d.batch_size,
        unit_chunks=d.unit_chunks,
        mix_units=d.mix_units,
        seed=tc.seed,
        augment=d.augment,
        backend=d.backend,
        num_workers=d.num_workers,
    )
    probe = ChipPipeline(pconf, np.zeros((0, 2), np.int64))
    valid = probe.valid_mask()
    valid = train_mask if valid is None else valid & train_mask  # chips wholly inside training ground
    labels = np.argwhere(data.positives & train_mask)
    rng = np.random.default_rng([tc.seed, 1 + (fold if fold is not None else config.cv.folds)])
    n_hard = round(sc.mask_negatives * sc.n_neg) if data.mask is not None else 0
    kwargs: dict[str, Any] = {"buffer": sc.buffer, "likely_negative": sc.likely_negative, "pu_distance": sc.pu_distance}
    units: Any = probe.units
    pos, y = balanced_chips(units, d.chip, labels, 3 * sc.n_pos, 3 * (sc.n_neg - n_hard), rng, valid=valid, **kwargs)
    hard = np.zeros((0, 2), np.int64)
    if n_hard and data.mask is not None:  # negatives at least half inside the mask layer (e.g. barren greenstone)
        hard, _ = balanced_chips(units, d.chip, labels, 0, 20 * n_hard, rng, valid=valid, **kwargs)
        hard = hard[valid_fraction(data.mask, hard, d.chip) >= 0.5]
    pos, y = np.concatenate([pos, hard]), np.concatenate([y, np.full(len(hard), 2, np.int8)])
    if folds is not None and fold is not None:  # drop chips crossing a block edge (could touch held-out ground)
        keep = folds.fold_of(pos, d.chip)
        ok = (keep >= 0) & (keep != fold)
        pos, y = pos[ok], y[ok]
    parts = [pos[y == 1][: sc.n_pos], pos[y == 0][: sc.n_neg - n_hard], pos[y == 2][:n_hard]]
    samples = np.concatenate(parts)
    _log(
        f"  {len(parts[0])} positive + {len(parts[1])} random negative + {len(parts[2])} in-{config.cv.mask} "
        f"negative chips of {d.chip} px from {len(labels)} training deposits"
    )
    pipeline = ChipPipeline(pconf, samples)
    m = tc.model
    seed_everything(tc.seed, 0, tc.deterministic)
    model = build_model(
        m.name, len(config.cv.layers), width=m.width, depth=m.depth, per_pixel=m.per_pixel, dropout=m.dropout
    )
    trained = model if m.per_pixel else _chip_model(model, config.chip_pool)
    result = train(tc, pipeline, trained, output, collective)
    return model, result


def _infer_full(config: ProspectivityConfig, archive: Path, model: torch.nn.Module, out: Path) -> dict[str, Any]:
    """Tiled per-pixel inference of ``model`` over the whole stack into ``out`` (a map Zarr)."""
    from geodl_hpc.inference.config import InferJobConfig
    from geodl_hpc.inference.runner import infer

    model.per_pixel = True  # type: ignore[assignment]  # chip-level training, per-pixel maps
    model.eval()
    ic = config.infer
    iconf = InferJobConfig(
        archive=str(archive),
        output=str(out),
        layers=tuple(config.cv.layers),
        label=config.cv.label,
        mask_channel=False,
        seed=config.train.seed,
        progress=False,
        export_tif=False,
        export_png=False,
        overwrite=True,
        **dataclasses.asdict(ic),
    )
    return infer(archive, model, out, iconf)


def _read_map(path: Path) -> dict[str, np.ndarray]:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    names = [n for n in ("probability", "uncertainty") if n in group]
    return {n: np.asarray(group[n][:], dtype=np.float64) for n in names}  # type: ignore[index]


def _write_map(template: Path, out: Path, layers: dict[str, np.ndarray]) -> Path:
    """``out`` as a copy of the complete map ``template`` with its layers replaced by ``layers``."""
    import zarr

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(template, out)
    group = zarr.open_group(str(out), mode="r+")
    for name, values in layers.items():
        group[name][:] = values.astype(group[name].dtype)  # type: ignore[index,union-attr]
    return out


def _learning_curves(folders: dict[str, Path], path: Path) -> Path | None:
    """Epoch loss of every fold's training run (from its ``metrics.jsonl``) in one PNG."""
    from geodl_hpc.evaluation.plots import _figure, save_figure_atomic

    fig, ax = _figure(figsize=(6, 4))
    drawn = False
    for name, folder in folders.items():
        log = folder / "metrics.jsonl"
        if not log.exists():
            continue
        recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        steps = [r for r in recs if r.get("kind") == "step"]
        epochs = [r for r in recs if r.get("kind") == "epoch"]
        if steps:
            (line,) = ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.6, alpha=0.5)
            ax.plot([r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", color=line.get_color(), label=name)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (BCE)")
    ax.set_title("Learning curves (thin: steps, dots: epochs)")
    if drawn:
        ax.legend(fontsize=8)
    return save_figure_atomic(fig, path)


def main(config: ProspectivityConfig) -> dict[str, Any]:
    """Run the whole prospectivity job into ``config.output``; returns the ``metrics.json`` document."""
    from geodl_hpc.launch.allocation import allocation_collective

    output = Path(config.output)
    with allocation_collective(config.train.backend, config.train.device, output / "folds") as collective:
        return _run(config, collective)


def _run(config: ProspectivityConfig, collective: Collective) -> dict[str, Any]:
    import jobs.ingest_murchison as ingest
    from geodl_hpc.evaluation.baselines import baseline_predictors
    from geodl_hpc.evaluation.blockcv import (
        check_folds,
        fold_map,
        load_raster,
        make_folds,
        out_of_fold,
        run_blockcv,
        score_map,
    )
    from geodl_hpc.evaluation.report import metrics_document, write_metrics_json, write_text_atomic
    from jobs.evaluate_baselines import _setup, write_figures

    started = time.perf_counter()
    timings: dict[str, float] = {}
    output = Path(config.output)
    rank0 = collective.rank == 0
    if rank0:
        output.mkdir(parents=True, exist_ok=True)
        dump_config(config, output / "config.resolved.yaml")

    # ---- 1. ingest ----------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    _log(f"stage 1/5 ingest: Murchison stack at {config.ingest.murchison.resolution:g} m into {config.ingest.output}")
    info = ingest.main(config.ingest) if rank0 else {}
    collective.barrier()
    archive = Path(config.ingest.output) / ingest.ARCHIVE_NAME
    _log(f"  {'reused up-to-date' if info.get('skipped') else 'built'} {archive}")
    timings["ingest_s"] = time.perf_counter() - t0

    cv = config.cv
    evaluation = cv.evaluation(str(archive), str(output))
    data = load_raster(archive, cv.layers, cv.label, cv.mask)
    folds = make_folds(data.shape, (cv.blocks[0], cv.blocks[1]), cv.folds, cv.seed)
    folds_map = fold_map(folds, data.shape)
    check_folds(folds_map, data.positives, data.valid)

    # ---- 2. per fold: train on the training blocks, infer everywhere, keep the held-out blocks -------------------
    t0 = time.perf_counter()
    train_folders: dict[str, Path] = {}
    fold_maps: dict[int, Path] = {}
    uncertainty = np.full(data.shape, np.nan)
    fold_results: list[dict[str, Any]] = []

    def cnn(fold: int, train_mask: np.ndarray, test_mask: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        folder = output / "folds" / str(fold)
        _log(f"stage 2/5 fold {fold + 1}/{cv.folds}: train on {int(train_mask.sum())} px of training blocks")
        model, result = _train_fold(config, archive, folds, fold, data, train_mask, folder / "train", collective)
        train_folders[f"fold {fold}"] = folder / "train"
        _log(f"  trained: {result['step']} steps, loss {result['loss']:.4f} ({time.perf_counter() - t:.0f} s)")
        if not rank0:
            return np.zeros(data.shape)
        t1 = time.perf_counter()
        fold_maps[fold] = folder / "map.zarr"
        _infer_full(config, archive, model, fold_maps[fold])
        layers = _read_map(fold_maps[fold])
        if "uncertainty" in layers:
            uncertainty[test_mask] = layers["uncertainty"][test_mask]
        secs = time.perf_counter() - t1
        _log(f"  inferred the whole area ({secs:.0f} s); keeping {int(test_mask.sum())} held-out px")
        fold_results.append({"fold": fold, "steps": result["step"], "loss": result["loss"],
                             "seconds": round(time.perf_counter() - t, 1)})  # fmt: skip
        return layers["probability"]

    oof = out_of_fold(folds_map, data.valid, cnn)
    timings["cnn_folds_s"] = time.perf_counter() - t0
    if not rank0:
        return {"rank": collective.rank, "status": "completed"}

    # ---- 3. the final map -----------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    map_path = output / "map.zarr"
    if config.final == "all":
        _log("stage 3/5 final map: train on all blocks and infer the whole area")
        everywhere = np.ones(data.shape, bool)
        model, _ = _train_fold(config, archive, None, None, data, everywhere, output / "final" / "train", collective)
        train_folders["all blocks"] = output / "final" / "train"
        _infer_full(config, archive, model, output / "final" / "map.zarr")
        final_layers = _read_map(output / "final" / "map.zarr")
        _write_map(output / "final" / "map.zarr", map_path, final_layers)
    else:
        _log("stage 3/5 final map: the out-of-fold map (each block predicted by the model that never saw it)")
        final_layers = {"probability": oof}
        if "uncertainty" in _read_map(fold_maps[0]):
            final_layers["uncertainty"] = uncertainty
        _write_map(fold_maps[0], map_path, final_layers)
    from geodl_hpc.inference.exports import export_map_geotiff

    tif = export_map_geotiff(map_path, output / "map.tif", overwrite=True)
    timings["final_map_s"] = time.perf_counter() - t0

    # ---- 4. baselines on the same folds and layers, scores ------------------------------------------------------
    t0 = time.perf_counter()
    _log(f"stage 4/5 baselines {', '.join(cv.baselines)} on the same {cv.folds} folds; scoring")
    predictors = baseline_predictors(
        data, cv.baselines, seed=cv.seed, buffer=cv.baseline_buffer, max_negatives=cv.baseline_max_negatives
    )
    results = {"cnn": score_map("cnn", oof, data, folds_map), **run_blockcv(data, folds_map, predictors)}
    timings["baselines_s"] = time.perf_counter() - t0

    # ---- 5. figures, metrics.json, report.md ------------------------------------------------------------------
    t0 = time.perf_counter()
    _log(f"stage 5/5 report into {output}")
    figures: dict[str, str] = {}
    if config.plots:
        from geodl_hpc.evaluation.plots import plot_probability_map
        from geodl_hpc.inference.exports import plot_map

        figures = write_figures(output, results, data)
        if "uncertainty" in final_layers:
            unc = plot_probability_map(
                final_layers["uncertainty"],
                data.deposits,
                data.x,
                data.y,
                output / "uncertainty_cnn.png",
                title="CNN: MC-dropout std with deposits",
            )
            figures["CNN uncertainty (MC dropout std)"] = unc.name
        figures["map.zarr preview"] = plot_map(map_path, output / "map.png").name
        curves = _learning_curves(train_folders, output / "learning_curves.png")
        if curves is not None:
            figures["Learning curves"] = curves.name
    setup = _setup(evaluation, data, folds_map)
    setup.update(
        {
            "buffer": cv.baseline_buffer,
            "max_negatives": cv.baseline_max_negatives,
            "cnn": {
                "final_map": config.final,
                "chip": config.train.data.chip,
                "sampling": dataclasses.asdict(config.sampling),
                "model": dataclasses.asdict(config.train.model),
                "epochs": config.train.epochs,
                "folds": sorted(fold_results, key=lambda r: r["fold"]),
            },
        }
    )
    cnn_metrics = results.pop("cnn").metrics
    document = metrics_document({n: r.metrics for n, r in results.items()}, setup, cnn=cnn_metrics)
    timings["report_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    document["setup"]["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    write_metrics_json(output / "metrics.json", document)
    write_text_atomic(output / "report.md", _report(document, figures, config, tif))
    _log(f"done in {timings['total_s']:.0f} s: {output / 'report.md'}")
    return document


def _report(document: dict[str, Any], figures: dict[str, str], config: ProspectivityConfig, tif: Path) -> str:
    from geodl_hpc.evaluation.report import render_report

    text = render_report(document, figures).replace("# Prospectivity evaluation", "# Prospectivity mapping", 1)
    s = config.sampling
    m = config.train.model
    which = (
        "the out-of-fold CNN map (every block predicted by the fold model that never saw it; the map scored above)"
        if config.final == "oof"
        else "the map of a CNN trained on all blocks (not scored; the table is out-of-fold)"
    )
    t = document["setup"]["timings_s"]
    negatives = f"(positive-unlabelled) {s.pu_distance}" if s.likely_negative else str(s.buffer)
    extra = [
        "",
        "## CNN and run",
        "",
        f"CNN: {m.depth} conv layers of {m.width} channels (dropout {m.dropout}), "
        f"{'per-pixel' if m.per_pixel else 'chip-level (mean logit)'} loss, {config.train.epochs} epochs per fold; "
        f"{s.n_pos} positive + {s.n_neg} negative chips of {config.train.data.chip} px per fold from training "
        f"blocks only; negatives {negatives} px from every training deposit.",
        f"`map.zarr` / `{tif.name}`: {which}.",
        f"Runtime: {t['total_s']:.0f} s in all ({', '.join(f'{k} {v:.0f}' for k, v in t.items() if k != 'total_s')}).",
    ]
    return text + "\n".join(extra) + "\n"
