"""No import cycle among the modules of `conveyor.api`.

Every import statement counts, wherever it stands: an import moved into a function to get
past a cycle is still a cycle between the two modules' responsibilities."""

from __future__ import annotations

import ast
from pathlib import Path

import conveyor.api

ROOT = "conveyor.api"
API_DIR = Path(conveyor.api.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(API_DIR).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((ROOT, *parts))


def api_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(API_DIR.rglob("*.py"))}


def imported(tree: ast.AST, known: set[str]) -> set[str]:
    """The `conveyor.api` modules that `tree` imports (a name imported from a package
    counts as its submodule when there is one)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known:
                found.add(node.module)
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = api_modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = imported(ast.parse(path.read_text(), str(path)), known)
        # A package's own __init__ is loaded before its submodules anyway: not an edge.
        graph[name] = {m for m in edges if m != name and not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that ends where it starts, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        on_path = [start]
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                on_path.pop()
                done.add(node)
                continue
            nxt = todo.pop()
            if nxt in on_path:
                return [*on_path[on_path.index(nxt) :], nxt]
            if nxt not in done:
                stack.append((nxt, sorted(graph.get(nxt, ()))))
                on_path.append(nxt)
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_the_documents_modules() -> None:
    graph = import_graph()
    assert "conveyor.api.openapi_parts" in graph["conveyor.api.openapi_queue_actions"]
    assert "conveyor.api.openapi_queue_actions" in graph["conveyor.api.openapi"]


def test_no_import_cycle_among_the_api_modules() -> None:
    assert find_cycle(import_graph()) is None
