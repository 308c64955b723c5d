"""Real daemon processes for tests (the same helpers the benchmarks use), plus a raw
blocking JSON-RPC client for sending bad input byte by byte."""

from __future__ import annotations

import json
import socket
from typing import Any

from helpers import WAIT

from bench.procs import ROOT, DaemonProcess

__all__ = ["ROOT", "DaemonProcess", "RawClient", "connect", "rpc"]


def connect(daemon: DaemonProcess) -> RawClient:
    return RawClient(daemon.socket_path)


def rpc(daemon: DaemonProcess, method: str, params: dict[str, Any] | None = None) -> dict:
    with connect(daemon) as client:
        return client.request(method, params)


class RawClient:
    """A raw JSON-RPC connection: send lines, read lines, every read bounded by WAIT."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next_id = 0

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self.next_id += 1
        line: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            line["params"] = params
        self.send_raw(json.dumps(line).encode() + b"\n")
        return self.next_id

    def read(self) -> dict[str, Any] | None:
        raw = self.file.readline()
        return json.loads(raw) if raw else None

    def response(self, request_id: int) -> dict[str, Any]:
        """The response to ``request_id`` (notifications and other responses skipped)."""
        while True:
            message = self.read()
            assert message is not None, "connection closed before the response"
            if message.get("id") == request_id and "method" not in message:
                return message

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.response(self.send(method, params))
