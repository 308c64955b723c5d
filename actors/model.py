"""ModelActor: one per configured model, long-lived, never blocking.

A ``Complete`` is queued (FIFO); the head starts when fewer than
``max_concurrency`` calls are in flight and the limiter admits it. The call runs as
a coroutine on the shared I/O loop, and its end comes back as ``ProviderReturned``.
When the limiter says "not yet", a timer (not a sleep) wakes the queue; a
retryable failure re-queues the call after tenacity's delay, bounded by the job's
deadline; a ``Retry-After`` pauses this model's limiter only. The answer goes to
``Complete.reply_to`` as ``CallFinished``. A model answering in 30 s never stops
this actor from queueing new calls or answering ``GetStatus``.

Provider errors become replies. Anything else (a bug) crashes the actor: its
``on_failure`` answers every call it held with ``actor_crashed`` and tells the
supervisor, which restarts it.

This module decides when; beside it, ``modelcall`` holds what a call is and sends (the
request, the attempt on the I/O loop, the reply), ``slowstart`` the window of calls in
flight, ``health`` the circuit breaker's count, ``admission`` and ``limiter`` the rate
limits, ``retry`` the backoff.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pykka
from loguru import logger

from actors.admission import Admission
from actors.config import LimitsConfig, ModelConfig
from actors.health import Health
from actors.metrics import Metrics
from actors.modelcall import (
    Call,
    ProviderCrash,
    call_text,
    max_tokens,
    provider_request,
    reply,
    run_attempt,
    streamer,
)
from actors.providers import Provider, estimate_tokens
from actors.providers import make_provider as default_provider_factory
from actors.providers.base import bounded_pause
from actors.retry import RetryPolicy
from actors.runtime import IOLoop, Timer, safe_tell
from actors.sharedlimits import RedisLimits
from actors.slowstart import SlowStart
from messages.commands import CancelJob, Complete, GetStatus
from messages.errors import (
    ActorCrashed,
    OrchestratorError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from messages.events import (
    ActorFailed,
    ActorStarted,
    LimitAnswered,
    ProviderReturned,
    TimerFired,
)
from messages.results import ErrorInfo

ProviderFactory = Callable[[ModelConfig, Mapping[str, str]], Provider]


class ModelActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        config: ModelConfig,
        io: IOLoop,
        metrics: Metrics,
        supervisor: Any = None,
        generation: int = 0,
        backoff: tuple[float, float] = (0.5, 30.0),
        circuit_failures: int = 0,
        shared_limits: RedisLimits | None = None,
        limits: LimitsConfig | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        provider_factory: ProviderFactory = default_provider_factory,
    ) -> None:
        super().__init__()
        self.config = config
        self.io = io
        self.metrics = metrics
        self.supervisor = supervisor
        self.generation = generation
        self.clock = clock
        self._environ = environ if environ is not None else {}
        self._provider_factory = provider_factory
        self._retry_policy = RetryPolicy(
            max_attempts=config.max_attempts, backoff_min_s=backoff[0], backoff_max_s=backoff[1]
        )
        self.provider: Provider | None = None
        self.admission = Admission(config, io, clock(), shared_limits, limits)
        self.limiter = self.admission.local
        self._queue: deque[Call] = deque()
        self._inflight: dict[str, Call] = {}
        self._retrying: dict[str, Call] = {}
        # Slow start (actors.slowstart): how many calls may be in flight at once.
        self._window = SlowStart(config.max_concurrency, bool(config.rpm or config.tpm))
        self._crash_reason = ""
        self._health = Health(config.name, generation, circuit_failures)
        self._pump_timer: Timer | None = None
        self._pump_due = 0.0
        self._pump_generation = 0

    # --- lifecycle ---------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self.provider = self._provider_factory(self.config, self._environ)
            self.provider.prepare()
        except BaseException as exc:  # SystemExit in pykka stops *every* actor
            # pykka calls no on_failure for on_start: say so ourselves, then die.
            logger.error("model {} failed to start: {}", self.config.name, exc)
            self._tell_supervisor(
                ActorFailed(
                    name=self.config.name, generation=self.generation, error=ErrorInfo.of(exc)
                )
            )
            raise ProviderCrash(f"{self.config.name} failed to start: {exc!r}") from None
        self._tell_supervisor(ActorStarted(name=self.config.name, generation=self.generation))

    def on_stop(self) -> None:
        self._abandon(ActorCrashed(f"{self.config.name}: the model actor stopped"))
        self._close_provider()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        reason = self._crash_reason or f"the model actor crashed: {exc!r}"
        self._abandon(ActorCrashed(f"{self.config.name}: {reason}"))
        self._close_provider()
        error = (
            ErrorInfo.of(exc) if exc is not None else ErrorInfo(code="internal_error", message="")
        )
        self._tell_supervisor(
            ActorFailed(name=self.config.name, generation=self.generation, error=error)
        )

    def _tell_supervisor(self, message: Any) -> None:
        if self.supervisor is not None:
            safe_tell(self.supervisor, message)

    def _close_provider(self) -> None:
        if self.provider is not None and self.io.running:
            self.io.submit(self.provider.aclose())
            self.provider = None

    # --- messages ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Complete):
            self._enqueue(message)
        elif isinstance(message, ProviderReturned):
            self._on_returned(message)
        elif isinstance(message, TimerFired):
            self._on_timer(message)
        elif isinstance(message, LimitAnswered):
            self._on_limit(message)
        elif isinstance(message, CancelJob):
            self._cancel(message.job_id)
        elif isinstance(message, GetStatus):
            return self.status()
        else:
            return super().on_receive(message)
        return None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "provider": self.config.provider,
            "inflight": len(self._inflight),
            "queued": len(self._queue),
            "retrying": len(self._retrying),
        }

    # --- queueing and the limiter ------------------------------------------------------

    def _enqueue(self, msg: Complete) -> None:
        now = self.clock()
        cost = estimate_tokens(call_text(msg)) + max_tokens(self.config, msg)
        call = Call(msg, cost, self._retry_policy.start(), now)
        try:
            self.limiter.check_admissible(cost)
        except ProviderError as exc:
            self._fail(call, exc)
            return
        self._queue.append(call)
        self._pump()

    def _pump(self) -> None:
        now = self.clock()
        while self._queue and len(self._inflight) < self._window.size:
            call = self._queue[0]
            if call.msg.deadline <= now:
                self._queue.popleft()
                self._fail(call, ProviderTimeout("the job's deadline passed while queued"))
                continue
            if self.admission.refusing:
                self._queue.popleft()
                self._fail(call, ProviderUnavailable("the shared rate limits are unreachable"))
                continue
            if self.admission.shared_now:  # Redis answers with a LimitAnswered message
                if self.admission.asking is None:
                    self.admission.ask(call.msg.call_id, call.cost, self.actor_ref)
                return
            wait = self.limiter.wait_s(call.cost, now)
            if wait > 0 and now + wait >= call.msg.deadline:
                # Waiting cannot help: the limit (or a provider's pause) lets this call
                # go only after its job's deadline. Say so now, not at the deadline.
                self._queue.popleft()
                self._fail(call, RateLimited(self._waiting_reason(wait)))
                continue
            if wait > 0:
                self._arm_pump(now, wait)
                return
            self._queue.popleft()
            self.limiter.take(call.cost, now)
            self._start(call, now)

    def _on_limit(self, msg: LimitAnswered) -> None:
        """The shared limits answered for the call at the head of the queue."""
        if self.admission.asking != msg.call_id:
            return
        self.admission.asking = None
        now = self.clock()
        head = self._queue[0] if self._queue else None
        if head is None or head.msg.call_id != msg.call_id or msg.wait is None:
            pass  # cancelled meanwhile, or Redis unreachable: _pump falls back or refuses
        elif msg.wait == 0:
            self._queue.popleft()
            self._start(head, now)
        elif now + msg.wait >= head.msg.deadline:
            self._queue.popleft()
            self._fail(head, RateLimited(self._waiting_reason(msg.wait)))
        else:
            self._arm_pump(now, msg.wait)
            return
        self._pump()

    def _waiting_reason(self, wait: float) -> str:
        paused = self.limiter.paused_until > self.clock()
        why = "paused by the provider's Retry-After" if paused else "at its rate limit"
        return f"{self.config.name} is {why} for {wait:.1f}s more, past the job's deadline"

    def _arm_pump(self, now: float, wait: float) -> None:
        due = now + wait
        if self._pump_timer is not None and not self._pump_timer.cancelled:
            if self._pump_due <= due:
                return  # an earlier wake-up is already armed
            self._pump_timer.cancel()
        self._pump_generation += 1
        self._pump_due = due
        self._pump_timer = self.io.tell_later(
            wait, self.actor_ref, TimerFired(kind="pump", generation=self._pump_generation)
        )

    def _on_timer(self, msg: TimerFired) -> None:
        if msg.kind == "pump":
            if msg.generation == self._pump_generation:
                self._pump_timer = None
                self._pump()
        elif msg.kind == "retry":
            call = self._retrying.pop(msg.key, None)
            if call is not None:
                call.timer = None
                self._queue.appendleft(call)  # it waited its turn once already
                self._pump()

    # --- calls -------------------------------------------------------------------------

    def _start(self, call: Call, now: float) -> None:
        assert self.provider is not None
        msg = call.msg
        on_delta = None
        if msg.stream:
            on_delta = streamer(call, now, self.metrics, self.config.name, self.clock)
        request = provider_request(self.config, msg, now, on_delta)
        self._inflight[msg.call_id] = call
        self.metrics.add_inflight(self.config.name, 1)
        if call.retry.attempt <= 1:
            call.started = now
            self.metrics.waited(self.config.name, call.waited_s)
        attempt = run_attempt(self.provider, request, call, self.config, self.actor_ref, self.clock)
        call.future = self.io.submit(attempt)

    def _on_returned(self, msg: ProviderReturned) -> None:
        call = self._inflight.get(msg.call_id)
        if call is None or call.retry.attempt != msg.attempt:
            return  # cancelled, or a stale attempt
        del self._inflight[msg.call_id]
        self.metrics.add_inflight(self.config.name, -1)
        now = self.clock()
        if self._window.returned(rate_limited=isinstance(msg.error, RateLimited)):
            self.admission.reanchor(call.cost, now)  # after the cold first call
        if msg.error is None:  # already answered from the I/O loop
            usage = msg.response.usage
            self.admission.reconcile(call.cost, usage.total if usage else -1, now)
            self.metrics.record(
                self.config.name,
                ok=True,
                latency_s=now - call.received,
                usage=usage,
                cost_usd=self.config.cost_usd(
                    usage.input_tokens, usage.output_tokens, usage.cached_tokens
                )
                if usage
                else 0.0,
                attempts=call.retry.attempt,
            )
            self._note_health(None)
        elif isinstance(msg.error, ProviderError):
            self._on_error(call, msg.error, now)
        else:
            # A bug: crash. The call is answered by on_failure, after pykka has marked this
            # actor stopped, so no round started on that answer can send to it again.
            self._retrying[msg.call_id] = call
            self._crash_reason = f"bug: {msg.error!r}"
            raise msg.error
        self._pump()

    def _on_error(self, call: Call, error: ProviderError, now: float) -> None:
        if not isinstance(error, ProviderTimeout):
            self.admission.reconcile(call.cost, 0, now)  # the provider spent no tokens
        pause = bounded_pause(error.retry_after)
        if isinstance(error, RateLimited):
            self.metrics.rate_limited(self.config.name)
            self._window.rate_limited()  # slow start again once the pause is over
            if pause:
                self.admission.pause(pause, now)
        delay = call.retry.next_delay(error)
        if delay is not None:
            delay = max(delay, pause or 0.0)
            if now + delay < call.msg.deadline:
                logger.debug(
                    "{} call {} attempt {} failed ({}); retry in {:.2f}s",
                    self.config.name,
                    call.msg.call_id,
                    call.retry.attempt - 1,
                    error.code,
                    delay,
                )
                self._retrying[call.msg.call_id] = call
                call.timer = self.io.tell_later(
                    delay, self.actor_ref, TimerFired(kind="retry", key=call.msg.call_id)
                )
                return
        self._fail(call, error)
        self._note_health(error)

    def _note_health(self, error: ProviderError | None) -> None:
        """The circuit breaker's input: a call's final outcome (actors.health)."""
        news = self._health.note(error)
        if news is not None:
            self._tell_supervisor(news)

    def _fail(self, call: Call, error: OrchestratorError) -> None:
        """Answer a call that ended without an answer (successes are answered from the
        I/O loop, in ``_attempt``)."""
        latency_s = self.clock() - call.received
        self.metrics.record(
            self.config.name,
            ok=False,
            latency_s=latency_s,
            attempts=call.retry.attempt,
            error=error.code,
        )
        if isinstance(error, ProviderError):  # (a cancelled call is not the model's failure)
            logger.bind(
                job_id=call.msg.job_id, model=self.config.name, round=call.msg.round_name
            ).warning(
                "{} failed in {} of job {} after {} attempt(s): {}: {}",
                self.config.name,
                call.msg.round_name,
                call.msg.job_id,
                max(1, call.retry.attempt),
                error.code,
                error.message[:300],
            )
        reply(self.config, call.msg, call.retry.attempt, latency_s, error, waited_s=call.waited_s)

    # --- cancelling and abandoning -----------------------------------------------------

    def _drop(self, keep: Callable[[Call], bool]) -> list[Call]:
        """Remove and return every held call for which ``keep`` is False."""
        dropped = [c for c in self._queue if not keep(c)]
        self._queue = deque(c for c in self._queue if keep(c))
        for table in (self._inflight, self._retrying):
            for call_id, call in list(table.items()):
                if not keep(call):
                    del table[call_id]
                    dropped.append(call)
                    if call.future is not None and table is self._inflight:
                        call.future.cancel()
                        self.metrics.add_inflight(self.config.name, -1)
                    if call.timer is not None:
                        call.timer.cancel()
        return dropped

    def _cancel(self, job_id: str) -> None:
        self._drop(lambda c: c.msg.job_id != job_id)
        self._pump()

    def _abandon(self, error: ActorCrashed) -> None:
        """Answer every call this actor holds, and every ``Complete`` still in its inbox
        (pykka drops a dead actor's unread tells), so no job waits for its deadline."""
        for call in self._drop(lambda c: False):
            self._fail(call, error)
        others = []
        while not self.actor_inbox.empty():  # only this thread reads its inbox
            envelope = self.actor_inbox.get()
            if isinstance(envelope.message, Complete):
                call = Call(envelope.message, 0, self._retry_policy.start(), self.clock())
                self._fail(call, error)
            else:
                others.append(envelope)
        for envelope in others:
            self.actor_inbox.put(envelope)  # pykka's own teardown answers asks
