"""The import picture, pinned: which package may import which (STYLE.md, issue 24).

Every ``import`` in ``actors/`` and ``messages/`` is read with ``ast``, wherever it
stands: at the top, inside a function (a deferred import is still a dependency) or
under ``TYPE_CHECKING``. The rules:

- ``messages/`` is pure data: it imports nothing from ``actors``;
- the run store (``actors/store``) belongs to the engine: it imports only ``messages``
  (and the standard library and loguru);
- nothing outside ``actors/daemon`` imports ``actors.daemon``: the engine never
  reaches into the daemon that serves it (``python -m actors``, a launcher like
  ``bin/orchestrord``, is the one exception);
- no two modules import each other, directly or round a longer loop (type-only
  imports under ``TYPE_CHECKING`` excepted: they never run).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "messages")
STORE_MAY_IMPORT = ("messages", "loguru", "actors.store")
LAUNCHERS = ("actors.__main__",)  # python -m actors: the daemon


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module (or package) imported
    line: int
    runtime: bool  # False: only under ``if TYPE_CHECKING:``


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def resolve(name: str) -> str:
    """``name`` as the module it loads: itself if it is one of ours, else the nearest
    package of ours above it (``from actors.x import Name``), else as written."""
    candidate = name
    while candidate and candidate not in MODULES:
        candidate = candidate.rpartition(".")[0]
    return candidate or name


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def imports_of(module: str) -> Iterator[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        runtime = getattr(node, "lineno", 0) not in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, resolve(alias.name), node.lineno, runtime)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield Import(module, resolve(f"{base}.{alias.name}"), node.lineno, runtime)


ALL = [imp for module in sorted(MODULES) for imp in imports_of(module)]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def show(found: list[Import]) -> str:
    return "\n".join(f"{MODULES[i.module].relative_to(ROOT)}:{i.line}: {i.target}" for i in found)


def test_the_walker_sees_every_kind_of_import() -> None:
    """The rules below are only as good as this: top-level, from-, function-local and
    type-only imports are all seen (a walker that saw none would pass every rule)."""
    found = {(i.module, i.target) for i in ALL}
    assert ("actors.store.store", "actors.store.schema") in found  # from-import
    assert ("actors.orchestrator", "actors.lifecycle") in found
    local = [
        i
        for i in ALL
        if i.module == "actors.daemon.daemon" and within(i.target, "actors.daemon.http")
    ]
    assert local, "the daemon imports its HTTP door inside a function"
    assert any(not i.runtime for i in ALL), "some import is type-only"
    assert len(MODULES) > 50


def test_messages_import_nothing_from_actors() -> None:
    bad = [i for i in ALL if within(i.module, "messages") and within(i.target, "actors")]
    assert not bad, "messages/ is pure data:\n" + show(bad)


def test_the_run_store_imports_only_messages_and_loguru() -> None:
    mine = [i for i in ALL if within(i.module, "actors.store")]
    assert mine
    bad = [
        i
        for i in mine
        if i.target.partition(".")[0] not in sys.stdlib_module_names
        and not any(within(i.target, allowed) for allowed in STORE_MAY_IMPORT)
    ]
    assert not bad, "the run store belongs to the engine:\n" + show(bad)


def test_nothing_outside_the_daemon_imports_the_daemon() -> None:
    bad = [
        i
        for i in ALL
        if within(i.target, "actors.daemon")
        and not within(i.module, "actors.daemon")
        and i.module not in LAUNCHERS
    ]
    assert not bad, "the engine must not reach into the daemon:\n" + show(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    edges: dict[str, set[str]] = {}
    for i in ALL:
        if i.runtime and i.target in MODULES and i.target != i.module:
            edges.setdefault(i.module, set()).add(i.target)
    # A package's __init__ is run by importing any module in it: not a dependency of
    # its own modules on it, so edges into a package's __init__ from inside it are left out.
    for module, targets in edges.items():
        edges[module] = {
            t for t in targets if not (MODULES[t].name == "__init__.py" and within(module, t))
        }
    found = [c for c in cycles(edges) if within(c[0], package)]
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
