"""The codebase's shape (issue 15): no module of corpus/ over 400 lines, and no import cycle
among them at module level (imports inside functions are how a module defers a heavy or
optional dependency, and are not a cycle of loading)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "corpus"


def modules() -> dict[str, Path]:
    found = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = f
    return found


def module_imports(f: Path, known: dict[str, Path]) -> set[str]:
    """The corpus modules a file imports while it loads (not under `if TYPE_CHECKING`)."""
    deps = set()
    for node in ast.parse(f.read_text()).body:
        if isinstance(node, ast.Import):
            deps |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            deps |= {node.module} & set(known)
            deps |= {f"{node.module}.{a.name}" for a in node.names} & set(known)
    return deps


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                found.append(sorted([v, *comp]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_over_400_lines():
    long = {str(f.relative_to(ROOT)): n for f in PACKAGE.rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 400}
    assert not long, long


def test_no_import_cycle():
    known = modules()
    graph = {name: module_imports(f, known) - {name} for name, f in known.items()}
    assert len(graph) > 100 and any(graph.values())
    assert cycles(graph) == []
    # the finder finds one when there is one
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
