"""One job's life cycle, the same for the embedding (``Orchestrator.submit``) and the
daemon (``SocketServer.run_job``, which the HTTP door calls too).

``Lifecycle.run(ask, done)``: record the job as accepted (and wait until that is on
disk), serve a deterministic job from the cache, or start it; keep each round in the
run store as it ends (a daemon killed mid-job leaves them to its ``interrupted``
record); record the result and fill the cache; only then hand the result to ``done``.
The cache is the run store's (SQLite) when there is one, else a bounded dict.

Nothing here blocks: each step is a callback on the step before (the run store's
futures, the coordinator's ``reply_to``), so it runs on whichever thread finished that
step, and ``done`` must not block either. A job accepted but not yet started can be
cancelled (``cancel``): it then ends ``cancelled`` without a provider call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from loguru import logger

from actors.store import RunStore
from actors.tracing import JobTrace, Tracing
from messages.commands import Ask
from messages.errors import JobCancelled
from messages.events import JobEvent
from messages.options import ASK_OPTIONS
from messages.results import ErrorInfo, JobResult, ModelReply, RoundResult

CACHE_SIZE = 1024  # deterministic results kept in memory when there is no run store
STORED_APART = ("prompt", "metadata", "stream")  # columns of their own, or not stored

Outcome = JobResult | Exception  # an exception: the job could not start (bad params)
Done = Callable[[Outcome], None]


@dataclass(slots=True)
class _Job:
    """One job on its way: what it was asked, where it ends, its rounds so far."""

    ask: Ask
    key: str | None  # its cache key, when deterministic
    done: Done
    trace: JobTrace | None = None  # its spans, when traces are on
    rounds: list[RoundResult] = field(default_factory=list)
    replies: dict[int, list[ModelReply]] = field(default_factory=dict)


class Lifecycle:
    """Records, caches and starts jobs. ``cache_key`` and ``start`` are the
    orchestrator's; ``strategy`` gives the default strategy (it may be reloaded)."""

    def __init__(
        self,
        store: RunStore | None,
        *,
        cache_key: Callable[[Ask], str],
        start: Callable[[Ask], None],
        strategy: Callable[[], str],
        tracing: Tracing | None = None,
    ) -> None:
        self.store = store
        self.tracing = tracing
        self._cache_key = cache_key
        self._start = start
        self._strategy = strategy
        self.memory: OrderedDict[str, JobResult] = OrderedDict()
        self._waiting: dict[str, bool] = {}  # accepted, not started: job_id -> cancelled
        self._lock = threading.RLock()

    def run(self, ask: Ask, done: Done) -> None:
        """Run ``ask`` through its whole life cycle; ``done`` gets the recorded result
        (or the exception a job that could not start ended with)."""
        job = _Job(ask=ask, key=self._cache_key(ask) if ask.deterministic else None, done=done)
        if self.tracing is not None:
            job.trace = self.tracing.job(ask)
        with self._lock:
            self._waiting[ask.job_id] = False
        _then(self._accept(ask), lambda f: self._accepted(job, f))

    def cancel(self, job_id: str) -> bool:
        """Cancel a job accepted but not started yet (True); False if it is not waiting
        (it has started: cancel it at the coordinator, or it is not ours)."""
        with self._lock:
            if job_id not in self._waiting:
                return False
            self._waiting[job_id] = True
            return True

    # --- the steps ---------------------------------------------------------------------

    def _accept(self, ask: Ask) -> Future[Any]:
        if self.store is None:
            return _done_future(None)
        options = {o.name: getattr(ask, o.name) for o in ASK_OPTIONS if o.name not in STORED_APART}
        return self.store.accept(ask.job_id, ask.prompt, options, ask.metadata)

    def _accepted(self, job: _Job, accepted: Future[Any]) -> None:
        error = accepted.exception()
        if error is not None:  # not on disk: the job does not start
            with self._lock:
                self._waiting.pop(job.ask.job_id, None)
            logger.error("job {}: the run store could not accept it: {!r}", job.ask.job_id, error)
            job.done(error if isinstance(error, Exception) else RuntimeError(str(error)))
        elif job.key is None:
            self._begin(job, None)
        else:
            _then(self._cached(job.key), lambda f: self._begin(job, _value(f)))

    def _begin(self, job: _Job, hit: JobResult | None) -> None:
        ask = job.ask
        with self._lock:  # held until started: a cancel lands before or after, never between
            if self._waiting.pop(ask.job_id, False):
                error = ErrorInfo.of(JobCancelled("cancelled by request"))
                cancelled = JobResult(
                    job_id=ask.job_id, status="cancelled", strategy=self._chosen(ask), error=error
                )
                self._finished(job, cancelled)
            elif hit is not None:  # served from the cache: no provider call
                self._finished(job, hit.with_changes(job_id=ask.job_id, cached=True))
            else:
                self._start(
                    replace(
                        ask,
                        reply_to=lambda r: self._finished(job, r),
                        observers=(*ask.observers, *self._observers(job)),
                    )
                )

    def _finished(self, job: _Job, outcome: Outcome) -> None:
        if job.trace is not None:
            job.trace.finish(outcome)
        if isinstance(outcome, Exception):
            failed = JobResult(
                job_id=job.ask.job_id,
                status="error",
                strategy=self._chosen(job.ask),
                error=ErrorInfo.of(outcome),
            )
            _then(self._record(failed), lambda _: job.done(outcome))
            return
        if job.key is not None and outcome.ok and not outcome.cached:
            self._remember(job.key, outcome)
        _then(self._record(outcome), lambda _: job.done(outcome))

    def _chosen(self, ask: Ask) -> str:
        return ask.strategy or self._strategy()

    # --- the run store and the cache -----------------------------------------------------

    def _record(self, result: JobResult) -> Future[Any]:
        """The finish row, committed before the result is handed on: an answered job is
        durable. A failed write is logged and the answer still goes out (the row stays
        ``running`` and reads ``interrupted`` after a restart)."""
        if self.store is None:
            return _done_future(None)
        written = self.store.finish(result)

        def logged(future: Future[Any]) -> None:
            if future.exception() is not None:
                logger.error(
                    "job {}: the run store could not record the result: {!r}",
                    result.job_id,
                    future.exception(),
                )

        written.add_done_callback(logged)
        return written

    def _cached(self, key: str) -> Future[JobResult | None]:
        if self.store is not None:
            return self.store.cached(key)
        with self._lock:
            return _done_future(self.memory.get(key))

    def _remember(self, key: str, result: JobResult) -> None:
        if self.store is not None:  # committed with (or before) the finish row
            self.store.cache_result(key, result.job_id)
            return
        with self._lock:
            self.memory[key] = result
            self.memory.move_to_end(key)
            while len(self.memory) > CACHE_SIZE:
                self.memory.popitem(last=False)

    def _observers(self, job: _Job) -> tuple[Callable[[JobEvent], None], ...]:
        """The engine's watchers of ``job``'s events: its trace, and the run store's
        round keeper. Observers see every event without asking for a streamed answer."""
        watchers: list[Callable[[JobEvent], None]] = []
        if job.trace is not None:
            watchers.append(job.trace.on_event)
        if self.store is not None:
            watchers.append(self._round_keeper(job, self.store))
        return tuple(watchers)

    @staticmethod
    def _round_keeper(job: _Job, store: RunStore) -> Callable[[JobEvent], None]:
        """The job's events, on the coordinator's thread: every round is kept in the run
        store as it ends (a daemon killed mid-job leaves them to its record)."""

        def listen(event: JobEvent) -> None:
            if event.type == "reply" and event.reply is not None:
                job.replies.setdefault(event.round_index, []).append(event.reply)
            elif event.type == "round_finished":
                replies = tuple(job.replies.pop(event.round_index, ()))
                job.rounds.append(RoundResult(name=event.round, replies=replies))
                partial = JobResult(
                    job_id=job.ask.job_id, status="running", rounds=tuple(job.rounds)
                )
                store.progress(partial)

        return listen


def _then(future: Future[Any], step: Callable[[Future[Any]], None]) -> None:
    """Run ``step`` once ``future`` is done (at once if it is): the next step of a job.
    A bug in a step is logged, never left to vanish in a future's callback."""

    def guarded(done: Future[Any]) -> None:
        try:
            step(done)
        except Exception:
            logger.exception("a job's life cycle step failed")

    future.add_done_callback(guarded)


def _value(future: Future[Any]) -> Any:
    """A lookup's value, or None when it failed (a cache miss, then: the job runs)."""
    return None if future.exception() is not None else future.result()


def _done_future(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future
