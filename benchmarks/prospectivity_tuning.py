"""Nested spatial block CV: choose the prospectivity CNN's settings on inner folds only, score them on outer folds.

    nice -n 10 python benchmarks/prospectivity_tuning.py [--config configs/prospectivity_murchison.yaml]
        [--fold-seeds 0 1 2] [--candidates base hardneg ...] [--work runs/prospectivity-tuning]
        [--record benchmarks/results/prospectivity_tuning.json] [--set key=value ...] [--json]

For every fold seed (a deal of the 5 x 5 blocks to 5 folds) and every outer fold k, each candidate is scored by
an inner block CV on the other four folds only (a CNN trained without folds {k, j} predicts fold j; see
``geodl_hpc.evaluation.nested``). The candidate with the best inner score (mean of capture in the top 5 % and
AUC within greenstone, the two metrics issue 6 sets targets on) is retrained without fold k and predicts fold k.
The pooled outer-fold map of those choices is the honest estimate; the logistic and gradient-boosting baselines
run on the same folds and layers in the same process. The final choice (the settings the main job's config
should hold) is the same rule applied to all folds: the candidate with the best plain out-of-fold score, averaged
over fold seeds. Every CNN is trained by the main job's own code (chips, pipeline, training loop) and kept in
``--work`` keyed by its settings, so a rerun skips finished training; maps are predicted in memory (the same pixels
as the tiled runner's).

Writes the record (JSON) and a markdown table next to it; prints the summary as JSON.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Overrides of the config given, each spelling out the knobs the others change, so that every candidate means the
# same whatever the config holds (benchmarks/results/prospectivity_tuning.json ran with the config's earlier
# ``likely_negative: false``, which these explicit values reproduce). Simplest first: ties go to the earlier one.
_PLAIN = {"ensemble": 1, "sampling.mask_negatives": 0.0, "sampling.likely_negative": False}
CANDIDATES: dict[str, dict[str, Any]] = {
    "base": dict(_PLAIN),
    "hardneg": {**_PLAIN, "sampling.mask_negatives": 0.5},
    "ens2": {**_PLAIN, "ensemble": 2},
    "pu": {**_PLAIN, "sampling.likely_negative": True, "sampling.pu_distance": 8},
    "deep": {**_PLAIN, "train.model.depth": 6},
    "hardneg_ens2": {**_PLAIN, "sampling.mask_negatives": 0.5, "ensemble": 2},
    "maxpool": {**_PLAIN, "chip_pool": "max"},
}
DEFAULT = ("base", "hardneg", "ens2", "pu", "deep")  # the search recorded here: 75 trainings per fold seed
NOT_MODEL = ("ensemble", "output", "selection", "plots", "infer", "final")  # do not change a member's weights


def _log(message: str) -> None:
    print(f"[tuning] {message}", file=sys.stderr, flush=True)


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        tree = tree.setdefault(p, {})
    tree[parts[-1]] = value


def candidate_config(base: dict[str, Any], overrides: dict[str, Any], fold_seed: int) -> Any:
    """The main job's config with ``overrides`` (dotted keys) and the fold seed applied, repeats off."""
    from geodl_hpc.config import from_dict
    from geodl_hpc.evaluation.prospectivity_config import ProspectivityConfig

    data = copy.deepcopy(base)
    for key, value in {**overrides, "cv.seed": fold_seed, "cv.repeat_seeds": []}.items():
        _set(data, key, value)
    return from_dict(ProspectivityConfig, data)


