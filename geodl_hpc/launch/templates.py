"""The sbatch templates in ``slurm/`` for hand use, rendered by the same pure renderer as every submission.

Regenerate after changing the renderer or the example profile: ``python -m geodl_hpc.launch.templates``
(``tests/launch/test_submit.py`` fails while they are stale).
"""

from __future__ import annotations

import sys
from pathlib import Path

from geodl_hpc.launch.profiles import load_profile, sbatch_spec
from geodl_hpc.launch.sbatch import render_sbatch

SLURM_DIR = Path(__file__).resolve().parents[2] / "slurm"


def templates() -> dict[str, str]:
    """File name -> script: one job and one throttled array, from the documented ``slurm-example`` profile."""
    profile = load_profile("slurm-example")
    job = sbatch_spec(
        profile,
        job_name="geodl-job",
        command=["geodl", "run", "configs/demo.yaml"],
        output="logs/%x-%j.out",
        error="logs/%x-%j.err",
    )
    array = sbatch_spec(
        profile,
        job_name="geodl-array",
        # one config per array task: configs/items/0.yaml, 1.yaml, ...
        command=["sh", "-c", 'exec geodl run "configs/items/$SLURM_ARRAY_TASK_ID.yaml"'],
        output="logs/%x-%A_%a.out",
        error="logs/%x-%A_%a.err",
        array="0-9%4",
    )
    return {"geodl-job.sbatch": render_sbatch(job), "geodl-array.sbatch": render_sbatch(array)}


def write(folder: Path = SLURM_DIR) -> list[Path]:
    """Write every template into ``folder``; return the paths."""
    paths = []
    for name, text in templates().items():
        path = folder / name
        path.write_text(text)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SLURM_DIR):
        print(path)
