"""The I/O loop: one asyncio event loop thread shared by every actor of an orchestrator.

Provider calls run on it as coroutines (a model actor hands a call over and gets a
``ProviderReturned`` message back); timers fire on it and ``tell`` the actor that
armed them. Actors therefore never block on I/O and never sleep, and the thread
count does not grow with the number of jobs or calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pykka
from loguru import logger

T = TypeVar("T")


def safe_tell(ref: Any, message: Any) -> bool:
    """Tell ``ref`` (an ActorRef) ``message``; False if the actor is gone."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


class Timer:
    """A pending ``call_later``; ``cancel`` is safe from any thread and really removes
    the handle from the loop (a finished job's deadline must not linger for minutes)."""

    __slots__ = ("_args", "_callback", "_handle", "_owner", "cancelled")

    def __init__(self, owner: IOLoop, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._owner = owner
        self._callback = callback
        self._args = args
        self._handle: asyncio.TimerHandle | None = None
        self.cancelled = False

    def _arm(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if not self.cancelled:
            self._handle = loop.call_later(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        if not self.cancelled:
            self._callback(*self._args)

    def _unschedule(self) -> None:  # on the loop thread
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._owner._cancel_later(self)


class IOLoop:
    """An asyncio loop on a daemon thread, with thread-safe ``submit`` and timers."""

    def __init__(self, name: str = "orchestrord-io") -> None:
        self.loop = asyncio.new_event_loop()
        self._to_cancel: list[Timer] = []
        self._cancel_lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            while True:
                try:
                    self.loop.run_forever()
                    break  # stop() was called
                except BaseException:  # e.g. SystemExit out of a task
                    # Every provider call and timer of the orchestrator lives on this
                    # thread: an escaped exception must not end it.
                    logger.exception("the I/O loop caught an escaped exception; running on")
        finally:
            self._cancel_remaining()
            self.loop.close()

    def _cancel_remaining(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; the returned future's ``cancel`` cancels the task."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(self, callback, args)
        self.loop.call_soon_threadsafe(timer._arm, self.loop, delay)
        return timer

    def _cancel_later(self, timer: Timer) -> None:
        """Queue ``timer`` for removal; one wake-up of the loop removes a whole batch."""
        with self._cancel_lock:
            self._to_cancel.append(timer)
            first = len(self._to_cancel) == 1
        if first:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to remove
                self.loop.call_soon_threadsafe(self._drain_cancelled)

    def _drain_cancelled(self) -> None:
        with self._cancel_lock:
            batch, self._to_cancel = self._to_cancel, []
        for timer in batch:
            timer._unschedule()

    def tell_later(self, delay: float, ref: Any, message: Any) -> Timer:
        """Tell ``ref`` ``message`` after ``delay`` seconds: how actors wait."""
        return self.call_later(delay, safe_tell, ref, message)

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed in between
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("I/O loop did not stop within {}s", timeout)
