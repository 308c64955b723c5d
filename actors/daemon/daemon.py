"""``orchestrord``: the daemon's ``main``.

Loads ``.env`` and the configuration, starts the actors, serves the socket in the
foreground. The socket is born 0600 (umask before bind) inside a 0700 directory; a
stale socket is replaced only after a refused connect, and a live daemon is never
clobbered. On SIGTERM/SIGINT (or ``shutdown``) it stops accepting, drains in-flight
jobs within ``drain_s``, answers the rest with -32005 and their partial results,
stops the actors and the local model, removes the socket and exits 0; a second
signal exits at once. Shaped after uvicorn's ``server.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import shtab
from loguru import logger

import actors
from actors import outliers, weights
from actors.config import Config, with_overrides
from actors.daemon.defaults import completion_help, describe, load_dotenv_file, resolve_config
from actors.daemon.listen import ListenError
from actors.daemon.logs import setup_logging
from actors.daemon.server import SocketServer
from actors.orchestrator import VERSION
from actors.providers import unusable_models
from actors.redisconn import describe as describe_limits
from actors.store import RunStore, StoreUnreadable
from messages.errors import ConfigError

MAX_SOCKET_PATH = 107
CLOSE_MIN_S = 1.0  # after the drain, the last answers still get this long to go out
PRUNE_EVERY_S = 6 * 3600  # how often retention runs while the daemon is up


class SocketInUse(Exception):
    """Another live daemon serves this path, or the path cannot be a socket."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="orchestrord",
        description="Serve orchestrord on a Unix socket: several LLMs answer each prompt, "
        "critique each other anonymously, and one writes the final answer. Runs in the "
        "foreground and logs to stderr; ask it with orchestrctl.",
        epilog="Configuration: --config, else $ORCHESTRORD_CONFIG, else "
        "~/.config/orchestrord/config.toml, else every provider whose key is set "
        "(OPENAI_API_KEY, GEMINI_API_KEY, LLAMA_BASE_URL), else the embedded local model. "
        "A .env file here is read without overriding the environment. SIGTERM drains "
        "running jobs, a second signal exits at once.",
    )
    parser.add_argument("--config", metavar="PATH", help="the TOML configuration (see below)")
    parser.add_argument(
        "--socket", metavar="PATH", help="serve here (else $ORCHESTRORD_SOCKET, else the config's)"
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("ORCHESTRORD_LOG_LEVEL", "INFO"),
        choices=["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
    )
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    # (--log-level's default comes from $ORCHESTRORD_LOG_LEVEL, else INFO)
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate, print the effective models and pipeline, exit",
    )
    parser.add_argument("--version", action="version", version=f"orchestrord {VERSION}")
    shtab.add_argument_to(parser, ["--print-completion"], help=completion_help())
    return parser.parse_args(argv)


def effective_config(args: argparse.Namespace) -> Config:
    config = resolve_config(args.config, os.environ)
    return with_overrides(
        config,
        socket=args.socket or os.environ.get("ORCHESTRORD_SOCKET"),
        state_dir=os.environ.get("ORCHESTRORD_STATE_DIR"),
    )


