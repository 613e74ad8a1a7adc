"""`geodl train`, `geodl infer` and `geodl annotate`: train a model, run it over rasters and over waveforms."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geodl_hpc.cli.common import (
    Verbs,
    add_job_verb,
    add_verb,
    cmd_job,
    launch_plan,
    print_result,
    run_job,
    submit_and_report,
)
from geodl_hpc.errors import GeodlError


def rank_launcher(backend: str, n: int) -> list[str]:
    """The command prefix that starts ``n`` local ranks of ``geodl`` for a training backend."""
    if backend == "horovod":
        # `python -m horovod.runner.launch` is horovodrun without relying on PATH.
        launch = [sys.executable, "-m", "horovod.runner.launch"]
        return [*launch, "-np", str(n), "-H", f"localhost:{n}", "--gloo", sys.executable]
    if backend == "torch":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
    raise GeodlError(f"train.backend={backend} runs one process; set train.backend=horovod or torch to use --np {n}")


def _cmd_train(args: argparse.Namespace) -> int:
    import subprocess

    from geodl_hpc import registry

    if args.cluster is not None:
        print_result("train", run_job("train", args), True)
        return 0
    _, config = registry.load(args.config, args.overrides, "train")
    if args.np > 1:
        prefix = rank_launcher(config.train.backend, args.np)
        # each rank is `geodl run` started the way this process was (the module that registered the jobs)
        command = [*prefix, "-m", args.entry_module, "run", str(args.config), "job=train", *args.overrides]
        print(f"starting {args.np} ranks: {' '.join(command)}", file=sys.stderr)
        return subprocess.run(command, check=False).returncode
    print_result("train", registry.run(config), True)
    return 0


def _cmd_annotate(args: argparse.Namespace) -> int:
    """`geodl annotate ARCHIVE --model CHECKPOINT`: the annotate job with ARCHIVE/--model/--output filled in."""
    from geodl_hpc import registry

    given = [f"archive={args.archive}", f"model={args.model}"]
    if args.output is not None:
        given.append(f"output={args.output}")
    args.overrides = [*given, *args.overrides]
    if args.cluster is None:
        _, config = registry.load(args.config, args.overrides, "annotate")
        print_result("annotate", registry.run(config), True)
        return 0
    # n_ranks > 1: one array task per rank (each takes a stride of the missing blocks; the last one completes).
    results = submit_and_report(launch_plan("annotate", args, per_rank=True), wait=True)
    print_result("annotate", results[-1] if len(results) == 1 else results, True)
    return 0


def add_train(verbs: Verbs) -> None:
    """`geodl train CONFIG`: one process, N local ranks, or a cluster."""
    train = add_verb(
        verbs,
        "train",
        "train a model on an archive: one process, N local ranks (--np), or a cluster (--cluster)",
        "Train the model a train config describes (configs/train_murchison.yaml) on chips of a raster\n"
        "archive. Run it again on the same output folder to resume exactly from the newest checkpoint; USR2 or\n"
        "TERM makes every rank checkpoint at the same step and exit with status 'preempted'.\n\n"
        "examples:\n"
        "  geodl train configs/train_murchison.yaml\n"
        "  geodl train configs/train_murchison.yaml --np 2 train.backend=horovod   # 2 Horovod ranks (gloo)\n"
        "  geodl train configs/train_murchison.yaml --np 2 train.backend=torch     # 2 DDP ranks (torchrun)\n"
        "  geodl train configs/train_murchison.yaml --cluster localslurm cluster.ntasks_per_node=2",
        _cmd_train,
    )
    train.add_argument("config", type=Path, metavar="CONFIG.yaml")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.epochs=5")
    train.add_argument("--np", type=int, default=1, metavar="N", help="number of local ranks (default 1)")
    train.add_argument("--cluster", metavar="PROFILE", help="submit to configs/clusters/PROFILE.yaml and wait")


def add_infer(verbs: Verbs) -> None:
    """`geodl infer CONFIG`: the infer job."""
    add_job_verb(
        verbs,
        "infer",
        "infer",
        "tiled, seam-free, resumable inference over a raster stack -> map.zarr, map.tif (COG), map.png",
        "Run a trained model (train checkpoint) over every pixel of a raster stack in tiles with a halo; tiles\n"
        "are stitched by centre crops (exact) or cosine blending, written chunk-aligned to a Zarr map on the\n"
        "input grid, recorded in a ledger (a killed run resumes with only the missing regions; a finished one\n"
        "is a no-op) and exported to a COG and a PNG. rank=/n_ranks= split the regions between processes.",
        [
            "geodl infer configs/infer_murchison.yaml",
            "geodl infer CONFIG rank=0 n_ranks=2 & geodl infer CONFIG rank=1 n_ranks=2",
        ],
        cmd_job,
    )


def add_annotate(verbs: Verbs) -> None:
    """`geodl annotate ARCHIVE --model CKPT`: the annotate job with its inputs as arguments."""
    annotate = add_verb(
        verbs,
        "annotate",
        "continuous phase picking over a waveform archive -> probability traces (Zarr), picks (CSV, QuakeML)",
        "Slide a trained picker (the output folder of `geodl train configs/seismic_picker.yaml`, or a\n"
        "checkpoint in it) over every station and hour of a waveform archive with overlapping windows, stack the\n"
        "window outputs into continuous P/S/noise probability traces (Zarr, on the archive's time axis), and\n"
        "extract picks (threshold, minimum separation) to picks.csv and picks.xml (QuakeML, ObsPy reads it).\n"
        "Work goes in station x time blocks with a ledger: a killed run resumes with the missing blocks only.\n\n"
        "examples:\n"
        "  geodl annotate runs/rjob.zarr --model runs/seismic_picker\n"
        "  geodl annotate ARCHIVE --model CKPT stride=50 stacking=max threshold.P=0.5\n"
        "  geodl annotate ARCHIVE --model CKPT --cluster localslurm",
        _cmd_annotate,
    )
    annotate.add_argument("archive", type=Path, metavar="ARCHIVE", help="waveform archive (geodl ingest waveforms)")
    annotate.add_argument("--model", type=Path, required=True, metavar="CHECKPOINT", help="picker run or checkpoint")
    annotate.add_argument("--output", type=Path, metavar="OUT", help="output folder (default: the config's)")
    annotate.add_argument("--config", type=Path, metavar="CONFIG.yaml", help="annotate config with more settings")
    annotate.add_argument("--cluster", metavar="PROFILE", help="submit to configs/clusters/PROFILE.yaml and wait")
    annotate.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. stride=50")
