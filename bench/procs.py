"""Processes the benchmarks (and the daemon tests) run: the daemon and the bench server.

The daemon is waited for through ``NOTIFY_SOCKET`` (its sd_notify ``READY=1``), the
bench server by the port line it prints: nothing sleeps to find out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0


def render_toml(config: dict[str, Any]) -> str:
    """A config dict (shaped like the TOML file) as TOML."""
    import tomli_w  # a test and bench dependency only

    return tomli_w.dumps(config)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.pop("NOTIFY_SOCKET", None)
    return env


class DaemonProcess:
    """``orchestrord`` in a subprocess on a short /tmp socket path."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
        self.socket_path = str(self.dir / "run" / "o.sock")
        daemon = {
            "socket": self.socket_path,
            "state_dir": str(self.dir / "state"),
            **config.get("daemon", {}),
        }
        self.config_path = self.dir / "config.toml"
        self.config_path.write_text(render_toml({**config, "daemon": daemon}))
        self.env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = self.dir / "stderr.log"

    def spawn(self, notify: str | None = None) -> subprocess.Popen[bytes]:
        env = child_env(self.env)
        if notify:
            env["NOTIFY_SOCKET"] = notify
        argv = [
            sys.executable,
            "-m",
            "actors.daemon",
            "--config",
            str(self.config_path),
            *self.args,
        ]
        with self.stderr_path.open("ab") as err:
            return subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=self.dir
            )

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

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

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


class BenchServerProcess:
    """``python -m bench.server`` in a subprocess; ``stats()`` and ``reset()`` over HTTP."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        rpm: float | None = None,
        burst: float = 2.0,
        tpm: float | None = None,
        model_latency_ms: dict[str, float] | None = None,
        token_ms: float = 0.0,
    ) -> None:
        argv = [
            sys.executable,
            "-m",
            "bench.server",
            "--latency-ms",
            str(latency_ms),
            "--burst",
            str(burst),
        ]
        if rpm:
            argv += ["--rpm", str(rpm)]
        if tpm:
            argv += ["--tpm", str(tpm)]
        if token_ms:
            argv += ["--token-ms", str(token_ms)]
        for model, ms in (model_latency_ms or {}).items():
            argv += ["--model-latency", f"{model}={ms}"]
        self.proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()  # "listening on PORT"
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self.port = int(line.split()[-1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _request(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=WAIT) as response:
            return json.load(response)

    def stats(self) -> list[tuple[float, str, int]]:
        return [tuple(c) for c in self._request("GET", "/stats")["calls"]]  # type: ignore[misc]

    def reset(self) -> None:
        self._request("POST", "/reset")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


def _free_port(*, cluster_bus: bool = False) -> int:
    """A free loopback port; with ``cluster_bus``, one whose cluster bus port (+10000)
    exists and is free too (a Redis Cluster node listens on both)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not cluster_bus:
            return port
        if port + 10000 <= 65535:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisProcess:
    """A real ``redis-server`` on a free loopback port, no persistence; ``stop()`` and
    ``start()`` again on the same port (a Redis that goes away and comes back)."""

    def __init__(
        self, *args: str, conf: str | None = None, ready: str = "Ready to accept connections"
    ) -> None:
        path = shutil.which("redis-server")
        if path is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.path = path
        self.args = args  # e.g. --requirepass, --cluster-enabled yes, --sentinel
        self.conf = conf  # a config file first on the command line (a sentinel needs one)
        self.ready = ready  # the log line that says it serves
        self.port = _free_port(cluster_bus="--cluster-enabled" in args)
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        argv = [self.path, *([self.conf] if self.conf else []), "--port", str(self.port)]
        argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        argv += self.args
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # its own "ready" line, not a sleep
            if self.ready in line:
                # Keep reading its log, so that a full pipe can never block it.
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                return self
        raise RuntimeError(f"redis-server did not start (exit {self.proc.wait(WAIT)})")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SocketClient:
    """An asyncio JSON-RPC connection to the daemon: many requests in flight, by id."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # a job's stream events as they arrive, with time.perf_counter() at arrival
        self.on_event: Callable[[dict[str, Any], float], None] = lambda params, at: None
        self.next_id = 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.pump = asyncio.create_task(self._pump())

    @classmethod
    async def connect(cls, path: str) -> SocketClient:
        reader, writer = await asyncio.open_unix_connection(path, limit=64 * 1024 * 1024)
        return cls(reader, writer)

    async def _pump(self) -> None:
        while line := await self.reader.readline():
            message = json.loads(line)
            if message.get("method") == "event":
                self.on_event(message["params"], time.perf_counter())
                continue
            future = self.waiting.pop(message.get("id"), None) if "id" in message else None
            if future is not None and not future.done():
                future.set_result(message)
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the daemon closed the connection"))

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = future
        line = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        self.writer.write(json.dumps(line).encode() + b"\n")
        return await future

    async def close(self) -> None:
        self.writer.close()
        self.pump.cancel()
