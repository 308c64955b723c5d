"""One JSON-RPC connection to the daemon's socket, as its clients (``orchestrctl`` and its
``eval`` command) speak it, and the client's exit codes.

A leaf: it imports nothing of the client, so every command module can import it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any

from actors.daemon.peercred import peer_uid
from messages.errors import InvalidParams, MethodNotFound, ParseError, ProtocolError

HOW_TO_START = "start it with `make run` (or `bin/orchestrord`) and try again"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# The request itself was wrong: a usage error, not a failed job.
USAGE_CODES = frozenset(
    cls.rpc_code for cls in (ParseError, ProtocolError, MethodNotFound, InvalidParams)
)


class Unreachable(Exception):
    """No daemon answers at the socket (or it went away mid-call)."""


class Untrusted(Unreachable):
    """The socket is served by another user: treated as no daemon at all."""


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "error"))
        self.error = error

    @property
    def exit_code(self) -> int:
        return EXIT_USAGE if self.error.get("code") in USAGE_CODES else EXIT_FAILED


class Client:
    """One connection; ``call`` sends a request and returns its result, passing any
    ``event`` notifications for it to ``on_event`` on the way."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise Unreachable(f"cannot reach orchestrord at {path} ({exc.strerror})") from None
        owner = peer_uid(self.sock)
        if owner != os.getuid():  # never send a prompt to a socket another user serves
            self.sock.close()
            raise Untrusted(
                f"the socket {path} is served by uid {owner}, not by you (uid {os.getuid()}); "
                "refusing to send anything to it"
            )
        self.file = self.sock.makefile("rb")
        self._next_id = 0

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> Any:
        """The result of ``method``; ``RpcError`` for an error response, ``Unreachable``
        when the daemon goes away before answering."""
        self._next_id += 1
        request_id = self._next_id
        line = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        try:
            self.sock.sendall(json.dumps(line).encode() + b"\n")
            while True:
                message = self._read()
                if message.get("method") == "event":
                    if on_event is not None and message["params"].get("id") == request_id:
                        on_event(message["params"])
                    continue
                if message.get("id") != request_id:
                    continue
                if "error" in message:
                    raise RpcError(message["error"])
                return message["result"]
        except TimeoutError:
            timeout = self.sock.gettimeout()
            raise Unreachable(f"orchestrord at {self.path} did not answer in {timeout} s") from None
        except ConnectionError as exc:  # reset, broken pipe: the daemon went away
            raise Unreachable(f"orchestrord at {self.path} went away ({exc})") from None

    def _read(self) -> dict[str, Any]:
        raw = self.file.readline()
        if not raw.endswith(b"\n"):  # end of stream, or a line cut off by a dying daemon
            raise Unreachable(f"orchestrord at {self.path} closed the connection")
        message: dict[str, Any] = json.loads(raw)
        return message

    def close(self) -> None:
        self.file.close()
        self.sock.close()
