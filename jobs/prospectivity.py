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

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geodl_hpc.config import dump_config, to_dict
from geodl_hpc.evaluation.cnn_folds import (
    FoldTrainingPreempted,
    infer_full,
    normalised_input,
    predict_in_memory,
    read_map,
    train_fold_model,
    write_map,
)
from geodl_hpc.evaluation.prospectivity_config import ProspectivityConfig

if TYPE_CHECKING:
    from geodl_hpc.collective import Collective
    from geodl_hpc.evaluation.blockcv import CVResult, RasterData
    from geodl_hpc.evaluation.config import EvaluationConfig
    from geodl_hpc.sampling import BlockFolds


def _log(message: str) -> None:
    print(f"[prospectivity] {message}", file=sys.stderr, flush=True)


def main(config: ProspectivityConfig) -> dict[str, Any]:
    """Run the whole prospectivity job into ``config.output``; returns the ``metrics.json`` document."""
    from geodl_hpc.launch.allocation import allocation_collective

    output = Path(config.output)
    with allocation_collective(config.train.backend, config.train.device, output / "folds") as collective:
        try:
            return _run(config, collective)
        except FoldTrainingPreempted as exc:
            _log(f"{exc}; run the job again on the same output to resume")
            return {"status": "preempted", "rank": collective.rank, "reason": str(exc)}


def _run(config: ProspectivityConfig, collective: Collective) -> dict[str, Any]:
    """The stages in order; rank 0 writes every output, the other ranks join each training run."""
    clock = _Clock()
    n_stages = 6 if config.cv.repeat_seeds else 5
    with clock("ingest_s"):
        archive = ingest(config, collective, n_stages)
    inputs = load_folds(config, archive)
    with clock("cnn_folds_s"):
        cv_run = train_and_map_folds(config, inputs, collective, n_stages)
    if collective.rank != 0:
        return follow_rank0(config, inputs, collective)
    with clock("final_map_s"):
        final = final_map(config, inputs, cv_run, collective, n_stages)
    with clock("baselines_s"):
        results, predictors = score_with_baselines(config, inputs, cv_run.oof, n_stages)
    per_seed: dict[str, list[dict[str, Any]]] = {name: [r.metrics] for name, r in results.items()}
    if config.cv.repeat_seeds:
        with clock("repeats_s"):
            repeat_fold_seeds(config, inputs, predictors, per_seed, collective, n_stages)
    return write_report(config, inputs, cv_run, final, results, per_seed, clock, n_stages)


class _Clock:
    """Seconds per stage (``with clock("name_s"): ...``) for ``setup.timings_s``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.timings[key] = time.perf_counter() - t0


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The ingested archive, its evidence layers and labels, and the headline block-CV folds."""

    archive: Path
    evaluation: EvaluationConfig
    data: RasterData
    folds: BlockFolds
    folds_map: np.ndarray


@dataclasses.dataclass
class FoldMaps:
    """What stage 2 made: the out-of-fold probability, the other bands assembled from the held-out blocks, each
    fold's map and training folder, and per-fold training records."""

    oof: np.ndarray
    held_layers: dict[str, np.ndarray]
    fold_maps: dict[int, Path]
    train_folders: dict[str, Path]
    fold_results: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class FinalMap:
    """``map.zarr`` (its bands in memory too) and its GeoTIFF export."""

    path: Path
    layers: dict[str, np.ndarray]
    tif: Path


def ingest(config: ProspectivityConfig, collective: Collective, n_stages: int) -> Path:
    """Stage 1: the Murchison stack (rank 0 builds it, or reuses an identical one); returns the archive path."""
    from geodl_hpc.archive.murchison import ARCHIVE_NAME, ingest_murchison

    output = Path(config.output)
    if collective.rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        dump_config(config, output / "config.resolved.yaml")
    _log(f"stage 1/{n_stages} ingest: Murchison stack at {config.ingest.murchison.resolution:g} m into "
         f"{config.ingest.output}")  # fmt: skip
    info = ingest_murchison(config.ingest) if collective.rank == 0 else {}
    collective.barrier()
    archive = Path(config.ingest.output) / ARCHIVE_NAME
    _log(f"  {'reused up-to-date' if info.get('skipped') else 'built'} {archive}")
    return archive


