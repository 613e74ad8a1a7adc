"""The ``geodl`` console script: register every job with the library's registry, then run its command line.

This is the top of the import graph: it imports ``jobs.entries`` (which names every job) and ``geodl_hpc.cli``;
nothing in ``geodl_hpc`` imports it. ``python -m jobs.cli ARGS`` is ``geodl ARGS`` without the console script.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from geodl_hpc import cli
from jobs.entries import register_all

ENTRY_MODULE = "jobs.cli"  # `python -m` name of this module: what `geodl train --np N` starts on each rank


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geodl`` console script."""
    register_all()
    return cli.main(argv, entry_module=ENTRY_MODULE)


if __name__ == "__main__":
    sys.exit(main())
