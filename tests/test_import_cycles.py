"""No import cycle hides behind a function-local import in the client and the evaluation:
every ``import`` of the modules below, at any depth of the file, is an edge."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCOPES = ("actors/evaluation", "actors/daemon/client.py", "actors/daemon/evalcmd.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Every one of ``modules`` that ``path`` imports, from anywhere in the file
    (``from package import module`` is an edge to the module, not to the package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found & modules


def graph() -> dict[str, set[str]]:
    files = []
    for scope in SCOPES:
        target = ROOT / scope
        files += sorted(target.glob("*.py")) if target.is_dir() else [target]
    files.append(ROOT / "actors/daemon/connection.py")
    names = {module_name(f): f for f in files}
    return {name: imports(path, set(names)) - {name} for name, path in names.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` (None: there is none)."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_client_and_the_evaluation_have_no_import_cycle() -> None:
    edges = graph()
    assert "actors.daemon.evalcmd" in edges["actors.daemon.client"]  # the graph is real
    assert "actors.evaluation.answers" in edges["actors.evaluation.score"]
    assert cycle(edges) is None
