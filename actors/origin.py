"""Are the packages ``actors`` and ``messages`` orchestrord's own?

Both names also exist on PyPI. After ``pip install messages`` (or with a directory of that
name first on the path) Python would load that package instead, and the daemon would die
far from the cause (``No module named 'aiosmtplib'``). Each of our two packages says
``__orchestrord__ = True`` in its ``__init__.py``; :func:`check` reads, without importing
them, the ``__init__.py`` files that ``import actors`` and ``import messages`` would run.

Stdlib only: it runs first, while ``actors`` is being imported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

MARK = "__orchestrord__ = True"
PACKAGES = ("actors", "messages")
PROGRAMS = ("orchestrord", "orchestrctl")


def foreign(name: str) -> str | None:
    """Where the package ``name`` that ``import name`` loads lives, when it is not ours
    (None: ours, or not found at all, or not readable as source: nothing to say)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a half-imported module without a spec
        return None
    if spec is None:
        return None
    if spec.loader is None or spec.origin in (None, "namespace"):  # a bare directory
        return ", ".join(spec.submodule_search_locations or ()) or name
    get_source = getattr(spec.loader, "get_source", None)
    try:
        source = get_source(name) if get_source is not None else None
    except (ImportError, OSError):
        return None
    if source is None or MARK in source:
        return None
    return str(Path(spec.origin).parent) if spec.origin else name


def message(name: str, where: str) -> str:
    return (
        f"orchestrord: the package `{name}` at {where} is not orchestrord's (another "
        f"package of that name is installed or on the path); `pip uninstall {name}`, or "
        "install orchestrord in a virtual environment of its own"
    )


def running_program(argv0: str | None = None, orig_argv: list[str] | None = None) -> bool:
    """Whether this process is one of our programs (a console script, ``bin/``, or
    ``python -m actors…``) rather than a program embedding the library."""
    argv0 = (sys.argv[0] if sys.argv else "") if argv0 is None else argv0
    if Path(argv0).name in PROGRAMS:
        return True
    module = _dash_m(sys.orig_argv if orig_argv is None else orig_argv)
    return module is not None and module.split(".")[0] == "actors"


def _dash_m(argv: list[str]) -> str | None:
    """The module of the interpreter's ``-m`` (None: a script, ``-c`` or the REPL)."""
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-X", "-W"):  # an option with a value
            next(args, None)
        elif arg == "-m":
            return next(args, "")
        elif arg.startswith("-m"):
            return arg[2:]
        elif not arg.startswith("-") or arg.startswith("-c"):
            return None
    return None


def check() -> None:
    """Stops a program with one line and exit status 2 when ``actors`` or ``messages``
    is not ours; an embedding gets the same line as an ``ImportError``."""
    for name in PACKAGES:
        where = foreign(name)
        if where is None:
            continue
        if running_program():
            print(message(name, where), file=sys.stderr)
            raise SystemExit(2)
        raise ImportError(message(name, where), name=name)
