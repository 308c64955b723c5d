"""uvicorn on the daemon's own loop, with a deadline for each request's headers.

uvicorn's h11 protocol times out only an idle kept-alive connection: a client that
opens a connection and sends nothing, or trickles its headers a byte at a time, holds it
for ever. ``Protocol`` gives every request ``[http] header_timeout_s`` from the
connection (or the end of the previous response) to its complete headers, then closes
the connection. The body has its own deadline (``body.read_json``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from actors.daemon.listen import ListenError


class Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    header_timeout_s: float = 10.0  # set per server by ``protocol_for``

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]  # uvicorn's annotation
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self.loop.call_later(self.header_timeout_s, self._headers_due, self.cycle)

    def _headers_due(self, cycle: Any) -> None:
        """No new request began since the deadline was armed: drop the connection."""
        if self.cycle is cycle and not self.transport.is_closing():
            self.transport.close()


def protocol_for(header_timeout_s: float) -> type[Protocol]:
    return type("Protocol", (Protocol,), {"header_timeout_s": header_timeout_s})


class Server(uvicorn.Server):
    """uvicorn on the daemon's loop: the daemon owns the signals (SIGTERM drains)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()  # set once it listens: start() waits on it, no polling

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, listen: str) -> socket.socket:
    """A bound socket for ``listen``, or a ``ListenError`` saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ListenError(f"cannot listen on {listen}: {exc}") from None
    sock.set_inheritable(True)
    return sock
