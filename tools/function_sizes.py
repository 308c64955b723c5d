"""How big are the functions and modules? (stdlib only; issue 24's size rules)

    python tools/function_sizes.py [PATH ...]        default: actors messages

Every ``def`` and ``async def`` (methods and nested functions included) is measured
with ``ast`` from its ``def`` line to its last line, docstring and comments inside
included, decorators not. Prints the count, the median and the largest function, every
function over ``--max-function`` lines and every module over ``--max-module`` lines.
Exit 0 when nothing is over, 1 otherwise (a check a CI step or a reviewer can run).
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Function:
    path: Path
    name: str  # qualified: Class.method, outer.inner
    line: int
    lines: int


def functions(path: Path) -> Iterator[Function]:
    """Every function defined in ``path``, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def visit(node: ast.AST, prefix: str) -> Iterator[Function]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                end = child.end_lineno or child.lineno
                yield Function(path, name, child.lineno, end - child.lineno + 1)
                yield from visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, prefix + child.name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def python_files(targets: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for target in targets:
        path = Path(target)
        if not path.is_absolute():
            path = ROOT / path
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def report(files: list[Path], max_function: int, max_module: int) -> int:
    """Print the measures; the number of functions and modules over the limits."""
    found = [f for path in files for f in functions(path)]
    if not found:
        print("no functions found")
        return 0
    sizes = [f.lines for f in found]
    largest = max(found, key=lambda f: f.lines)
    print(f"{len(files)} modules, {len(found)} functions")
    median, mean = statistics.median(sizes), statistics.mean(sizes)
    print(f"median function: {median:g} lines (mean {mean:.1f})")
    print(f"largest: {largest.lines} lines, {shown(largest.path)}:{largest.line} {largest.name}")
    long = sorted((f for f in found if f.lines > max_function), key=lambda f: -f.lines)
    print(f"functions over {max_function} lines: {len(long)}")
    for f in long:
        print(f"  {f.lines:5d}  {shown(f.path)}:{f.line} {f.name}")
    big = [(len(p.read_text(encoding="utf-8").splitlines()), p) for p in files]
    big = sorted(((n, p) for n, p in big if n > max_module), reverse=True)
    print(f"modules over {max_module} lines: {len(big)}")
    for n, p in big:
        print(f"  {n:5d}  {shown(p)}")
    return len(long) + len(big)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["actors", "messages"])
    parser.add_argument("--max-function", type=int, default=60, metavar="LINES")
    parser.add_argument("--max-module", type=int, default=450, metavar="LINES")
    args = parser.parse_args(argv)
    over = report(python_files(args.paths), args.max_function, args.max_module)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
