"""The I/O loop's timers: they fire, they cancel from any thread, and a cancelled one
leaves the loop at once (a finished job's deadline timer must not linger)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from helpers import WAIT

from actors.runtime import IOLoop


@pytest.fixture
def io() -> Iterator[IOLoop]:
    loop = IOLoop()
    yield loop
    loop.stop()


async def _noop() -> None:
    return None


def settle(io: IOLoop) -> None:
    """Wait until the loop has run everything scheduled so far (FIFO)."""
    io.submit(_noop()).result(timeout=WAIT)


def test_a_timer_fires_its_callback(io: IOLoop) -> None:
    fired = threading.Event()
    io.call_later(0.0, fired.set)
    assert fired.wait(WAIT)


def test_cancelled_timers_never_fire_and_leave_the_loop(io: IOLoop) -> None:
    fired: list[int] = []
    timers = [io.call_later(3600, fired.append, i) for i in range(1000)]
    settle(io)
    assert len(io.loop._scheduled) == 1000  # asyncio's own heap of pending handles
    for timer in timers:
        timer.cancel()
        timer.cancel()  # twice is harmless
    settle(io)
    assert len(io.loop._scheduled) == 0 and fired == []


def test_a_timer_cancelled_before_it_is_armed_is_never_armed(io: IOLoop) -> None:
    fired = threading.Event()
    io.call_later(0.0, fired.set).cancel()
    keep = threading.Event()
    io.call_later(0.0, keep.set)
    assert keep.wait(WAIT)
    settle(io)
    assert not fired.is_set() and len(io.loop._scheduled) == 0
