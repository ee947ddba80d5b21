"""The modules of runners/ import each other without a cycle: every import counts, also one inside
a function (a cycle through a deferred import still ties the two modules' code together)."""

from __future__ import annotations

import ast
from pathlib import Path

RUNNERS = Path(__file__).resolve().parent.parent / "runners"


def imports_of(path: Path) -> set[str]:
    """The runners modules `path` imports, by module name (runners.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "runners":
                found |= {f"runners.{alias.name}" for alias in node.names}
            elif node.module.startswith("runners."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("runners.")}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {f"runners.{path.stem}": path for path in RUNNERS.glob("*.py") if path.stem != "__init__"}
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (the first repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for child in sorted(graph[name]):
            if state.get(child) == "open":
                return [*path[path.index(child):], child] if child in path else [name, child]
            if child not in state:
                found = visit(child, [*path, child])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_runners_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert "runners.one_process" in graph["runners.passes"]  # a deferred import is seen
    assert find_cycle(graph) is None
