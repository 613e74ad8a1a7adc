"""``metrics.json`` and ``report.md`` of an evaluation run: the CNN's contract keys at top level, baselines below.

``metrics.json`` layout (contract)::

    {"auc_blockcv": .., "auc_within_greenstone": .., "capture_top2pct": .., "capture_top5pct": ..,
     "capture_top10pct": ..,                       # the CNN; null when no CNN was evaluated
     "cnn": {...all CNN metrics...} | null,
     "baselines": {"logistic": {same keys, ...}, "gboost": {...}},
     "setup": {data, attribution, archive, layers, label, mask, folds, blocks, seed, ...}}

Captures are fractions of all deposits (0.43 = 43 %); AUCs are pixel ROC AUCs of out-of-fold maps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geodl_hpc.osutil import atomic_write_text

CONTRACT_KEYS = ("auc_blockcv", "auc_within_greenstone", "capture_top2pct", "capture_top5pct", "capture_top10pct")
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
