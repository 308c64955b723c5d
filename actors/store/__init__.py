"""The run store: every job in ``runs.sqlite3`` (see ``actors.store.store``).

Part of the engine, not of the daemon: an embedded orchestrator with ``[daemon]
state_dir`` records to it too. It imports only ``messages`` and loguru.
"""

from actors.store.schema import StoreUnreadable
from actors.store.store import RunStore, quality_samples

__all__ = ["RunStore", "StoreUnreadable", "quality_samples"]
