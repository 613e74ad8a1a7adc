"""``metrics.json`` and ``report.md`` of an evaluation run: the CNN's contract keys at top level, baselines below.

``metrics.json`` layout (contract)::

    {"auc_blockcv": .., "auc_within_greenstone": .., "capture_top2pct": .., "capture_top5pct": ..,
     "capture_top10pct": ..,                       # the CNN; null when no CNN was evaluated
     "cnn": {...all CNN metrics...} | null,
     "baselines": {"logistic": {same keys, ...}, "gboost": {...}},
     "setup": {data, attribution, archive, layers, label, mask, folds, blocks, seed, ...},
     "spread": {fold_seeds, models: {name: {key: {mean, std, min, max, n}}}, per_seed, cnn_minus_best_baseline,
                targets},                      # main job: the same CV on several fold assignments
     "selection": {method: "nested" | "fixed", record, found, summary, final_choice, config_matches}}

Captures are fractions of all deposits (0.43 = 43 %); AUCs are pixel ROC AUCs of out-of-fold maps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodl_hpc.evaluation.nested import spread
from geodl_hpc.osutil import atomic_write_text

if TYPE_CHECKING:
    import numpy as np

    from geodl_hpc.evaluation.blockcv import RasterData
    from geodl_hpc.evaluation.config import EvaluationConfig

CONTRACT_KEYS = ("auc_blockcv", "auc_within_greenstone", "capture_top2pct", "capture_top5pct", "capture_top10pct")
LABELS = {"auc_blockcv": "AUC", "auc_within_greenstone": "AUC within greenstone", "capture_top2pct": "top 2 %",
          "capture_top5pct": "top 5 %", "capture_top10pct": "top 10 %"}  # fmt: skip
TARGETS = {"capture_top5pct": 0.60, "auc_within_greenstone": 0.65}
"""Issue 6's targets for the CNN (the baselines reach about 0.43-0.51 and 0.52-0.54)."""
DATA_NAME = "GSWA Murchison gold prospectivity data"
SHORT_ATTRIBUTION = "Watkins and Hickman 1990, Geological Survey of Western Australia"


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` via a temporary sibling and a rename, so a reader never sees a partial file."""
    atomic_write_text(Path(path), text)
    return path


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN to null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_document(
    baselines: Mapping[str, Mapping[str, Any]],
    setup: Mapping[str, Any],
    cnn: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document: CNN contract keys at top level (null without a CNN), baselines, setup."""
    doc: dict[str, Any] = {key: (cnn or {}).get(key) for key in CONTRACT_KEYS}
    doc["cnn"] = dict(cnn) if cnn is not None else None
    doc["baselines"] = {name: dict(m) for name, m in baselines.items()}
    doc["setup"] = dict(setup)
    result: dict[str, Any] = _plain(doc)
    return result


def write_metrics_json(path: Path, document: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` atomically (indented, keys in contract order)."""
    return write_text_atomic(path, json.dumps(_plain(document), indent=2) + "\n")


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f} %" if percent else f"{value:.3f}"


def render_report(document: Mapping[str, Any], figures: Mapping[str, str] | None = None) -> str:
    """Markdown report of a metrics document: the data, the fold setup, one table row per model, the figures."""
    setup = document.get("setup", {})
    rows: list[tuple[str, Mapping[str, Any]]] = []
    if document.get("cnn"):
        rows.append(("CNN", document["cnn"]))
    rows += [(name, m) for name, m in document.get("baselines", {}).items()]
    blocks = setup.get("blocks", [])
    lines = [
        "# Prospectivity evaluation",
        "",
        f"**Data**: {setup.get('data', DATA_NAME)} (attribution: {SHORT_ATTRIBUTION}).",
        f"Archive `{setup.get('archive', '?')}`, grid {setup.get('shape', '?')} pixels at "
        f"{setup.get('resolution', '?')} m; evidence layers: {', '.join(setup.get('layers', []))}; "
        f"label: `{setup.get('label', '?')}` ({setup.get('n_deposits', '?')} deposits in "
        f"{setup.get('n_positive_pixels', '?')} pixels); mask for the within-area AUC: `{setup.get('mask')}`.",
        "",
        f"**Folds**: spatial block cross-validation, {'x'.join(str(b) for b in blocks)} blocks dealt at random "
        f"(seed {setup.get('seed', '?')}) to {setup.get('folds', '?')} folds; every model is trained without a "
        "fold's blocks and scored on them, and the metrics below are computed on the pooled out-of-fold map. "
        f"Training positives buffered by {setup.get('buffer', 0)} px; negatives per fold: "
        f"{setup.get('max_negatives') or 'all'}. Deposits per fold: {setup.get('deposits_per_fold', '?')}.",
        "",
        "| model | AUC (block CV) | AUC within greenstone | top 2 % | top 5 % | top 10 % | AUC per fold |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in rows:
        per_fold = ", ".join(_fmt(v) for v in m.get("auc_per_fold", []) or [])
        lines.append(
            f"| {name} | {_fmt(m.get('auc_blockcv'))} | {_fmt(m.get('auc_within_greenstone'))} | "
            f"{_fmt(m.get('capture_top2pct'), True)} | {_fmt(m.get('capture_top5pct'), True)} | "
            f"{_fmt(m.get('capture_top10pct'), True)} | {per_fold} |"
        )
    lines += [
        "",
        "Top k %: share of all deposits inside the k % of the area with the highest out-of-fold probability "
        "(ties at the threshold counted pro rata). AUC saturates on these data because greenstone alone ranks "
        "deposits well; the capture figures and the AUC within greenstone discriminate between models.",
    ]
    if not document.get("cnn"):
        lines += ["", "No CNN map was evaluated in this run; the top-level contract keys of metrics.json are null."]
    for caption, file in (figures or {}).items():
        lines += ["", f"![{caption}]({file})"]
    attribution = setup.get("attribution")
    if attribution:
        lines += ["", f"**Attribution**: {attribution}"]
    return "\n".join(lines) + "\n"


def write_report_md(path: Path, document: Mapping[str, Any], figures: Mapping[str, str] | None = None) -> Path:
    """Write ``report.md`` atomically."""
    return write_text_atomic(path, render_report(document, figures))


def spread_summary(seeds: Sequence[int], per_seed: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Mean and spread of the contract metrics over fold assignments (``per_seed[model][i]``: fold seed
    ``seeds[i]``), the CNN's paired lead over the best baseline per seed, and the CNN against :data:`TARGETS`."""
    models = {name: {k: spread([m.get(k) for m in ms]) for k in CONTRACT_KEYS} for name, ms in per_seed.items()}
    out: dict[str, Any] = {
        "fold_seeds": list(seeds),
        "models": models,
        "per_seed": {name: [{k: m.get(k) for k in CONTRACT_KEYS} for m in ms] for name, ms in per_seed.items()},
    }
    cnn = per_seed.get("cnn")
    others = [ms for name, ms in per_seed.items() if name != "cnn"]
    if cnn and others:
        lead: dict[str, Any] = {}
        for k in CONTRACT_KEYS:
            diffs = [c[k] - max(b[i][k] for b in others) for i, c in enumerate(cnn)]
            lead[k] = {**spread(diffs), "cnn_ahead": sum(d > 0 for d in diffs)}
        out["cnn_minus_best_baseline"] = lead
    if cnn:
        out["targets"] = {
            k: {"target": t, "cnn_mean": models["cnn"][k]["mean"], "met": (models["cnn"][k]["mean"] or 0.0) >= t}
            for k, t in TARGETS.items()
        }
    result: dict[str, Any] = _plain(out)
    return result


