"""The ``geodl`` command: each verb parses its arguments, loads config, and calls one library or job function.

User errors (``GeodlError``, missing or unwritable files) print one line to stderr and exit non-zero, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geodl_hpc import __version__
from geodl_hpc.errors import GeodlError

Handler = Callable[[argparse.Namespace], int]

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

STORAGE_HELP = "chunking and compression: --chunk (pixels or samples per chunk side) and --codec zstd|blosc|gzip|none"


def _add_storage(parser: argparse.ArgumentParser, default_chunk: int) -> None:
    group = parser.add_argument_group("storage", STORAGE_HELP)
    group.add_argument("--chunk", type=int, default=default_chunk, help=f"chunk size (default {default_chunk})")
    group.add_argument("--codec", default="zstd", choices=["zstd", "blosc", "gzip", "none"], help="default zstd")
    group.add_argument("--level", type=int, default=3, help="compression level (default 3)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT once the new archive is complete")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _codec(args: argparse.Namespace) -> Any:
    from geodl_hpc.config import StorageConfig

    return StorageConfig(chunk=args.chunk, codec=args.codec, level=args.level).codec_spec()


def _print_summary(path: Path) -> None:
    from geodl_hpc.archive.inspect import describe, render_text

    print(render_text(describe(path)))


def _cmd_ingest_raster(args: argparse.Namespace) -> int:
    from geodl_hpc.archive.grid import GridSpec
    from geodl_hpc.archive.raster import ingest_raster

    grid = None
    if args.crs is not None or args.res is not None or args.bounds is not None:
        if args.like is not None:
            raise GeodlError("--like cannot be combined with --crs/--res/--bounds; choose one way to give the grid")
        if args.crs is None or args.res is None or args.bounds is None:
            raise GeodlError("a target grid needs all of --crs, --res and --bounds (or use --like ARCHIVE)")
        grid = GridSpec.from_bounds(args.crs, args.res, tuple(args.bounds))
    ingest_raster(
        args.out,
        args.sources,
        grid=grid,
        like=args.like,
        src_crs=args.src_crs,
        resampling=args.resampling,
        chunk=args.chunk,
        codec=_codec(args),
        overwrite=args.overwrite,
        progress=args.progress,
    )
    _print_summary(args.out)
    return 0


def _cmd_ingest_waveforms(args: argparse.Namespace) -> int:
    from geodl_hpc.archive.waveforms import ingest_waveforms

    ingest_waveforms(
        args.out,
        args.sources,
        sampling_rate=args.sampling_rate,
        picks=args.picks,
        stations=args.stations,
        chunk_samples=args.chunk,
        codec=_codec(args),
        overwrite=args.overwrite,
        progress=args.progress,
    )
    _print_summary(args.out)
    return 0


def _cmd_ingest_catalog(args: argparse.Namespace) -> int:
    from geodl_hpc.archive.catalog import ingest_catalog

    ingest_catalog(args.out, args.source, fmt=args.format, depth_unit=args.depth_unit, overwrite=args.overwrite)
    _print_summary(args.out)
    return 0


def _cmd_ingest_murchison(args: argparse.Namespace) -> int:
    from geodl_hpc.archive.murchison import build_murchison

    build_murchison(
        args.out,
        resolution=args.res,
        chunk=args.chunk,
        codec=_codec(args),
        overwrite=args.overwrite,
        progress=args.progress,
    )
    _print_summary(args.out)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from geodl_hpc.archive.inspect import describe, describe_json, render_text

    print(describe_json(args.path) if args.json else render_text(describe(args.path)))
    if args.plot is not None:
        from geodl_hpc.archive.preview import plot_archive

        plot_archive(args.path, args.plot)
        print(f"quick-look plot: {args.plot}", file=sys.stderr)
    return 0


def _print_result(job: str, result: Any, as_json: bool) -> None:
    if as_json or job != "ingest_murchison":
        print(json.dumps(result, indent=2, default=str))
        return
    from geodl_hpc.archive.inspect import render_text

    if result.get("skipped"):
        print(f"up to date: {result['path']} (built earlier with the same options; overwrite=true rebuilds)")
    print(render_text(result))


def _launch_plan(job: str | None, args: argparse.Namespace) -> Any:
    """Split overrides into job (key=value) and cluster (cluster.key=value) ones, load both, plan the submission."""
    from geodl_hpc.launch.profiles import load_profile
    from geodl_hpc.launch.submit import plan
    from jobs import registry

    cluster = [o.removeprefix("cluster.") for o in args.overrides if o.startswith("cluster.")]
    overrides = [o for o in args.overrides if not o.startswith("cluster.")]
    profile = load_profile(args.cluster, cluster)
    name, config = registry.load(args.config, overrides, job)
    return plan(name, [config], profile)


def _submit_and_report(plan: Any, wait: bool) -> list[Any]:
    from geodl_hpc.launch.submit import submit
    from geodl_hpc.launch.submit import wait as wait_for

    jobs, status = submit(plan)
    ids = ",".join(status["job_ids"])
    where = "process" if status["executor"] == "local" else "Slurm job"
    print(f"submitted {plan.job} as {where} {ids} on {plan.profile.name}; run folder {plan.run_dir}", file=sys.stderr)
    print(f"follow it with: geodl status {plan.run_dir}", file=sys.stderr)
    return wait_for(jobs, status) if wait else []


def _cmd_run(args: argparse.Namespace) -> int:
    from jobs import registry

    if args.cluster is None:
        job, config = registry.load(args.config, args.overrides)
        result = registry.run(config)
    else:
        launch = _launch_plan(None, args)
        job = launch.job
        (result,) = _submit_and_report(launch, wait=True)
    _print_result(job, result, args.json)
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    launch = _launch_plan(args.job, args)
    if args.dry_run:
        print(launch.describe())
        return 0
    results = _submit_and_report(launch, wait=args.wait)
    for result in results:
        _print_result(launch.job, result, args.json)
    return 0


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

    from jobs import registry

    if args.cluster is not None:
        (result,) = _submit_and_report(_launch_plan("train", args), wait=True)
        _print_result("train", result, True)
        return 0
    _, config = registry.load(args.config, args.overrides, "train")
    if args.np > 1:
        prefix = rank_launcher(config.train.backend, args.np)
        command = [*prefix, "-m", "geodl_hpc.cli", "run", str(args.config), "job=train", *args.overrides]
        print(f"starting {args.np} ranks: {' '.join(command)}", file=sys.stderr)
        return subprocess.run(command, check=False).returncode
    _print_result("train", registry.run(config), True)
    return 0


def _cmd_job(args: argparse.Namespace) -> int:
    """A job verb (`geodl infer`, `geodl evaluate`): `geodl run` with the job fixed by the verb."""
    from jobs import registry

    if args.cluster is not None:
        (result,) = _submit_and_report(_launch_plan(args.job, args), wait=True)
    else:
        _, config = registry.load(args.config, args.overrides, args.job)
        result = registry.run(config)
    _print_result(args.job, result, True)
    return 0


def _num(value: float | None) -> str:
    """A statistic for people: ``n/a`` where it is undefined (JSON null), else 6 significant digits."""
    return "n/a" if value is None else f"{value:.6g}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """`geodl evaluate CONFIG` (a job) or `geodl evaluate csep --forecast F --catalog C` (CSEP tests)."""
    csep_options = (args.forecast, args.catalog)
    if str(args.config) != "csep":
        if any(o is not None for o in csep_options):
            raise GeodlError("--forecast/--catalog belong to `geodl evaluate csep ...`; put csep before them")
        return _cmd_job(args)
    if args.forecast is None or args.catalog is None:
        raise GeodlError("geodl evaluate csep: give both --forecast FILE and --catalog FILE (see --help)")
    if args.cluster is not None or args.overrides:
        raise GeodlError("geodl evaluate csep runs in this process; drop --cluster and KEY=VALUE arguments")
    from geodl_hpc.evaluation.csep.evaluate import evaluate_csep

    tests = [t.strip() for t in args.tests.split(",") if t.strip()]
    result = evaluate_csep(args.forecast, args.catalog, tests, args.seed, args.n_sim, plot_dir=args.plot)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"{result['forecast']} vs {result['catalog']}: {result['n_events']} events in the forecast's window")
        for test in result["tests"]:
            quantile = test["quantile"]
            shown = ", ".join(_num(q) for q in quantile) if isinstance(quantile, list) else _num(quantile)
            print(f"  {test['name']:<16} observed {_num(test['observed_statistic'])}  quantile {shown}")
    return 0


def _cmd_annotate(args: argparse.Namespace) -> int:
    """`geodl annotate ARCHIVE --model CHECKPOINT`: the annotate job with ARCHIVE/--model/--output filled in."""
    from jobs import registry

    given = [f"archive={args.archive}", f"model={args.model}"]
    if args.output is not None:
        given.append(f"output={args.output}")
    args.overrides = [*given, *args.overrides]
    if args.cluster is None:
        _, config = registry.load(args.config, args.overrides, "annotate")
        _print_result("annotate", registry.run(config), True)
        return 0
    from geodl_hpc.launch.profiles import load_profile
    from geodl_hpc.launch.submit import plan

    cluster = [o.removeprefix("cluster.") for o in args.overrides if o.startswith("cluster.")]
    overrides = [o for o in args.overrides if not o.startswith("cluster.")]
    profile = load_profile(args.cluster, cluster)
    _, config = registry.load(args.config, overrides, "annotate")
    # n_ranks > 1: one array task per rank (each takes a stride of the missing blocks; the last one completes).
    results = _submit_and_report(plan("annotate", config.rank_configs(), profile), wait=True)
    _print_result("annotate", results[-1] if len(results) == 1 else results, True)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from geodl_hpc.launch.runs import format_status, run_states

    status, states = run_states(args.run)
    if args.json:
        tasks = {t: {"state": s.state, "slurm_state": s.slurm_state, "requeues": s.requeues} for t, s in states.items()}
        print(json.dumps({**status, "states": tasks}, indent=2))
    else:
        print(format_status(args.run, status, states))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``geodl`` argument parser (also used to render the docs)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="geodl", description=MAIN_HELP, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"geodl_hpc {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    ingest = verbs.add_parser(
        "ingest",
        help="turn rasters, vectors, waveforms or catalogs into a geodl archive",
        description="Ingest source files into a crash-safe, compressed geodl archive (Zarr v3 or Parquet).\n\n"
        "examples:\n  geodl ingest raster --help\n  geodl ingest murchison runs/murchison.zarr --res 250",
        formatter_class=fmt,
    )
    kinds = ingest.add_subparsers(dest="kind", metavar="KIND", required=True)

    raster = kinds.add_parser(
        "raster",
        help="GDAL rasters and vectors -> one raster stack on a common grid",
        description="Stack GDAL rasters (GeoTIFF, .gtx, ...) and vector files (GeoJSON, shapefile, GeoPackage, point\n"
        "or segment CSV) as named float32 layers on one grid, with CRS, nodata (NaN) and per-layer statistics.\n"
        "Rasters are reprojected window by window, so files larger than memory work. Vectors become layers:\n"
        "points -> NAME_count, lines -> NAME_distance + NAME_density, polygons -> NAME_indicator + NAME_distance.\n"
        "The grid is --crs/--res/--bounds, or --like another archive, or else the first raster's own grid.\n\n"
        "examples:\n"
        "  geodl ingest raster dem.zarr rmnp-dem.tif\n"
        "  geodl ingest raster stack.zarr mag.tif grav.tif faults.geojson --crs 32750 --res 500 \\\n"
        "      --bounds 352000 6699000 683000 7102000\n"
        "  geodl ingest raster extra.zarr radiometrics.tif --like stack.zarr --resampling average",
        formatter_class=fmt,
    )
    raster.add_argument("out", type=Path, metavar="OUT.zarr", help="archive to write")
    raster.add_argument("sources", type=Path, nargs="+", metavar="SRC", help="raster or vector files")
    grid = raster.add_argument_group("target grid")
    grid.add_argument("--crs", help="target CRS, e.g. 32750 or EPSG:32750")
    grid.add_argument("--res", type=float, help="pixel size in target CRS units")
    grid.add_argument("--bounds", type=float, nargs=4, metavar=("LEFT", "BOTTOM", "RIGHT", "TOP"))
    grid.add_argument("--like", type=Path, metavar="ARCHIVE", help="use the grid of an existing raster archive")
    raster.add_argument("--src-crs", help="CRS of sources that carry none (e.g. 4326)")
    raster.add_argument(
        "--resampling",
        default="bilinear",
        choices=["nearest", "bilinear", "cubic", "average", "mode", "max", "min"],
        help="default bilinear; use nearest or mode for categorical rasters",
    )
    _add_storage(raster, 512)
    raster.set_defaults(handler=_cmd_ingest_raster)

    waveforms = kinds.add_parser(
        "waveforms",
        help="anything ObsPy reads -> (station, channel, time) archive",
        description="Merge waveform files ObsPy can read (miniSEED, SAC, SEISAN, GSE2, ...) into one archive with\n"
        "one sampling rate, gaps masked, station metadata as coordinates and optional pick labels.\n\n"
        "examples:\n"
        "  geodl ingest waveforms day.zarr 2019/*.mseed --stations stations.xml\n"
        "  geodl ingest waveforms rjob.zarr rjob.z rjob.n rjob.e --sampling-rate 100 --picks picks.csv",
        formatter_class=fmt,
    )
    waveforms.add_argument("out", type=Path, metavar="OUT.zarr")
    waveforms.add_argument("sources", type=Path, nargs="+", metavar="SRC")
    waveforms.add_argument("--sampling-rate", type=float, help="resample every trace to this rate (Hz)")
    waveforms.add_argument("--picks", type=Path, help="CSV (station,phase,time) or QuakeML/Nordic picks")
    waveforms.add_argument("--stations", type=Path, help="StationXML or CSV with station coordinates")
    _add_storage(waveforms, 65536)
    waveforms.set_defaults(handler=_cmd_ingest_waveforms)

    catalog = kinds.add_parser(
        "catalog",
        help="ComCat CSV, QuakeML or CSEP ASCII -> normalised catalog",
        description="Normalise an earthquake catalog to time, latitude, longitude, depth_km, magnitude,\n"
        "magnitude_type, event_id, sorted by time. OUT ending in .parquet gives Parquet, else Zarr.\n\n"
        "examples:\n"
        "  geodl ingest catalog ridgecrest.parquet sample_comcat_catalog.csv\n"
        "  geodl ingest catalog sed.parquet catalog_sed.csv --depth-unit m\n"
        "  geodl ingest catalog events.zarr events.xml --format quakeml",
        formatter_class=fmt,
    )
    catalog.add_argument("out", type=Path, metavar="OUT")
    catalog.add_argument("source", type=Path, metavar="SRC")
    catalog.add_argument("--format", default="auto", choices=["auto", "comcat", "quakeml", "csep", "csv"])
    catalog.add_argument("--depth-unit", default="auto", choices=["auto", "km", "m"])
    catalog.add_argument("--overwrite", action="store_true", help="replace OUT once the new catalog is complete")
    catalog.set_defaults(handler=_cmd_ingest_catalog)

    murchison = kinds.add_parser(
        "murchison",
        help="the built-in real GSWA Murchison gold data -> raster stack",
        description="Rasterise the built-in Murchison data (255 gold deposits, 3,252 faults, greenstone; GSWA,\n"
        "Watkins and Hickman 1990) onto an EPSG:32750 grid: greenstone, dist_greenstone, dist_fault,\n"
        "fault_density and the deposits label layer.\n\n"
        "examples:\n  geodl ingest murchison runs/murchison.zarr\n  geodl ingest murchison fine.zarr --res 250",
        formatter_class=fmt,
    )
    murchison.add_argument("out", type=Path, metavar="OUT.zarr")
    murchison.add_argument("--res", type=float, default=500.0, help="pixel size in metres (default 500)")
    _add_storage(murchison, 256)
    murchison.set_defaults(handler=_cmd_ingest_murchison)

    inspect = verbs.add_parser(
        "inspect",
        help="show what an archive holds (dims, chunks, codecs, CRS, statistics, provenance)",
        description="Describe a geodl archive. --json prints the documented contract (docs/archives.md): kind,\n"
        "complete, variables, dims, shape, chunks, codecs, dtype, crs_epsg, crs_wkt, bounds, resolution,\n"
        "sampling_rate, n_events, statistics, provenance.\n\n"
        "examples:\n  geodl inspect runs/demo/murchison.zarr --plot layers.png\n"
        "  geodl inspect comcat.parquet --json | jq .n_events",
        formatter_class=fmt,
    )
    inspect.add_argument("path", type=Path, metavar="PATH")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--plot", type=Path, metavar="PNG", help="also write a quick-look PNG (rasters, waveforms)")
    inspect.set_defaults(handler=_cmd_inspect)

    run = verbs.add_parser(
        "run",
        help="run the job a YAML config names, here and now (or on a cluster, waiting for it)",
        description="Run the job named by a YAML config in this process. Options can be overridden as key.sub=value;\n"
        "the fully resolved config is stored in the job's output folder. With --cluster the job goes through\n"
        "submitit to that cluster profile instead, and this command waits for its result.\n\n"
        "examples:\n  geodl run configs/demo.yaml\n"
        "  geodl run configs/demo.yaml murchison.resolution=1000 output=runs/coarse\n"
        "  geodl run configs/demo.yaml --cluster local",
        formatter_class=fmt,
    )
    run.add_argument("config", type=Path, metavar="CONFIG.yaml")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. storage.chunk=256")
    run.add_argument("--json", action="store_true", help="print the job's result as JSON")
    run.add_argument("--cluster", metavar="PROFILE", help="run through submitit on configs/clusters/PROFILE.yaml")
    run.set_defaults(handler=_cmd_run)

    submit = verbs.add_parser(
        "submit",
        help="submit a job to a cluster profile (Slurm or local) and return; --dry-run shows the script and cost",
        description="Submit JOB with CONFIG through submitit to a cluster profile from configs/clusters/ (local:\n"
        "this machine, no Slurm; a Slurm profile: sbatch). KEY=VALUE overrides change the job config;\n"
        "cluster.KEY=VALUE overrides change the resources asked (nodes, ntasks_per_node, gpus_per_node,\n"
        "cpus_per_task, mem, time_min, partition, ...) within the profile's limits. The run folder is the\n"
        "config's output: it gets run.json, config.resolved.yaml, job.sbatch and logs/ (one log per rank).\n"
        "On USR2 (preemption, or signal_delay_s before the time limit) the job checkpoints and is requeued.\n\n"
        "examples:\n"
        "  geodl submit ingest_murchison configs/demo.yaml --cluster slurm-example --dry-run\n"
        "  geodl submit ingest_murchison configs/demo.yaml --cluster localslurm cluster.time_min=20\n"
        "  geodl submit cluster_check configs/cluster_check.yaml --cluster localslurm cluster.ntasks_per_node=2\n"
        "  geodl submit resume_check configs/resume_check.yaml --cluster local --wait",
        formatter_class=fmt,
    )
    submit.add_argument("job", metavar="JOB", help="a job from jobs/registry.py, e.g. ingest_murchison")
    submit.add_argument("config", type=Path, metavar="CONFIG.yaml")
    submit.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="job options, or cluster.KEY=VALUE")
    submit.add_argument("--cluster", default="local", metavar="PROFILE", help="cluster profile (default local)")
    submit.add_argument("--dry-run", action="store_true", help="print the sbatch script and resource plan only")
    submit.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    submit.add_argument("--json", action="store_true", help="with --wait: print the result as JSON")
    submit.set_defaults(handler=_cmd_submit)

    train = verbs.add_parser(
        "train",
        help="train a model on an archive: one process, N local ranks (--np), or a cluster (--cluster)",
        description="Train the model a train config describes (configs/train_murchison.yaml) on chips of a raster\n"
        "archive. Run it again on the same output folder to resume exactly from the newest checkpoint; USR2 or\n"
        "TERM makes every rank checkpoint at the same step and exit with status 'preempted'.\n\n"
        "examples:\n"
        "  geodl train configs/train_murchison.yaml\n"
        "  geodl train configs/train_murchison.yaml --np 2 train.backend=horovod   # 2 Horovod ranks (gloo)\n"
        "  geodl train configs/train_murchison.yaml --np 2 train.backend=torch     # 2 DDP ranks (torchrun)\n"
        "  geodl train configs/train_murchison.yaml --cluster localslurm cluster.ntasks_per_node=2",
        formatter_class=fmt,
    )
    train.add_argument("config", type=Path, metavar="CONFIG.yaml")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.epochs=5")
    train.add_argument("--np", type=int, default=1, metavar="N", help="number of local ranks (default 1)")
    train.add_argument("--cluster", metavar="PROFILE", help="submit to configs/clusters/PROFILE.yaml and wait")
    train.set_defaults(handler=_cmd_train)

    job_verbs = {
        "infer": (
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
        ),
        "evaluate": (
            "evaluate_baselines",
            "prospectivity baselines (CONFIG), or CSEP tests of an earthquake forecast (`evaluate csep`)",
            "geodl evaluate CONFIG: out-of-fold prospectivity maps of the classic baselines on the same spatial\n"
            "blocks and layers the CNN uses: ROC AUC, AUC within greenstone, success-rate curve and capture in the\n"
            "top 2/5/10 % of the area.\n\n"
            "geodl evaluate csep --forecast F --catalog C: CSEP consistency tests of one gridded rate forecast\n"
            "(CSEP ASCII as pyCSEP reads it, or a forecast Zarr written by geodl hindcast) against any catalog\n"
            "geodl ingests (ComCat CSV, QuakeML, CSEP ASCII, CSV, or an ingested catalog archive). Tests: N, L, CL,\n"
            "S, M (Poisson; simulated quantiles with --n-sim draws from --seed), Brier. --json prints per test its\n"
            "name, observed statistic and quantile(s), as pyCSEP reports them.",
            [
                "geodl evaluate configs/evaluate_baselines_murchison.yaml",
                "geodl evaluate CONFIG seed=1 buffer=1",
                "geodl evaluate csep --forecast helmstetter.dat --catalog comcat.csv --tests N,L,CL,S,M --json",
                "geodl evaluate csep --forecast window.zarr --catalog ridgecrest.parquet --seed 7 --plot plots/",
            ],
        ),
        "hindcast": (
            "hindcast",
            "rolling-origin earthquake forecast hindcast: N models x M windows x CSEP tests, resumable",
            "Bin a catalog onto a CSEP grid, fit each forecasting model on the past only, forecast the next window,\n"
            "and test every window (N, L, CL, S, M, Brier; paired T and W against the reference; Molchan area skill\n"
            "score). Work items (model x block of windows) are written as idempotent pieces with a ledger: a\n"
            "killed campaign resumes with only the missing items; a finished one is a no-op. Ends with results.csv,\n"
            "forecasts/MODEL.zarr, plots and report.md. --cluster sends the whole job to a cluster; to fan the items\n"
            "out as Slurm array tasks set campaign.executor=slurm campaign.cluster=PROFILE campaign.array_tasks=N.",
            [
                "geodl hindcast configs/hindcast_ridgecrest.yaml",
                "geodl hindcast configs/hindcast_sed.yaml",
                "geodl hindcast configs/hindcast_etas.yaml campaign.executor=ray",
                "geodl hindcast configs/hindcast_etas.yaml campaign.executor=slurm campaign.cluster=localslurm",
            ],
        ),
    }
    for verb, (job, summary, text, examples) in job_verbs.items():
        sub = verbs.add_parser(
            verb,
            help=summary,
            description=text + "\n\nexamples:\n" + "\n".join(f"  {e}" for e in examples),
            formatter_class=fmt,
        )
        sub.add_argument("config", type=Path, metavar="CONFIG.yaml")
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
        sub.add_argument("--cluster", metavar="PROFILE", help="submit to configs/clusters/PROFILE.yaml and wait")
        sub.set_defaults(handler=_cmd_evaluate if verb == "evaluate" else _cmd_job, job=job)
        if verb == "evaluate":
            csep = sub.add_argument_group("csep", "with `geodl evaluate csep`: CSEP tests of a gridded forecast")
            csep.add_argument("--forecast", type=Path, metavar="F", help="CSEP ASCII gridded forecast or forecast Zarr")
            csep.add_argument("--catalog", type=Path, metavar="C", help="catalog file or ingested catalog archive")
            csep.add_argument("--tests", default="N,L,CL,S,M", help="comma-separated tests (default N,L,CL,S,M)")
            csep.add_argument("--seed", type=int, default=None, help="seed of the simulated quantiles")
            csep.add_argument("--n-sim", type=int, default=1000, help="simulations per test (default 1000)")
            csep.add_argument("--plot", type=Path, metavar="DIR", help="write test-result and forecast-map PNGs here")
            csep.add_argument("--json", action="store_true", help="print the results as JSON")

    annotate = verbs.add_parser(
        "annotate",
        help="continuous phase picking over a waveform archive -> probability traces (Zarr), picks (CSV, QuakeML)",
        description="Slide a trained picker (the output folder of `geodl train configs/seismic_picker.yaml`, or a\n"
        "checkpoint in it) over every station and hour of a waveform archive with overlapping windows, stack the\n"
        "window outputs into continuous P/S/noise probability traces (Zarr, on the archive's time axis), and\n"
        "extract picks (threshold, minimum separation) to picks.csv and picks.xml (QuakeML, ObsPy reads it).\n"
        "Work goes in station x time blocks with a ledger: a killed run resumes with the missing blocks only.\n\n"
        "examples:\n"
        "  geodl annotate runs/rjob.zarr --model runs/seismic_picker\n"
        "  geodl annotate ARCHIVE --model CKPT stride=50 stacking=max threshold.P=0.5\n"
        "  geodl annotate ARCHIVE --model CKPT --cluster localslurm",
        formatter_class=fmt,
    )
    annotate.add_argument("archive", type=Path, metavar="ARCHIVE", help="waveform archive (geodl ingest waveforms)")
    annotate.add_argument("--model", type=Path, required=True, metavar="CHECKPOINT", help="picker run or checkpoint")
    annotate.add_argument("--output", type=Path, metavar="OUT", help="output folder (default: the config's)")
    annotate.add_argument("--config", type=Path, metavar="CONFIG.yaml", help="annotate config with more settings")
    annotate.add_argument("--cluster", metavar="PROFILE", help="submit to configs/clusters/PROFILE.yaml and wait")
    annotate.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. stride=50")
    annotate.set_defaults(handler=_cmd_annotate)

    status = verbs.add_parser(
        "status",
        help="show the state of every task of a submitted run (pending, running, done, failed, requeued)",
        description="Show every task of the run in folder RUN (what geodl submit printed), from one sacct call for\n"
        "Slurm runs, or from the process for local runs.\n\n"
        "examples:\n  geodl status runs/demo\n  geodl status runs/demo --json | jq .states",
        formatter_class=fmt,
    )
    status.add_argument("run", type=Path, metavar="RUN")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_cmd_status)
    return parser


def _is_override(text: str) -> bool:
    return "=" in text and not text.startswith("-")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geodl`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may follow options (`geodl submit JOB CONFIG --dry-run cluster.nodes=2`).
    if extra and isinstance(getattr(args, "overrides", None), list) and all(_is_override(e) for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler: Handler = args.handler
    try:
        return handler(args)
    except GeodlError as exc:
        print(f"geodl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        where = exc.filename or ""
        print(f"geodl: error: {where}: {exc.strerror}; check the path and its permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geodl: interrupted; nothing incomplete was left at the output path", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
