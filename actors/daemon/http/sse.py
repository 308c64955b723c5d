"""Server-sent events: framing, and a job's events with keep-alive ticks between them.

A stream says something at least every ``[http] keepalive_s``: an SSE comment
(``: keepalive``), which every SSE client skips, keeps a proxy's idle timeout and a
client's read timeout from cutting a job whose panel is still working."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol, TypeVar

from actors.daemon.http.errors import HttpError

KEEPALIVE = ": keepalive\n\n"
DONE = "data: [DONE]\n\n"
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and its kin pass each event on at once
    "x-should-retry": "false",  # a stream that fails has run its job: never run it again
}

T = TypeVar("T")


def data(body: Any) -> str:
    return f"data: {json.dumps(body)}\n\n"


def event(name: str, body: Any) -> str:
    """A named event (the Responses and Messages APIs name theirs)."""
    return f"event: {name}\ndata: {json.dumps(body)}\n\n"


async def ticking(
    queue: asyncio.Queue[T], job: asyncio.Future[Any], every_s: float
) -> AsyncIterator[T | None]:
    """What ``queue`` receives, as it comes, until ``job`` is done and the queue is empty;
    ``None`` whenever ``every_s`` passes with nothing to yield. The getter it waits on is
    cancelled however the caller leaves (a pending task left to the garbage collector is
    what logged ``Task was destroyed but it is pending`` for every dropped stream)."""
    getter: asyncio.Future[T] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getter, job}, timeout=every_s, return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                item, getter = getter.result(), None
                yield item
            elif job in done:
                while not queue.empty():
                    yield queue.get_nowait()
                return
            else:
                yield None
    finally:
        if getter is not None:
            getter.cancel()


class Translation(Protocol):
    """A door's stream state: the events before, for each chat chunk, and after."""

    def start(self) -> Iterable[dict[str, Any]]: ...
    def feed(self, chunk: dict[str, Any]) -> Iterable[dict[str, Any]]: ...
    def complete(self) -> Iterable[dict[str, Any]]: ...


async def translated(
    state: Translation,
    chunks: AsyncIterator[dict[str, Any] | None],
    *,
    tick: str,
    failed: Callable[[HttpError], Iterable[dict[str, Any]]],
) -> AsyncIterator[str]:
    """A chat stream (``chunks`` from the core, ``None`` for a keep-alive) as another
    API's named events: ``tick`` while nothing happens, ``failed(exc)``'s events when the
    job fails after the start (``StreamFailed``), each event named by its ``type``."""
    for item in state.start():
        yield event(item["type"], item)
    try:
        async for chunk in chunks:
            if chunk is None:
                yield tick
                continue
            for item in state.feed(chunk):
                yield event(item["type"], item)
    except HttpError as exc:
        for item in failed(exc):
            yield event(item["type"], item)
        return
    for item in state.complete():
        yield event(item["type"], item)