def load_folds(config: ProspectivityConfig, archive: Path) -> Inputs:
    """The layers and labels of ``archive`` and the headline fold assignment (checked: deposits in every fold)."""
    from geodl_hpc.evaluation.blockcv import check_folds, fold_map, load_raster, make_folds

    cv = config.cv
    evaluation = cv.evaluation(str(archive), str(config.output))
    data = load_raster(archive, cv.layers, cv.label, cv.mask)
    folds = make_folds(data.shape, (cv.blocks[0], cv.blocks[1]), cv.folds, cv.seed)
    folds_map = fold_map(folds, data.shape)
    check_folds(folds_map, data.positives, data.valid)
    return Inputs(archive, evaluation, data, folds, folds_map)


def train_and_map_folds(config: ProspectivityConfig, inputs: Inputs, collective: Collective, n_stages: int) -> FoldMaps:
    """Stage 2: per fold, train on the training blocks, infer the whole area (rank 0), keep the held-out blocks."""
    from geodl_hpc.evaluation.blockcv import train_mask_for

    data, folds_map = inputs.data, inputs.folds_map
    run = FoldMaps(np.full(folds_map.shape, np.nan), {}, {}, {}, [])
    for fold in range(int(folds_map.max()) + 1):
        test_mask = (folds_map == fold) & data.valid
        train_mask = train_mask_for(folds_map, data.valid, [fold])
        probability = _train_and_map_fold(config, inputs, fold, train_mask, test_mask, run, collective, n_stages)
        run.oof[test_mask] = probability[test_mask]
    return run


def _train_and_map_fold(
    config: ProspectivityConfig,
    inputs: Inputs,
    fold: int,
    train_mask: np.ndarray,
    test_mask: np.ndarray,
    run: FoldMaps,
    collective: Collective,
    n_stages: int,
) -> np.ndarray:
    """One fold of stage 2; records its map, folder and training result in ``run``; returns its probability map
    (zeros on ranks other than 0, which only train)."""
    t = time.perf_counter()
    output, data = Path(config.output), inputs.data
    folder = output / "folds" / str(fold)
    _log(f"stage 2/{n_stages} fold {fold + 1}/{config.cv.folds}: train {config.ensemble} CNN(s) on "
         f"{int(train_mask.sum())} px of training blocks")  # fmt: skip
    model, results = train_fold_model(
        config, inputs.archive, inputs.folds, inputs.folds_map, frozenset({fold}), data, folder, collective
    )
    run.train_folders[f"fold {fold}"] = folder / f"train-s{config.train.seed}"
    _log(f"  trained: {results[0]['step']} steps per CNN ({time.perf_counter() - t:.0f} s)")
    if collective.rank != 0:
        return np.zeros(data.shape)
    t1 = time.perf_counter()
    run.fold_maps[fold] = folder / "map.zarr"
    infer_full(config, inputs.archive, model, run.fold_maps[fold])
    layers = read_map(run.fold_maps[fold])
    for name, values in layers.items():
        if name != "probability":
            run.held_layers.setdefault(name, np.full(data.shape, np.nan))[test_mask] = values[test_mask]
    secs = time.perf_counter() - t1
    _log(f"  inferred the whole area ({secs:.0f} s); keeping {int(test_mask.sum())} held-out px")
    run.fold_results.append({"fold": fold, "steps": results[0]["step"], "loss": [r["loss"] for r in results],
                             "seconds": round(time.perf_counter() - t, 1)})  # fmt: skip
    return layers["probability"]


def follow_rank0(config: ProspectivityConfig, inputs: Inputs, collective: Collective) -> dict[str, Any]:
    """Ranks other than 0 after stage 2: join the later training runs, in rank 0's order."""
    if config.final == "all":
        train_fold_model(
            config,
            inputs.archive,
            inputs.folds,
            inputs.folds_map,
            frozenset(),
            inputs.data,
            Path(config.output) / "final",
            collective,
        )
    if config.cv.repeat_seeds:
        _repeat_cnn(config, inputs.archive, inputs.data, collective)
    return {"rank": collective.rank, "status": "completed"}


def final_map(
    config: ProspectivityConfig, inputs: Inputs, run: FoldMaps, collective: Collective, n_stages: int
) -> FinalMap:
    """Stage 3: ``map.zarr`` and ``map.tif``: the out-of-fold map, or (``final: all``) a CNN trained on all
    blocks."""
    from geodl_hpc.inference.exports import export_map_geotiff

    output = Path(config.output)
    map_path = output / "map.zarr"
    if config.final == "all":
        _log(f"stage 3/{n_stages} final map: train on all blocks and infer the whole area")
        final = output / "final"
        model, _ = train_fold_model(
            config, inputs.archive, inputs.folds, inputs.folds_map, frozenset(), inputs.data, final, collective
        )
        run.train_folders["all blocks"] = final / f"train-s{config.train.seed}"
        infer_full(config, inputs.archive, model, final / "map.zarr")
        layers = read_map(final / "map.zarr")
        write_map(final / "map.zarr", map_path, layers)
    else:
        _log(f"stage 3/{n_stages} final map: the out-of-fold map (each block predicted by the model that never saw it)")
        layers = {"probability": run.oof, **run.held_layers}
        write_map(run.fold_maps[0], map_path, layers)
    tif = export_map_geotiff(map_path, output / "map.tif", overwrite=True)
    return FinalMap(map_path, layers, tif)


