"""The orchestrord runtime: actors, providers, configuration and the daemon.

Embedding::

    import actors
    with actors.start("config.toml") as orch:
        result = orch.ask("What is the capital of Australia?")
        print(result.answer)
"""

from actors.config import Config, load_config
from actors.orchestrator import VERSION, Orchestrator, start

__all__ = ["VERSION", "Config", "Orchestrator", "load_config", "start"]
