"""Shared fixtures: orchestrators are started in fixtures and always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from daemon_helpers import DaemonProcess
from helpers import RosterWatcher

import actors


@pytest.fixture
def start_orch() -> Iterator[Callable[..., actors.Orchestrator]]:
    """``start_orch(config_dict, **kw)``; every orchestrator started is stopped at teardown."""
    started: list[actors.Orchestrator] = []

    def _start(config: Any, **kwargs: Any) -> actors.Orchestrator:
        kwargs.setdefault("environ", {})
        orch = actors.start(config, **kwargs)
        started.append(orch)
        return orch

    yield _start
    for orch in started:
        orch.stop()


@pytest.fixture
def watch_roster() -> Iterator[Callable[[actors.Orchestrator], RosterWatcher]]:
    """``watch_roster(orch)`` follows the orchestrator's roster until teardown."""
    watchers: list[RosterWatcher] = []

    def _watch(orch: actors.Orchestrator) -> RosterWatcher:
        watchers.append(RosterWatcher(orch))
        return watchers[-1]

    yield _watch
    for watcher in watchers:
        watcher.stop()


@pytest.fixture
def daemon() -> Iterator[Callable[..., DaemonProcess]]:
    """``daemon(config_dict, **kw)`` starts a real daemon; all are stopped at teardown."""
    started: list[DaemonProcess] = []

    def _start(config: dict[str, Any], **kwargs: Any) -> DaemonProcess:
        proc = DaemonProcess(config, **kwargs)
        started.append(proc)
        return proc.start()

    yield _start
    for proc in started:
        proc.cleanup()


@pytest.fixture
def redis_server() -> Iterator[Any]:
    """A running redis-server on a free loopback port (``.url``, ``.stop()``, ``.start()``)."""
    from redis_helpers import redis_process

    server = redis_process().start()
    yield server
    server.cleanup()