def score_with_baselines(
    config: ProspectivityConfig, inputs: Inputs, oof: np.ndarray, n_stages: int
) -> tuple[dict[str, CVResult], dict[str, Any]]:
    """Stage 4: the CNN's out-of-fold map and the baselines on the same folds and layers, scored; returns the
    results (CNN first) and the baseline predictors (for the repeats)."""
    from geodl_hpc.evaluation.baselines import baseline_predictors
    from geodl_hpc.evaluation.blockcv import run_blockcv, score_map

    cv, data = config.cv, inputs.data
    _log(f"stage 4/{n_stages} baselines {', '.join(cv.baselines)} on the same {cv.folds} folds; scoring")
    predictors = baseline_predictors(
        data, cv.baselines, seed=cv.seed, buffer=cv.baseline_buffer, max_negatives=cv.baseline_max_negatives
    )
    results = {"cnn": score_map("cnn", oof, data, inputs.folds_map), **run_blockcv(data, inputs.folds_map, predictors)}
    return results, predictors


def repeat_fold_seeds(
    config: ProspectivityConfig,
    inputs: Inputs,
    predictors: dict[str, Any],
    per_seed: dict[str, list[dict[str, Any]]],
    collective: Collective,
    n_stages: int,
) -> None:
    """Stage 5: the same CV on the other fold assignments (``cv.repeat_seeds``), CNN and baselines; appends each
    model's metrics to ``per_seed``."""
    from geodl_hpc.evaluation.blockcv import fold_map, make_folds, run_blockcv

    cv, data = config.cv, inputs.data
    _log(f"stage 5/{n_stages} repeats on fold seeds {list(cv.repeat_seeds)}: CNN and baselines again")
    for name, metrics in _repeat_cnn(config, inputs.archive, data, collective).items():
        per_seed[name] += metrics
    for seed in cv.repeat_seeds:
        fm = fold_map(make_folds(data.shape, (cv.blocks[0], cv.blocks[1]), cv.folds, seed), data.shape)
        for name, r in run_blockcv(data, fm, predictors).items():
            per_seed[name].append(r.metrics)


