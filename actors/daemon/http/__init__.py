"""The OpenAI-compatible front door (CONTRACT §9 and §13): uvicorn and starlette on the
daemon's own asyncio loop, so any OpenAI client talks to orchestrord unchanged.

- ``app``: ``FrontDoor``, its routes and the other doors' (``responses``, ``anthropic``)
- ``core``: Chat Completions as dicts (``complete``, ``chunks``), which every door calls
- ``chat`` and ``fields``: a request checked field by field and made a job's ``ask``
- ``auth``, ``body``, ``errors``, ``sse``, ``serving``: keys, bodies, OpenAI's error
  bodies, server-sent events, uvicorn with header deadlines
- ``models``: ``/v1/models`` with capabilities and evaluation figures
- ``light``: housekeeping prompts routed to ``[http] light_model``

``FrontDoor`` is imported on first use: ``orchestrctl http-key`` reads only the key file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.daemon.http.auth import KEY_FILE, read_key_file

if TYPE_CHECKING:
    from actors.daemon.http.app import FrontDoor

__all__ = ["KEY_FILE", "FrontDoor", "read_key_file"]


def __getattr__(name: str) -> Any:
    if name == "FrontDoor":  # starlette and uvicorn: only a daemon with [http] pays
        from actors.daemon.http.app import FrontDoor

        return FrontDoor
    raise AttributeError(name)
