"""`geodl verify ARCHIVE_OR_RUN`: read every chunk and ledger entry and report what is damaged."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geodl_hpc.cli.common import Verbs, add_verb, examples
from geodl_hpc.errors import ArchiveError


def _cmd_verify(args: argparse.Namespace) -> int:
    from geodl_hpc.archive.integrity import verify_ledgers, verify_zarr, zarr_roots

    path: Path = args.path
    if not path.exists():
        raise ArchiveError(f"{path}: no such archive or run folder; check the path")
    reports = [verify_zarr(root) for root in zarr_roots(path)]
    entries, ledger_damage = verify_ledgers(path)
    if not reports and not entries:
        raise ArchiveError(f"{path}: no Zarr store and no ledger found; give an archive (.zarr) or a run folder")
    damaged = [d for r in reports for d in r.damaged] + ledger_damage
    if args.json:
        doc = {
            "path": str(path),
            "stores": [
                {"path": r.path, "arrays": r.arrays, "chunks": r.chunks, "unchecked_arrays": r.unchecked_arrays}
                for r in reports
            ],
            "ledger_entries": entries,
            "damaged": damaged,
            "ok": not damaged,
        }
        print(json.dumps(doc, indent=2))
    else:
        for r in reports:
            unchecked = f", {len(r.unchecked_arrays)} without checksums (unchecked)" if r.unchecked_arrays else ""
            print(f"{r.path}: {r.arrays} array(s), {r.chunks} chunk(s) read{unchecked}")
        if entries:
            print(f"{entries} ledger entr{'y' if entries == 1 else 'ies'} read")
        for d in damaged:
            print(f"DAMAGED {d}")
        if not damaged:
            print("ok: nothing damaged")
    if damaged:
        raise ArchiveError(f"{path}: {len(damaged)} damaged chunk(s) or ledger entr(ies); first: {damaged[0]}")
    return 0


def add_verify(verbs: Verbs) -> None:
    """`geodl verify PATH`: every chunk's checksum and every ledger entry of an archive or run folder."""
    verify = add_verb(
        verbs,
        "verify",
        "check every chunk checksum and ledger entry of an archive or run folder; list what is damaged",
        "Read every chunk of every Zarr store at or under PATH and check its crc32c (arrays written before\n"
        "checksums existed are decoded in full and reported as unchecked), and every ledger entry of an\n"
        "unfinished run (each must parse, and the output chunks it marked done must be unchanged).\n"
        "Exit status 0 when nothing is damaged, 2 otherwise (one line per damaged chunk on stdout)."
        + examples(["geodl verify runs/demo/murchison.zarr", "geodl verify runs/infer-murchison --json"]),
        _cmd_verify,
    )
    verify.add_argument("path", type=Path, metavar="ARCHIVE_OR_RUN")
    verify.add_argument("--json", action="store_true", help="machine-readable report")
