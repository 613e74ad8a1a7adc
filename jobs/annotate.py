"""Job: continuous annotation of a waveform archive by a trained picker -> probability traces, picks, scores.

``main(config)`` runs this rank's blocks (``rank`` of ``n_ranks``; Slurm array tasks each call it with their own
rank; ``executor=ray`` runs every block as Ray tasks). Run it again after a crash to compute only the missing
blocks; on a finished output it is a no-op. The process that completes the output also writes
``OUT.picks.csv|parquet`` and ``OUT.picks.xml`` (QuakeML) and, when the archive has pick labels and
``evaluate`` is on, ``OUT.metrics.json``: our scores next to an STA/LTA baseline tuned on the validation split
(and, with ``rjob=true``, our picks on ObsPy's real RJOB event next to ObsPy's AR picker).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from geodl_hpc.config import dump_config
from geodl_hpc.inference.annotate_config import AnnotateJobConfig
from geodl_hpc.osutil import atomic_write_text


def main(config: AnnotateJobConfig) -> dict[str, Any]:
    """Annotate this rank's blocks of ``config.archive``; returns counts, throughput, files and any scores."""
    from geodl_hpc.inference.annotate import annotate, as_picker

    picker = as_picker(Path(config.model))
    result = annotate(picker, config)
    out = config.output_path()
    if not result["complete"]:
        return result
    metrics_path = out.with_name(f"{out.name.removesuffix('.zarr')}.metrics.json")
    if result["status"] != "noop" or not out.with_name(out.name.removesuffix(".zarr") + ".config.yaml").exists():
        dump_config(config, out.with_name(f"{out.name.removesuffix('.zarr')}.config.yaml"))
    metrics = _evaluate(config, picker, out) if result["status"] != "noop" or not metrics_path.exists() else None
    if metrics is not None:
        atomic_write_text(metrics_path, json.dumps(_finite(metrics), indent=2))  # ranks may finish together
        result["files"]["metrics"] = str(metrics_path)
        result["metrics"] = metrics
    elif metrics_path.exists():
        result["files"]["metrics"] = str(metrics_path)
    return result


def _evaluate(config: AnnotateJobConfig, picker: Any, out: Path) -> dict[str, Any] | None:
    """Scores on the archive's labels (if any) and the RJOB comparison (if asked); None when neither applies."""
    import zarr

    from geodl_hpc.evaluation.picking import evaluate_annotation, rjob_comparison

    metrics: dict[str, Any] = {}
    group: Any = zarr.open_group(config.archive, mode="r")
    if config.evaluate and "pick_station" in {name for name, _ in group.arrays()}:
        metrics["held_out"] = evaluate_annotation(
            Path(config.archive),
            out,
            tolerance_s=config.tolerance_s,
            min_separation_s=config.min_separation_s,
            thresholds={p: config.threshold_of(p) for p in config.phases},
            validation=Path(config.validation) if config.validation else None,
        )
    if config.rjob:
        workdir = out.with_name(f"{out.name.removesuffix('.zarr')}.rjob")
        metrics["rjob"] = rjob_comparison(picker, workdir, threshold=min(config.threshold_of(p) for p in ("P", "S")))
    return metrics or None


def _finite(value: Any) -> Any:
    """NaN -> None, so the JSON is strict (NaN is not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