def prepare_socket_path(path: Path) -> None:
    """Make the 0700 directory; replace a stale socket; refuse a live one."""
    if len(os.fsencode(str(path))) > MAX_SOCKET_PATH:
        raise SocketInUse(f"socket path is longer than {MAX_SOCKET_PATH} bytes: {path}")
    if not os.path.lexists(path.parent):
        path.parent.mkdir(parents=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # in case umask was stricter than needed for us
    check_private_dir(path.parent)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SocketInUse(f"{path} exists and is not a socket; not touching it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            logger.info("replacing the stale socket {}", path)
            path.unlink()
            return
        except OSError as exc:
            if exc.errno in (errno.ENOENT,):
                return
            raise SocketInUse(f"cannot probe {path}: {exc}") from exc
    raise SocketInUse(f"another orchestrord is serving on {path}")


def check_private_dir(directory: Path) -> None:
    """Refuse a socket directory that another user could control: one that is a symlink
    or not a directory, belongs to someone else (who created it first, to squat the
    socket and read every prompt), or that others may write to (to swap the socket)."""
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise SocketInUse(f"{directory} is not a directory (a symlink?); refusing to use it")
    if info.st_uid != os.getuid():
        raise SocketInUse(
            f"{directory} belongs to uid {info.st_uid}, not to this user ({os.getuid()}): "
            "someone else may be squatting it; remove it or choose another --socket"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SocketInUse(
            f"{directory} is writable by others (mode {stat.S_IMODE(info.st_mode):o}); "
            "refusing to serve from it: chmod 700 it or choose another --socket"
        )


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) we are ready, if it asked."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(message.encode(), address)


class Daemon:
    def __init__(self, config: Config, reload: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.reload = reload  # reads the configuration again (SIGHUP)
        self.orch: Any = None
        self.socket_path = Path(config.daemon.socket).expanduser()
        self.stop_requested = asyncio.Event()

    def request_stop(self) -> None:
        if self.stop_requested.is_set():
            return
        logger.info("stopping: no new jobs; draining")
        self.stop_requested.set()

    def _on_signal(self, signum: int) -> None:
        if self.stop_requested.is_set():
            logger.warning("second {}: exiting now", signal.Signals(signum).name)
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
            os._exit(1)
        logger.info("received {}", signal.Signals(signum).name)
        self.request_stop()

    async def _retain(self, store: RunStore) -> None:
        """Forget jobs older than ``[daemon] retain_days`` now and every few hours."""
        days = self.config.daemon.retain_days
        while days > 0:
            try:
                gone = await asyncio.wrap_future(store.prune(time.time() - days * 86400))
            except Exception:  # the store says why in its own log line; try again later
                gone = 0
            if gone:
                logger.info("run store: forgot {} job(s) older than {:g} days", gone, days)
            await asyncio.sleep(PRUNE_EVERY_S)  # the daemon's own loop: no actor waits

    def _on_reload(self) -> None:
        """SIGHUP: templates and the default pipeline from the configuration again, for the
        next jobs. A configuration that does not load, or that changes anything else, is
        refused with one log line and the running one stays."""
        if self.reload is None or self.orch is None:
            return
        try:
            config = self.reload()
            self.orch.reconfigure(config)
        except ConfigError as exc:
            logger.error("reload refused, keeping the running configuration: {}", exc)
            return
        self.config = config
        logger.info("reloaded [templates], [pipeline] and [pipelines] from {}", config.source)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        prepare_socket_path(self.socket_path)
        state = Path(self.config.daemon.state_dir).expanduser()
        store = RunStore(state / "runs.sqlite3")
        orch = self.orch = actors.start(self.config, store=store)  # the server records jobs
        try:  # whatever happens from here on, the actors (non-daemon threads) are stopped
            history = store.history(self.config.model_names)  # the auto synthesizer's memory
            orch.metrics.load(await asyncio.wrap_future(history))
            quality = store.quality_history()  # and what it learnt of answer quality
            orch.metrics.load_quality(await asyncio.wrap_future(quality))
            grades = store.submit(weights.stored_grades)  # weighted votes: evaluations
            orch.metrics.accuracy.load(await asyncio.wrap_future(grades))
            clusters = store.submit(outliers.stored_clusters)  # who stood alone, and how often
            orch.metrics.panel.load(await asyncio.wrap_future(clusters))
            retention = asyncio.create_task(self._retain(store))
            server = SocketServer(orch, store, self.config.daemon, on_shutdown=self.request_stop)
            old_umask = os.umask(0o177)  # the socket is born 0600: no chmod race
            try:
                await server.start(str(self.socket_path))
            finally:
                os.umask(old_umask)
            door = None
            if self.config.http.listen is not None:
                from actors.daemon.http import FrontDoor  # only a daemon with [http] pays

                door = FrontDoor(server, self.config, os.environ)
                await door.start()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal, signum)
            loop.add_signal_handler(signal.SIGHUP, self._on_reload)
            sd_notify("READY=1")
            logger.info(
                "orchestrord {} ready on {} with models {}",
                VERSION,
                self.socket_path,
                ", ".join(self.config.model_names),
            )
            await self.stop_requested.wait()
            sd_notify("STOPPING=1")
            budget = self.config.daemon.drain_s
            stop_by = loop.time() + budget
            if door is not None:
                door.stop_accepting()  # no new connections; open streams run on
            left = await server.drain(budget)
            if door is not None:
                await door.wait(max(CLOSE_MIN_S, stop_by - loop.time()))
            if left:
                logger.warning("{} job(s) still running after the drain: answering them", left)
            await loop.run_in_executor(None, orch.stop)  # running jobs end with partial results
            await server.close(max(CLOSE_MIN_S, stop_by - loop.time()))
            retention.cancel()
        finally:
            await loop.run_in_executor(None, orch.stop)  # idempotent
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            store.close()
        logger.info("orchestrord stopped")
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_dotenv_file()
    setup_logging(args.log_level, args.log_json)
    try:
        config = effective_config(args)
    except ConfigError as exc:
        print(f"orchestrord: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(describe(config))
        try:
            print(describe_limits(config.limits, os.environ))
        except ConfigError as exc:  # a refused login, an unknown database, an unset variable
            print(f"orchestrord: bad configuration: {exc}", file=sys.stderr)
            return 2
        unusable = unusable_models(config.models, os.environ)
        for index, model in enumerate(config.models):
            if model.name in unusable:
                print(
                    f"orchestrord: models[{index}] ({model.name}): {unusable[model.name]}",
                    file=sys.stderr,
                )
        return 2 if unusable else 0
    try:
        return asyncio.run(Daemon(config, reload=lambda: effective_config(args)).run())
    except SocketInUse as exc:
        print(f"orchestrord: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:  # found only at start, e.g. Redis refusing the login
        print(f"orchestrord: bad configuration: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:  # the HTTP front door's address is taken
        print(f"orchestrord: {exc}", file=sys.stderr)
        return 2
    except StoreUnreadable as exc:  # not ours to repair or replace: the user decides
        print(f"orchestrord: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the socket cannot be bound
        print(f"orchestrord: cannot serve on {config.daemon.socket}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
