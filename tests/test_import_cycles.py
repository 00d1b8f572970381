"""No import cycles among mcbo's modules.

Every ``import`` of an mcbo module counts: at module level, inside functions (a lazy import that only
breaks a cycle is still a cycle) and under ``if TYPE_CHECKING:``. Only a script's
``if __name__ == "__main__":`` block is skipped: it runs as ``__main__``, never on import. An import of
``a.b.c`` is an edge to ``a.b.c`` (the packages above it are only run for their re-exports), and
``from a.b import c`` is an edge to ``a.b.c`` when ``c`` is a module, else to ``a.b``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mcbo

#: Edges of a cycle that only a change in a module owned elsewhere can break: edge -> the change.
#: The test fails when an entry no longer exists, so that it is removed with its fix.
PENDING_EDGES: dict[tuple[str, str], str] = {}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the in-package modules it imports, for every ``.py`` file of ``root/package``."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        tree.body = [node for node in tree.body if not _is_main_guard(node)]
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, is_package, node)
                edges.update(f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"'


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


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


def test_mcbo_has_no_import_cycles():
    graph = import_graph(Path(mcbo.__file__).resolve().parents[1], "mcbo")
    stale = [edge for edge in PENDING_EDGES if edge[1] not in graph.get(edge[0], set())]
    assert not stale, f"these pending edges are gone: remove them from PENDING_EDGES: {stale}"
    for source, target in PENDING_EDGES:
        graph[source] = graph[source] - {target}
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(
        " <-> ".join(c) + " (edges: " + ", ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c) + ")"
        for c in found)


def test_the_check_sees_lazy_and_type_checking_imports_but_not_script_guards(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n")
    (pkg / "c.py").write_text("from . import d\n")
    (pkg / "d.py").write_text("if __name__ == '__main__':\n    from pkg.c import main\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.d"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