def _model_key(config: Any, held_out: frozenset[int]) -> str:
    """Folder key of a fold model: every setting that changes its members' weights (not the ensemble size, so
    an ensemble reuses the single-seed candidate's first member)."""
    from geodl_hpc.config import to_dict

    d = {k: v for k, v in to_dict(config).items() if k not in NOT_MODEL}
    text = json.dumps({"config": d, "held_out": sorted(held_out)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole search; returns the record."""
    import jobs.ingest_murchison as ingest
    from geodl_hpc.collective import make_collective
    from geodl_hpc.config import apply_overrides, read_yaml
    from geodl_hpc.evaluation.baselines import baseline_predictors
    from geodl_hpc.evaluation.blockcv import check_folds, fold_map, load_raster, make_folds, run_blockcv, score_map
    from geodl_hpc.evaluation.cnn_folds import normalised_input, predict_in_memory, train_fold_model
    from geodl_hpc.evaluation.nested import SELECTION_KEYS, nested_selection
    from geodl_hpc.evaluation.report import CONTRACT_KEYS

    started = time.perf_counter()
    base = apply_overrides(read_yaml(Path(args.config)), args.set)
    base.pop("job", None)
    names = args.candidates or list(DEFAULT)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise SystemExit(f"--candidates: unknown {unknown}; choose from {', '.join(CANDIDATES)}")
    configs0 = {n: candidate_config(base, CANDIDATES[n], args.fold_seeds[0]) for n in names}
    first = configs0[names[0]]
    info = ingest.main(first.ingest)
    archive = Path(first.ingest.output) / ingest.ARCHIVE_NAME
    _log(f"archive {archive} ({'reused' if info.get('skipped') else 'built'})")
    cv = first.cv
    data = load_raster(archive, cv.layers, cv.label, cv.mask)
    x = normalised_input(archive, tuple(cv.layers), data)
    collective = make_collective("none", "cpu")
    work = Path(args.work)
    trainings = {"trained_or_loaded": 0}

    per_seed: list[dict[str, Any]] = []
    nested_metrics: list[dict[str, Any]] = []
    plain_metrics: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    baseline_metrics: dict[str, list[dict[str, Any]]] = {n: [] for n in cv.baselines}
    for fold_seed in args.fold_seeds:
        t_seed = time.perf_counter()
        configs = {n: candidate_config(base, CANDIDATES[n], fold_seed) for n in names}
        folds = make_folds(data.shape, (cv.blocks[0], cv.blocks[1]), cv.folds, fold_seed)
        fm = fold_map(folds, data.shape)
        check_folds(fm, data.positives, data.valid)

        def fit_map(
            c: int,
            held_out: frozenset[int],
            fm: np.ndarray = fm,
            folds: Any = folds,
            configs: dict[str, Any] = configs,
            fold_seed: int = fold_seed,
        ) -> np.ndarray:
            config = configs[names[c]]
            folder = work / "models" / _model_key(config, held_out)
            t = time.perf_counter()
            model, _ = train_fold_model(config, archive, folds, fm, held_out, data, folder, collective)
            trainings["trained_or_loaded"] += config.ensemble
            out = predict_in_memory(model, x)
            _log(f"fold seed {fold_seed} {names[c]} without folds {sorted(held_out)}: {time.perf_counter() - t:.0f} s")
            return out

        result = nested_selection(fm, names, fit_map, data.deposits, data.valid, data.mask)
        nested = score_map("nested_cnn", result["nested"], data, fm).metrics
        plain = {n: score_map(n, result["plain"][i], data, fm).metrics for i, n in enumerate(names)}
        predictors = baseline_predictors(
            data, cv.baselines, seed=cv.seed, buffer=cv.baseline_buffer, max_negatives=cv.baseline_max_negatives
        )
        baselines = {n: r.metrics for n, r in run_blockcv(data, fm, predictors).items()}
        nested_metrics.append(nested)
        for n in names:
            plain_metrics[n].append(plain[n])
        for n in cv.baselines:
            baseline_metrics[n].append(baselines[n])
        per_seed.append(
            {
                "fold_seed": fold_seed,
                "deposits_per_fold": [int(data.deposits[fm == k].sum()) for k in range(cv.folds)],
                "chosen": [names[c] for c in result["chosen"]],
                "inner": [
                    {names[c]: {k: m[k] for k in ("score", *SELECTION_KEYS, "auc_blockcv")} for c, m in enumerate(row)}
                    for row in result["inner"]
                ],
                "nested_cnn": {k: nested[k] for k in (*CONTRACT_KEYS, "auc_per_fold")},
                "plain": {n: {k: m[k] for k in CONTRACT_KEYS} for n, m in plain.items()},
                "baselines": {n: {k: m[k] for k in CONTRACT_KEYS} for n, m in baselines.items()},
                "seconds": round(time.perf_counter() - t_seed, 1),
            }
        )
        _log(f"fold seed {fold_seed}: chosen {per_seed[-1]['chosen']}; nested CNN "
             f"top5 {nested['capture_top5pct']:.3f} AUC-gs {nested['auc_within_greenstone']:.3f}")  # fmt: skip

    record = {
        "benchmark": "prospectivity_tuning",
        "selection": "nested",
        "criterion": f"mean of {' and '.join(SELECTION_KEYS)} on the pooled inner out-of-fold map",
        "config": str(args.config),
        "overrides": list(args.set),
        "setup": {
            "archive": str(archive),
            "shape": list(data.shape),
            "layers": list(cv.layers),
            "folds": cv.folds,
            "blocks": list(cv.blocks),
            "fold_seeds": list(args.fold_seeds),
            "inner": "the outer training folds as inner folds (a model trained without {k, j} serves both)",
        },
        "candidates": [{"name": n, "overrides": CANDIDATES[n]} for n in names],
        "per_seed": per_seed,
        "trainings": trainings["trained_or_loaded"],
        "seconds": round(time.perf_counter() - started, 1),
        "load_avg_1m": os.getloadavg()[0],
    }
    return summarise(record)


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """Add ``summary`` and ``final_choice`` to a record from its ``per_seed`` entries alone."""
    from geodl_hpc.evaluation.nested import selection_score, spread
    from geodl_hpc.evaluation.report import CONTRACT_KEYS, spread_summary

    per_seed = record["per_seed"]
    names = [c["name"] for c in record["candidates"]]
    baselines = list(per_seed[0]["baselines"])
    seeds = [s["fold_seed"] for s in per_seed]
    summary = spread_summary(
        seeds,
        {"cnn": [s["nested_cnn"] for s in per_seed], **{b: [s["baselines"][b] for s in per_seed] for b in baselines}},
    )
    summary["models"] = {("nested_cnn" if k == "cnn" else k): v for k, v in summary["models"].items()}
    summary["per_seed"] = {("nested_cnn" if k == "cnn" else k): v for k, v in summary["per_seed"].items()}
    chosen_all = [c for s in per_seed for c in s["chosen"]]
    summary["chosen_counts"] = {n: chosen_all.count(n) for n in names if chosen_all.count(n)}
    plain_score = {n: spread([selection_score(s["plain"][n]) for s in per_seed]) for n in names}
    summary["plain_cv"] = {
        n: {
            "selection_score": plain_score[n],
            **{k: spread([s["plain"][n][k] for s in per_seed]) for k in CONTRACT_KEYS},
        }
        for n in names
    }
    best = max(names, key=lambda n: (plain_score[n]["mean"] or -1.0, -names.index(n)))
    record["setup"]["fold_seeds"] = seeds
    record["summary"] = summary
    record["final_choice"] = {
        "name": best,
        "overrides": {c["name"]: c["overrides"] for c in record["candidates"]}[best],
        "rule": "best plain out-of-fold selection score over all folds, mean over fold seeds",
    }
    return record


def merge(paths: list[Path]) -> dict[str, Any]:
    """One record from records of the same candidates on different fold seeds (searches run side by side)."""
    parts = [json.loads(p.read_text()) for p in paths]
    names = [[c["name"] for c in r["candidates"]] for r in parts]
    if any(n != names[0] for n in names):
        raise SystemExit(f"--merge: the records have different candidates {names}")
    record = parts[0]
    record["per_seed"] = sorted((s for r in parts for s in r["per_seed"]), key=lambda s: s["fold_seed"])
    record["trainings"] = sum(r["trainings"] for r in parts)
    record["seconds"] = sum(r["seconds"] for r in parts)
    record["merged_from"] = [str(p) for p in paths]
    record["load_avg_1m"] = max(r["load_avg_1m"] for r in parts)
    return summarise(record)


def markdown(record: dict[str, Any]) -> str:
    """The record as a short markdown report (the same tables the main job's report.md shows)."""
    from geodl_hpc.evaluation.report import LABELS, spread_table

    s = record["summary"]
    lines = [
        "# Nested block-CV selection of the prospectivity CNN",
        "",
        f"Config `{record['config']}`; fold seeds {record['setup']['fold_seeds']}; candidates: "
        + "; ".join(f"`{c['name']}` {c['overrides'] or '(config as is)'}" for c in record["candidates"])
        + f". Criterion: {record['criterion']}. Inner folds: {record['setup']['inner']}.",
        "",
        "## Outer folds (honest): mean ± std over fold seeds",
        "",
        *spread_table(s["models"], {"nested_cnn": "CNN (nested selection)"}),
        "",
        f"Chosen per outer fold (all seeds): {s['chosen_counts']}.",
        "",
        "Nested CNN minus the best baseline, paired per fold seed: "
        + "; ".join(
            f"{LABELS[k]} {v['mean']:+.3f} ± {v['std']:.3f} (ahead on {v['cnn_ahead']} of {v['n']})"
            for k, v in s["cnn_minus_best_baseline"].items()
        )
        + ".",
        "Issue 6 targets (nested CNN, mean over fold seeds): "
        + "; ".join(
            f"{LABELS[k]} {v['cnn_mean']:.3f} vs {v['target']:.2f} ({'met' if v['met'] else 'not met'})"
            for k, v in s["targets"].items()
        )
        + ".",
        "",
        "## Plain CV per candidate (selection on the scored folds: optimistic)",
        "",
        *spread_table({n: v for n, v in s["plain_cv"].items()}, {}),
        "",
        f"Final choice: `{record['final_choice']['name']}` ({record['final_choice']['rule']}).",
        f"Compute {record['seconds']:.0f} s for {record['trainings']} CNN trainings or loads (load average "
        f"{record['load_avg_1m']:.1f}).",
    ]
    for seed in record["per_seed"]:
        lines += ["", f"Fold seed {seed['fold_seed']}: deposits per fold {seed['deposits_per_fold']}; chosen "
                  f"{seed['chosen']}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/prospectivity_murchison.yaml")
    parser.add_argument("--fold-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--candidates", nargs="+", default=None, help=f"from {', '.join(CANDIDATES)}; default {' '.join(DEFAULT)}"
    )
    parser.add_argument("--work", default="runs/prospectivity-tuning", help="trained fold models (cache)")
    parser.add_argument("--record", default="benchmarks/results/prospectivity_tuning.json")
    parser.add_argument("--set", nargs="*", default=[], help="key=value overrides of the config (tiny runs)")
    parser.add_argument("--json", action="store_true", help="print the whole record, not only the summary")
    parser.add_argument("--merge", nargs="+", type=Path, help="merge these records (one per fold seed) instead")
    args = parser.parse_args()
    record = merge(args.merge) if args.merge else run(args)
    out = Path(args.record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(record))
    _log(f"record: {out} and {out.with_suffix('.md')}")
    print(json.dumps(record if args.json else {"summary": record["summary"], "final": record["final_choice"]}))


if __name__ == "__main__":
    main()
