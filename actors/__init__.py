"""The orchestrord runtime: actors, providers, configuration and the daemon.

Embedding::

    import actors
    with actors.start("config.toml") as orch:
        result = orch.ask("What is the capital of Australia?")
        print(result.answer)

The names below load on first use (PEP 562), so a light tool such as ``orchestrctl``
can import ``actors.daemon.client`` without starting to load the actor runtime.

A library is quiet: ``actors.*`` logs nothing (loguru) until the program embedding it
calls ``logger.enable("actors")``; the daemon and ``orchestrctl`` do.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from actors import origin

__orchestrord__ = True  # this package is orchestrord's (see actors.origin)

if TYPE_CHECKING:
    from actors.config import Config, load_config
    from actors.evaluation import evaluate
    from actors.orchestrator import VERSION, Orchestrator, start

__all__ = ["VERSION", "Config", "Orchestrator", "evaluate", "load_config", "start"]

_LAZY = {
    "VERSION": "actors.orchestrator",
    "Orchestrator": "actors.orchestrator",
    "start": "actors.orchestrator",
    "Config": "actors.config",
    "load_config": "actors.config",
    "evaluate": "actors.evaluation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'actors' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


class _QuietLoader(importlib.abc.Loader):
    """loguru's own loader, then ``logger.disable("actors")`` once loguru has loaded."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        module.logger.disable("actors")

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, resource readers
        return getattr(self.inner, name)


class _QuietWhenLoguruLoads(importlib.abc.MetaPathFinder):
    """Quiets ``actors`` as loguru is first imported (importing it here would cost
    ``orchestrctl`` 50 ms at start-up for nothing)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "loguru":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _quiet() -> None:
    loguru = sys.modules.get("loguru")
    if loguru is not None:
        loguru.logger.disable("actors")
    elif not any(isinstance(f, _QuietWhenLoguruLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietWhenLoguruLoads())


origin.check()  # a foreign `messages` (or `actors`) on the path: one clear line
_quiet()
