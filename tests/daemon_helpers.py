"""Real daemon processes for tests, on short /tmp socket paths.

Readiness comes from the daemon itself: each test daemon gets a ``NOTIFY_SOCKET`` and
the helper waits for its ``READY=1`` (sd_notify), so no test sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from helpers import WAIT

ROOT = Path(__file__).resolve().parent.parent


def toml_value(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers, booleans and arrays are valid TOML


def render_toml(config: dict[str, Any]) -> str:
    lines = []
    for section in ("daemon", "pipeline", "supervision"):
        if section in config:
            lines.append(f"[{section}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in config[section].items()]
    for model in config["models"]:
        lines.append("[[models]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in model.items()]
    return "\n".join(lines) + "\n"


class DaemonProcess:
    """``bin/orchestrord`` in a subprocess; ``start()`` returns once it said READY=1."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
        self.socket_path = str(self.dir / "run" / "o.sock")
        config = {**config, "daemon": {"socket": self.socket_path,
                                       "state_dir": str(self.dir / "state"),
                                       **config.get("daemon", {})}}  # fmt: skip
        self.config_path = self.dir / "config.toml"
        self.config_path.write_text(render_toml(config))
        self.env = {**os.environ, **(env or {})}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = self.dir / "stderr.log"

    def spawn(self, notify: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in self.env.items() if k != "NOTIFY_SOCKET"}
        if notify:
            env["NOTIFY_SOCKET"] = notify
        env["PYTHONPATH"] = str(ROOT)
        with self.stderr_path.open("ab") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "actors.daemon", "--config", str(self.config_path),
                 *self.args],
                env=env, stdout=subprocess.PIPE, stderr=err, cwd=self.dir,
            )  # fmt: skip

    def start(self) -> DaemonProcess:
        notify_path = str(self.dir / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(notify_path)
            notify.settimeout(WAIT)
            self.proc = self.spawn(notify_path)
            try:
                message = notify.recv(256)
            except TimeoutError:
                raise AssertionError(f"daemon never got ready:\n{self.stderr()}") from None
        os.unlink(notify_path)
        assert message == b"READY=1", message
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def connect(self) -> RawClient:
        return RawClient(self.socket_path)

    def rpc(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.connect() as client:
            return client.request(method, params)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=WAIT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


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

    def send(self, method: str, params: dict[str, Any] | None = None,
             request_id: Any = "auto") -> Any:  # fmt: skip
        if request_id == "auto":
            self.next_id += 1
            request_id = self.next_id
        line = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            line["params"] = params
        self.send_raw(json.dumps(line).encode() + b"\n")
        return request_id

    def read(self) -> dict[str, Any] | None:
        raw = self.file.readline()
        return json.loads(raw) if raw else None

    def response(self, request_id: Any) -> dict[str, Any]:
        """The response to ``request_id`` (notifications and other responses skipped)."""
        while True:
            message = self.read()
            assert message is not None, "connection closed before the response"
            if message.get("id") == request_id and "method" not in message:
                return message

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.response(self.send(method, params))