def write_report(
    config: ProspectivityConfig,
    inputs: Inputs,
    run: FoldMaps,
    final: FinalMap,
    results: dict[str, CVResult],
    per_seed: dict[str, list[dict[str, Any]]],
    clock: _Clock,
    n_stages: int,
) -> dict[str, Any]:
    """The last stage: figures, ``metrics.json`` and ``report.md``; returns the metrics document."""
    from geodl_hpc.evaluation.report import (
        evaluation_setup,
        metrics_document,
        selection_summary,
        spread_summary,
        write_metrics_json,
        write_text_atomic,
    )

    t0 = time.perf_counter()
    output, cv = Path(config.output), config.cv
    _log(f"stage {n_stages}/{n_stages} report into {output}")
    figures = _figures(config, inputs.data, run, final, results) if config.plots else {}
    setup = evaluation_setup(inputs.evaluation, inputs.data, inputs.folds_map)
    setup.update(
        {
            "buffer": cv.baseline_buffer,
            "max_negatives": cv.baseline_max_negatives,
            "cnn": {
                "final_map": config.final,
                "chip": config.train.data.chip,
                "chip_pool": config.chip_pool,
                "ensemble": config.ensemble,
                "sampling": dataclasses.asdict(config.sampling),
                "model": dataclasses.asdict(config.train.model),
                "epochs": config.train.epochs,
                "attribution": config.infer.attribution,
                "folds": sorted(run.fold_results, key=lambda r: r["fold"]),
            },
        }
    )
    results = dict(results)
    cnn_metrics = results.pop("cnn").metrics
    document = metrics_document({n: r.metrics for n, r in results.items()}, setup, cnn=cnn_metrics)
    document["spread"] = spread_summary(list(cv.seeds), per_seed)
    document["selection"] = selection_summary(config.selection.method, config.selection.record, to_dict(config))
    timings = clock.timings
    timings["report_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - clock.started
    document["setup"]["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    write_metrics_json(output / "metrics.json", document)
    write_text_atomic(output / "report.md", _report(document, figures, config, final.tif))
    _log(f"done in {timings['total_s']:.0f} s: {output / 'report.md'}")
    return document


def _figures(
    config: ProspectivityConfig, data: RasterData, run: FoldMaps, final: FinalMap, results: dict[str, CVResult]
) -> dict[str, str]:
    """Success-rate curves, probability, uncertainty and attribution maps, the map preview and learning curves;
    returns ``{caption: file name}``."""
    from geodl_hpc.evaluation.plots import plot_learning_curves, plot_probability_map, write_cv_figures
    from geodl_hpc.inference.exports import plot_attribution, plot_map

    output = Path(config.output)
    figures = write_cv_figures(output, results, data)
    if "uncertainty" in final.layers:
        unc = plot_probability_map(
            final.layers["uncertainty"],
            data.deposits,
            data.x,
            data.y,
            output / "uncertainty_cnn.png",
            title="CNN: MC-dropout std with deposits",
        )
        figures["CNN uncertainty (MC dropout std)"] = unc.name
    attribution = plot_attribution(final.path, output / "attribution_cnn.png")
    if attribution is not None:
        figures["CNN per-layer occlusion attribution"] = attribution.name
    figures["map.zarr preview"] = plot_map(final.path, output / "map.png").name
    curves = plot_learning_curves(run.train_folders, output / "learning_curves.png")
    if curves is not None:
        figures["Learning curves"] = curves.name
    return figures


def _repeat_cnn(
    config: ProspectivityConfig, archive: Path, data: RasterData, collective: Collective
) -> dict[str, list[dict[str, Any]]]:
    """CNN metrics on each of ``cv.repeat_seeds``' fold assignments (fold models kept in ``output/repeats``;
    maps predicted in memory, the same pixels as the tiled runner's)."""
    from geodl_hpc.evaluation.blockcv import check_folds, fold_map, make_folds, score_map

    cv = config.cv
    x = normalised_input(archive, tuple(cv.layers), data)
    out: list[dict[str, Any]] = []
    for seed in cv.repeat_seeds:
        folds = make_folds(data.shape, (cv.blocks[0], cv.blocks[1]), cv.folds, seed)
        fm = fold_map(folds, data.shape)
        check_folds(fm, data.positives, data.valid)
        oof = np.full(data.shape, np.nan)
        for k in range(cv.folds):
            folder = Path(config.output) / "repeats" / f"seed{seed}" / str(k)
            model, _ = train_fold_model(config, archive, folds, fm, frozenset({k}), data, folder, collective)
            held = (fm == k) & data.valid
            oof[held] = predict_in_memory(model, x)[held]
        _log(f"  fold seed {seed}: CNN trained and scored on {cv.folds} folds")
        out.append(score_map("cnn", oof, data, fm).metrics)
    return {"cnn": out}


def _report(document: dict[str, Any], figures: dict[str, str], config: ProspectivityConfig, tif: Path) -> str:
    from geodl_hpc.evaluation.report import render_report, render_selection, render_spread

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
    hard = f", {100 * s.mask_negatives:.0f} % of them inside {config.cv.mask}" if s.mask_negatives else ""
    last = config.train.seed + config.ensemble - 1
    seeds = (
        f"the mean probability of {config.ensemble} CNNs (seeds {config.train.seed}..{last})"
        if config.ensemble > 1
        else "one CNN"
    )
    bands = ["probability"]
    if config.infer.mc_samples:
        bands.append(f"uncertainty (std over {config.infer.mc_samples} MC-dropout passes)")
    if config.infer.attribution == "occlusion":
        bands.append(
            "one `attribution_<layer>` band per evidence layer (occlusion: probability minus probability with "
            "that layer at its archive mean; red where the layer raises the prediction)"
        )
    extra = [
        "",
        "## CNN and run",
        "",
        f"CNN: {m.depth} conv layers of {m.width} channels (dropout {m.dropout}), "
        f"{'per-pixel' if m.per_pixel else f'chip-level ({config.chip_pool} logit)'} loss, {config.train.epochs} "
        f"epochs; each fold model is {seeds}; {s.n_pos} positive + {s.n_neg} negative chips of "
        f"{config.train.data.chip} px per fold from training blocks only; negatives {negatives} px from every "
        f"training deposit{hard}.",
        f"`map.zarr` / `{tif.name}`: {which}; bands: {'; '.join(bands)}.",
        f"Runtime: {t['total_s']:.0f} s in all ({', '.join(f'{k} {v:.0f}' for k, v in t.items() if k != 'total_s')}).",
    ]
    return text + render_spread(document) + render_selection(document) + "\n".join(extra) + "\n"
