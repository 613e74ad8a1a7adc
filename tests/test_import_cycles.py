"""No import circles among the modules of ``geodl_hpc`` and ``jobs``, found by reading the sources with ``ast``.

Module-level imports count (also those under ``if TYPE_CHECKING:`` and ``try:``). An import inside a function
counts as well, unless a comment on its line or the line above says ``import cycle: WHY``: a lazy import may
close a circle only where it says why. Importing ``a.b.c`` runs the ``__init__`` of ``a`` and ``a.b`` too, but
only the named module is an edge here, so a package ``__init__`` that re-exports its modules is no circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("geodl_hpc", "jobs")
EXCUSE = "import cycle:"

Import = ast.Import | ast.ImportFrom


def _modules() -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its ``__init__``)."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(tree: ast.Module, lines: list[str]) -> Iterator[tuple[Import, bool]]:
    """Each import statement of a module and whether it counts (module level, or lazy without an excuse)."""
    lazy: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            lazy.update(id(n) for n in ast.walk(node) if isinstance(n, Import))
    for node in ast.walk(tree):
        if isinstance(node, Import):
            nearby = " ".join(lines[max(node.lineno - 2, 0) : node.end_lineno or node.lineno])
            yield node, id(node) not in lazy or EXCUSE not in nearby


def _targets(node: Import, module: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    """The modules of the packages that one import statement names."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    out = set()
    for alias in node.names:
        name = f"{base}.{alias.name}"
        if name in modules:
            out.add(name)
        elif base in modules:
            out.add(base)
    return out


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], int]]:
    """Module -> the modules it imports (counted imports only), and the line of each edge."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], int] = {}
    for module, path in modules.items():
        text = path.read_text()
        graph[module] = set()
        for node, counts in _imports(ast.parse(text), text.splitlines()):
            if not counts:
                continue
            for target in _targets(node, module, path.name == "__init__.py", modules) - {module}:
                graph[module].add(target)
                where.setdefault((module, target), node.lineno)
    return graph, where


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_finder_sees_a_circle_through_a_lazy_import() -> None:
    tree = ast.parse("import os\n\ndef f():\n    from geodl_hpc import b\n")
    assert [counts for _, counts in _imports(tree, [])] == [True, True]
    excused = "def f():\n    # import cycle: b needs a\n    from geodl_hpc import b\n"
    assert [counts for _, counts in _imports(ast.parse(excused), excused.splitlines())] == [False]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    graph, where = import_graph()
    assert "geodl_hpc.forecasting.hindcast_plots" in graph and "jobs.entries" in graph  # the finder sees the tree
    report = []
    for component in cycles(graph):
        members = set(component)
        edges = [f"{a} -> {b} (line {where[(a, b)]})" for a in component for b in sorted(graph[a] & members)]
        report.append("; ".join(edges))
    assert not report, "import circles (move the shared part down a step, or excuse a lazy import):\n" + "\n".join(
        report
    )
