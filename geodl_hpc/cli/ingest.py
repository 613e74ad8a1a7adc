"""`geodl ingest raster|waveforms|catalog|murchison` and `geodl inspect`: source files into archives, and back out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from geodl_hpc.cli.common import Verbs, add_verb
from geodl_hpc.errors import GeodlError

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


def add_ingest(verbs: Verbs) -> None:
    """`geodl ingest KIND`: one sub-parser per kind of source."""
    ingest = add_verb(
        verbs,
        "ingest",
        "turn rasters, vectors, waveforms or catalogs into a geodl archive",
        "Ingest source files into a crash-safe, compressed geodl archive (Zarr v3 or Parquet).\n\n"
        "examples:\n  geodl ingest raster --help\n  geodl ingest murchison runs/murchison.zarr --res 250",
        None,
    )
    kinds = ingest.add_subparsers(dest="kind", metavar="KIND", required=True)
    for add_kind in (_add_raster, _add_waveforms, _add_catalog, _add_murchison):
        add_kind(kinds)


def _add_raster(kinds: Verbs) -> None:
    raster = add_verb(
        kinds,
        "raster",
        "GDAL rasters and vectors -> one raster stack on a common grid",
        "Stack GDAL rasters (GeoTIFF, .gtx, ...) and vector files (GeoJSON, shapefile, GeoPackage, point\n"
        "or segment CSV) as named float32 layers on one grid, with CRS, nodata (NaN) and per-layer statistics.\n"
        "Rasters are reprojected window by window, so files larger than memory work. Vectors become layers:\n"
        "points -> NAME_count, lines -> NAME_distance + NAME_density, polygons -> NAME_indicator + NAME_distance.\n"
        "The grid is --crs/--res/--bounds, or --like another archive, or else the first raster's own grid.\n\n"
        "examples:\n"
        "  geodl ingest raster dem.zarr rmnp-dem.tif\n"
        "  geodl ingest raster stack.zarr mag.tif grav.tif faults.geojson --crs 32750 --res 500 \\\n"
        "      --bounds 352000 6699000 683000 7102000\n"
        "  geodl ingest raster extra.zarr radiometrics.tif --like stack.zarr --resampling average",
        _cmd_ingest_raster,
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


def _add_waveforms(kinds: Verbs) -> None:
    waveforms = add_verb(
        kinds,
        "waveforms",
        "anything ObsPy reads -> (station, channel, time) archive",
        "Merge waveform files ObsPy can read (miniSEED, SAC, SEISAN, GSE2, ...) into one archive with\n"
        "one sampling rate, gaps masked, station metadata as coordinates and optional pick labels.\n\n"
        "examples:\n"
        "  geodl ingest waveforms day.zarr 2019/*.mseed --stations stations.xml\n"
        "  geodl ingest waveforms rjob.zarr rjob.z rjob.n rjob.e --sampling-rate 100 --picks picks.csv",
        _cmd_ingest_waveforms,
    )
    waveforms.add_argument("out", type=Path, metavar="OUT.zarr")
    waveforms.add_argument("sources", type=Path, nargs="+", metavar="SRC")
    waveforms.add_argument("--sampling-rate", type=float, help="resample every trace to this rate (Hz)")
    waveforms.add_argument("--picks", type=Path, help="CSV (station,phase,time) or QuakeML/Nordic picks")
    waveforms.add_argument("--stations", type=Path, help="StationXML or CSV with station coordinates")
    _add_storage(waveforms, 65536)


def _add_catalog(kinds: Verbs) -> None:
    catalog = add_verb(
        kinds,
        "catalog",
        "ComCat CSV, QuakeML or CSEP ASCII -> normalised catalog",
        "Normalise an earthquake catalog to time, latitude, longitude, depth_km, magnitude,\n"
        "magnitude_type, event_id, sorted by time. OUT ending in .parquet gives Parquet, else Zarr.\n\n"
        "examples:\n"
        "  geodl ingest catalog ridgecrest.parquet sample_comcat_catalog.csv\n"
        "  geodl ingest catalog sed.parquet catalog_sed.csv --depth-unit m\n"
        "  geodl ingest catalog events.zarr events.xml --format quakeml",
        _cmd_ingest_catalog,
    )
    catalog.add_argument("out", type=Path, metavar="OUT")
    catalog.add_argument("source", type=Path, metavar="SRC")
    catalog.add_argument("--format", default="auto", choices=["auto", "comcat", "quakeml", "csep", "csv"])
    catalog.add_argument("--depth-unit", default="auto", choices=["auto", "km", "m"])
    catalog.add_argument("--overwrite", action="store_true", help="replace OUT once the new catalog is complete")


def _add_murchison(kinds: Verbs) -> None:
    murchison = add_verb(
        kinds,
        "murchison",
        "the built-in real GSWA Murchison gold data -> raster stack",
        "Rasterise the built-in Murchison data (255 gold deposits, 3,252 faults, greenstone; GSWA,\n"
        "Watkins and Hickman 1990) onto an EPSG:32750 grid: greenstone, dist_greenstone, dist_fault,\n"
        "fault_density and the deposits label layer.\n\n"
        "examples:\n  geodl ingest murchison runs/murchison.zarr\n  geodl ingest murchison fine.zarr --res 250",
        _cmd_ingest_murchison,
    )
    murchison.add_argument("out", type=Path, metavar="OUT.zarr")
    murchison.add_argument("--res", type=float, default=500.0, help="pixel size in metres (default 500)")
    _add_storage(murchison, 256)


def add_inspect(verbs: Verbs) -> None:
    """`geodl inspect PATH`."""
    inspect = add_verb(
        verbs,
        "inspect",
        "show what an archive holds (dims, chunks, codecs, CRS, statistics, provenance)",
        "Describe a geodl archive. --json prints the documented contract (docs/archives.md): kind,\n"
        "complete, variables, dims, shape, chunks, codecs, dtype, crs_epsg, crs_wkt, bounds, resolution,\n"
        "sampling_rate, n_events, statistics, provenance.\n\n"
        "examples:\n  geodl inspect runs/demo/murchison.zarr --plot layers.png\n"
        "  geodl inspect comcat.parquet --json | jq .n_events",
        _cmd_inspect,
    )
    inspect.add_argument("path", type=Path, metavar="PATH")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--plot", type=Path, metavar="PNG", help="also write a quick-look PNG (rasters, waveforms)")
