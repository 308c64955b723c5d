"""The orchestrord runtime: actors, providers, configuration and the daemon.

Embedding::

    import actors
    with actors.start("config.toml") as orch:
        result = orch.ask("What is the capital of Australia?")
        print(result.answer)

The names below load on first use (PEP 562), so a light tool such as ``orchestrctl``
can import ``actors.daemon.client`` without starting to load the actor runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
