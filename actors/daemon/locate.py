"""Where ``orchestrctl`` finds the daemon's socket: the places the daemon binds it, in
the same order (``--socket``, ``$ORCHESTRORD_SOCKET``, the config file's ``[daemon]
socket``, the default), with ``.env`` read as the daemon reads it.

Its own module so that every command (``ask``, ``mcp``, ``console``) can find the socket
without importing the command line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from actors.config import default_socket_path
from actors.daemon.defaults import config_path


def _dotenv(directory: Path = Path(".")) -> dict[str, str]:
    from dotenv import dotenv_values  # deferred: --socket needs no .env (20 ms at start-up)

    path = directory / ".env"
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}


def socket_path(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``--socket``, else ``$ORCHESTRORD_SOCKET``, else the config file's ``[daemon]
    socket``, else the default: the same places, in the same order, as the daemon."""
    if flag:
        return flag
    env = {**_dotenv(), **environ}  # the real environment wins
    if env.get("ORCHESTRORD_SOCKET"):
        return env["ORCHESTRORD_SOCKET"]
    config = config_path(None, env)  # where the daemon looks (none: the default socket)
    try:
        data = tomllib.loads(config.read_text()) if config is not None else {}
        configured = data.get("daemon", {}).get("socket")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        configured = None
    if isinstance(configured, str) and configured:
        return str(Path(configured).expanduser())
    return default_socket_path(env)
