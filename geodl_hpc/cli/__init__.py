"""The ``geodl`` command line: one module per verb group, each building its own sub-parsers.

``ingest`` (ingest, inspect), ``launch`` (run, submit, status), ``models`` (train, infer, annotate), ``evaluate``
and ``hindcast``. Each verb parses its arguments, loads config, and calls one library function or registered job.
The console script is ``jobs.cli:main``: it registers the jobs (``jobs/entries.py``) and then calls :func:`main`.

User errors (``GeodlError``, missing or unwritable files) print one line to stderr and exit non-zero, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from geodl_hpc import __version__
from geodl_hpc.cli import evaluate, hindcast, ingest, launch, models, verify
from geodl_hpc.cli.common import FORMAT, Handler, Verbs
from geodl_hpc.errors import GeodlError

MAIN_HELP = """\
geodl: deep learning for the geosciences as batch jobs, on a laptop or a Slurm cluster.

Data flows one way: archives (Zarr) -> sampling -> Ray Data pipeline -> Horovod training
-> tiled inference -> evaluation. Start by ingesting data into an archive, then inspect it.

examples:
  geodl ingest murchison runs/murchison.zarr            # built-in real GSWA gold data, 500 m grid
  geodl ingest raster dem.zarr dem.tif --crs 32611 --res 30
  geodl ingest waveforms rjob.zarr data/*.mseed --picks picks.csv
  geodl ingest catalog comcat.parquet comcat.csv
  geodl inspect runs/murchison.zarr --json
  geodl run configs/demo.yaml murchison.resolution=1000
  geodl submit ingest_murchison configs/demo.yaml --cluster slurm-example --dry-run
  geodl status runs/demo

Run `geodl VERB --help` for each verb's options and more examples.
"""

# Every verb, in the order `geodl --help` lists them. A new verb: an ``add_VERB(verbs)`` in its group's module
# (or a new module), named here.
VERBS: tuple[Callable[[Verbs], None], ...] = (
    ingest.add_ingest,
    ingest.add_inspect,
    launch.add_run,
    launch.add_submit,
    models.add_train,
    models.add_infer,
    evaluate.add_evaluate,
    hindcast.add_hindcast,
    models.add_annotate,
    launch.add_status,
    verify.add_verify,
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``geodl`` argument parser (also used to render the docs)."""
    parser = argparse.ArgumentParser(prog="geodl", description=MAIN_HELP, formatter_class=FORMAT)
    parser.add_argument("--version", action="version", version=f"geodl_hpc {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for add in VERBS:
        add(verbs)
    return parser


def _is_override(text: str) -> bool:
    return "=" in text and not text.startswith("-")


def main(argv: Sequence[str] | None = None, *, entry_module: str) -> int:
    """Parse ``argv`` and run the verb; ``entry_module`` is the module that started us (``python -m`` name),
    which processes this command starts (``geodl train --np N`` ranks) run too."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may follow options (`geodl submit JOB CONFIG --dry-run cluster.nodes=2`).
    if extra and isinstance(getattr(args, "overrides", None), list) and all(_is_override(e) for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.entry_module = entry_module
    handler: Handler = args.handler
    from geodl_hpc.archive.integrity import enable_checked_reads

    enable_checked_reads()
    try:
        return handler(args)
    except GeodlError as exc:
        print(f"geodl: error: {exc}", file=sys.stderr)
        # zarr's reads that were in flight beside a failed chunk would log "Task was destroyed" at exit.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        return exc.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        where = exc.filename or ""
        print(f"geodl: error: {where}: {exc.strerror}; check the path and its permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geodl: interrupted; nothing incomplete was left at the output path", file=sys.stderr)
        return 130
