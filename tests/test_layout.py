"""The arrows of docs/architecture.md, on the import graph read with ``ast`` (``tests/test_import_cycles.py``)."""

from __future__ import annotations

from tests.test_import_cycles import import_graph


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _edges(source: str, target: str) -> dict[str, list[str]]:
    """Modules under ``source`` that import modules under ``target`` (excluding ``target`` itself), and which."""
    graph, _ = import_graph()
    found = {
        module: sorted(t for t in imported if _within(t, target))
        for module, imported in graph.items()
        if _within(module, source) and not _within(module, target)
    }
    return {m: names for m, names in found.items() if names}


def test_the_library_never_imports_the_jobs() -> None:
    assert _edges("geodl_hpc", "jobs") == {}


def test_only_the_cli_imports_the_cli() -> None:
    assert _edges("geodl_hpc", "geodl_hpc.cli") == {}


def test_no_job_imports_another_job() -> None:
    """Each ``jobs/NAME.py`` imports only the library; a stage two jobs share lives in ``geodl_hpc``."""
    graph, _ = import_graph()
    found = {
        module: sorted(t for t in imported if _within(t, "jobs") and t not in ("jobs", module))
        for module, imported in graph.items()
        if _within(module, "jobs") and module not in ("jobs.cli", "jobs.entries")
    }
    assert {m: names for m, names in found.items() if names} == {}