def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    value: Any = tree
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def selection_summary(method: str, record: str | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``selection`` entry of ``metrics.json``: how the CNN settings were chosen, the nested search's
    outer-fold summary from its ``record`` (a JSON file) and whether ``config`` (plain dict) holds its choice."""
    out: dict[str, Any] = {"method": method, "record": record}
    if method != "nested" or record is None:
        return out
    path = Path(record)
    if not path.exists():
        return {**out, "found": False}
    doc = json.loads(path.read_text())
    final = doc.get("final_choice") or {}
    overrides: Mapping[str, Any] = final.get("overrides") or {}
    mismatched = sorted(k for k, v in overrides.items() if _plain(_lookup(config, k)) != _plain(v))
    return {
        **out,
        "found": True,
        "criterion": doc.get("criterion"),
        "candidates": [c.get("name") for c in doc.get("candidates", [])],
        "summary": doc.get("summary"),
        "final_choice": final,
        "config_matches": not mismatched,
        "mismatched": mismatched,
    }


def _pm(entry: Mapping[str, Any] | None, percent: bool = False) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    scale, unit = (100.0, " %") if percent else (1.0, "")
    digits = 1 if percent else 3
    return f"{scale * entry['mean']:.{digits}f} ± {scale * (entry.get('std') or 0.0):.{digits}f}{unit}"


def spread_table(models: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]) -> list[str]:
    lines = [
        "| model | AUC (block CV) | AUC within greenstone | top 2 % | top 5 % | top 10 % |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in models.items():
        lines.append(
            f"| {names.get(name, name)} | {_pm(m.get('auc_blockcv'))} | {_pm(m.get('auc_within_greenstone'))} | "
            f"{_pm(m.get('capture_top2pct'), True)} | {_pm(m.get('capture_top5pct'), True)} | "
            f"{_pm(m.get('capture_top10pct'), True)} |"
        )
    return lines


def render_spread(document: Mapping[str, Any]) -> str:
    """Markdown: mean ± std over fold assignments, the CNN's paired lead and the targets ('' without repeats)."""
    sp = document.get("spread") or {}
    seeds = sp.get("fold_seeds") or []
    if len(seeds) < 2:
        return ""
    lines = [
        "",
        "## Spread over fold assignments",
        "",
        f"The same block CV (same blocks, layers and settings) with the blocks dealt to folds by seeds "
        f"{', '.join(str(s) for s in seeds)}: mean ± sample std over the {len(seeds)} out-of-fold maps.",
        "",
        *spread_table(sp.get("models", {}), {"cnn": "CNN"}),
    ]
    lead = sp.get("cnn_minus_best_baseline")
    if lead:
        parts = [
            f"{LABELS[k]} {_pm(v, k.startswith('capture'))} (ahead on {v.get('cnn_ahead')} of {v.get('n')})"
            for k, v in lead.items()
        ]
        lines += ["", "CNN minus the best baseline on the same folds (paired per fold seed): " + "; ".join(parts) + "."]
    targets = sp.get("targets")
    if targets:
        said = [
            f"{LABELS[k]} {_fmt(v['cnn_mean'], k.startswith('capture'))} vs target "
            f"{_fmt(v['target'], k.startswith('capture'))}"
            f" ({'met' if v['met'] else 'not met'})"
            for k, v in targets.items()
        ]
        lines += ["", "Issue 6 targets (CNN mean over fold seeds): " + "; ".join(said) + "."]
    return "\n".join(lines) + "\n"


def render_selection(document: Mapping[str, Any]) -> str:
    """Markdown: how the CNN settings were chosen and the nested search's outer-fold (honest) figures."""
    sel = document.get("selection") or {}
    method = sel.get("method")
    if not method:
        return ""
    lines = ["", "## How the CNN settings were chosen", ""]
    if method != "nested":
        lines.append(
            "Fixed, hand-set CNN settings (no nested selection recorded): if they were tuned on these folds, the CNN "
            "figures above are optimistic."
        )
        return "\n".join(lines) + "\n"
    if not sel.get("found"):
        lines.append(f"Nested selection was asked for, but its record `{sel.get('record')}` is missing: run "
                     "`python benchmarks/prospectivity_tuning.py` to make it.")  # fmt: skip
        return "\n".join(lines) + "\n"
    final = sel.get("final_choice") or {}
    summary = sel.get("summary") or {}
    lines += [
        f"Nested spatial block CV (record `{sel.get('record')}`): for every outer fold, each of "
        f"{len(sel.get('candidates') or [])} candidate settings ({', '.join(sel.get('candidates') or [])}) was "
        "scored by an inner block CV on the outer training blocks only (criterion: "
        f"{sel.get('criterion')}); the winner was retrained on all outer training blocks and scored on the outer "
        "fold. Outer-fold figures of that procedure (mean ± std over fold seeds), with the baselines on the same "
        "folds:",
        "",
        *spread_table(summary.get("models", {}), {"nested_cnn": "CNN (nested selection)"}),
        "",
        f"Chosen per outer fold: {summary.get('chosen_counts')}. The settings of this config are the final choice "
        f"`{final.get('name')}` ({final.get('rule')}); the config "
        + ("holds them." if sel.get("config_matches") else f"differs from them in {sel.get('mismatched')}.")
        + " This run's own CNN figures above come from settings chosen with these folds in view, so the nested "
        "figures are the honest estimate.",
    ]
    return "\n".join(lines) + "\n"


def evaluation_setup(config: EvaluationConfig, data: RasterData, folds_map: np.ndarray) -> dict[str, Any]:
    """What was evaluated and how: data, attribution, layers, fold setup and per-fold deposit counts."""
    from geodl_hpc.archive.murchison import ATTRIBUTION

    res = abs(float(data.x[1] - data.x[0])) if len(data.x) > 1 else None
    return {
        "data": DATA_NAME,
        "attribution": ATTRIBUTION,
        "archive": str(config.archive),
        "resolution": res,
        "shape": list(data.shape),
        "layers": list(data.layers),
        "label": config.label,
        "mask": config.mask,
        "folds": config.folds,
        "blocks": list(config.blocks),
        "seed": config.seed,
        "buffer": config.buffer,
        "max_negatives": config.max_negatives,
        "n_deposits": int(data.deposits.sum()),
        "n_positive_pixels": int(data.positives.sum()),
        "n_valid_pixels": int(data.valid.sum()),
        "deposits_per_fold": [int(data.deposits[folds_map == k].sum()) for k in range(config.folds)],
    }
