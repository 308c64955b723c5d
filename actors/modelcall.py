"""A call a model actor holds, and what it sends: the provider request built from the
``Complete``, the attempt that runs on the shared I/O loop, the pieces a streaming call
passes on, and the ``CallFinished`` that ends it. ``ModelActor`` (``actors.model``)
decides when; this module says what.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pykka

from actors.config import ModelConfig
from actors.metrics import Metrics
from actors.providers import Provider, ProviderRequest, call_provider
from actors.retry import RetryState
from actors.runtime import Timer, safe_tell
from messages.commands import Complete
from messages.errors import OrchestratorError, ProviderTimeout
from messages.events import CallDelta, CallFinished, ProviderReturned
from messages.results import ErrorInfo, ModelReply, ReplyStatus, Usage
from messages.tools import ToolCall


class ProviderCrash(RuntimeError):
    """An adapter raised what no adapter should (``SystemExit``, ``KeyboardInterrupt``):
    contained as a bug of this model (the actor restarts), never let loose on the shared
    I/O loop or pykka, which stops every actor on a ``BaseException``."""


class Call:
    """A call this actor holds: queued, in flight, or waiting to retry."""

    __slots__ = ("cost", "future", "msg", "received", "retry", "started", "timer")

    def __init__(self, msg: Complete, cost: int, retry: RetryState, received: float) -> None:
        self.msg = msg
        self.cost = cost
        self.retry = retry
        self.received = received
        self.started: float | None = None  # when its first attempt left the queue
        self.future: Future[Any] | None = None
        self.timer: Timer | None = None

    @property
    def waited_s(self) -> float:
        """How long it waited (limits, concurrency) before its first attempt started."""
        return 0.0 if self.started is None else max(0.0, self.started - self.received)


def reply(
    config: ModelConfig,
    msg: Complete,
    attempts: int,
    latency_s: float,
    error: OrchestratorError | None,
    text: str | None = None,
    usage: Usage | None = None,
    tool_calls: tuple[ToolCall, ...] | None = None,
    waited_s: float = 0.0,
) -> None:
    """Tell ``msg.reply_to`` how the call ended (from the actor, or from the I/O loop
    for a success, which then skips a thread hop on the job's critical path)."""
    status: ReplyStatus = "ok"
    if error is not None:
        status = "timeout" if isinstance(error, ProviderTimeout) else "error"
    cost = (
        config.cost_usd(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
        if usage
        else 0.0
    )
    answer = ModelReply(
        model=config.name,
        status=status,
        text=text,
        latency_ms=latency_s * 1000,
        usage=usage,
        error=None if error is None else ErrorInfo.of(error),
        cost_usd=cost,
        attempts=attempts,
        prompt=msg.prompt,
        tool_calls=tool_calls or None,
        waited_ms=waited_s * 1000,
    )
    finished = CallFinished(
        call_id=msg.call_id, job_id=msg.job_id, round_index=msg.round_index, reply=answer
    )
    safe_tell(msg.reply_to, finished)


def seed(msg: Complete, own: int | None) -> int | None:
    """The call's seed (deterministic mode's), else the caller's, else the model's."""
    for candidate in (msg.seed, msg.sampling.seed):
        if candidate is not None:
            return candidate
    return own


def call_text(msg: Complete) -> str:
    """What a call sends, for its token estimate: system, prompt, earlier turns, tools."""
    parts = [msg.system or "", msg.prompt or ""]
    parts += [m.text + "".join(c.arguments_json for c in m.tool_calls) for m in msg.history]
    parts += [t.parameters_json or "" for t in msg.tools]
    return "".join(parts)


def max_tokens(config: ModelConfig, msg: Complete) -> int:
    """The call's own limit, else the model's."""
    return config.max_tokens if msg.max_tokens is None else msg.max_tokens


def provider_request(
    config: ModelConfig, msg: Complete, now: float, on_delta: Callable[[str], None] | None
) -> ProviderRequest:
    """What the provider is asked for this call: the model's settings where the call
    names none, and a timeout that never runs past the job's deadline."""
    return ProviderRequest(
        model=config.model,
        prompt=msg.prompt,
        system=msg.system,
        max_tokens=max_tokens(config, msg),
        temperature=config.temperature if msg.temperature is None else msg.temperature,
        seed=seed(msg, config.seed),
        timeout_s=max(0.001, min(config.timeout_s, msg.deadline - now)),
        participant=config.name,
        round_name=msg.round_name,
        call_id=msg.call_id,
        history=msg.history,
        sampling=msg.sampling,
        tools=msg.tools,
        tool_choice=msg.tool_choice,
        parallel_tool_calls=msg.parallel_tool_calls,
        on_delta=on_delta,
    )


def streamer(
    call: Call, now: float, metrics: Metrics, model: str, clock: Callable[[], float]
) -> Callable[[str], None]:
    """Where a streaming call's pieces go: straight from the I/O loop to the caller
    (a tell, never a wait), marked with the attempt they belong to; the first piece
    of an attempt measures its time to first token."""
    msg = call.msg
    attempt = max(1, call.retry.attempt)
    first = [True]

    def send(text: str) -> None:
        if first[0]:
            first[0] = False
            metrics.first_token(model, clock() - now)
        safe_tell(
            msg.reply_to,
            CallDelta(call_id=msg.call_id, job_id=msg.job_id, attempt=attempt, text=text),
        )

    return send


async def run_attempt(
    provider: Provider,
    request: ProviderRequest,
    call: Call,
    config: ModelConfig,
    actor: pykka.ActorRef[Any],
    clock: Callable[[], float],
) -> None:
    """One attempt of ``call``, on the I/O loop (never the actor's thread): it only tells.
    The actor hears how it ended (``ProviderReturned``); a success is also answered
    from here."""
    attempt = call.retry.attempt
    response: Any = None
    error: BaseException | None = None
    try:
        response = await call_provider(provider, request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # handed to the actor: a ProviderError is data, else a bug
        error = exc
    except BaseException as exc:  # SystemExit must not kill the I/O loop
        error = ProviderCrash(f"the provider raised {exc!r}")
    now = clock()
    # The actor is told first (its books: metrics, limiter), then the asker gets the
    # answer straight from here, a thread hop less on the job's critical path. In this
    # order a question asked of the actor after the job's result is seen is answered
    # after the books include this call (status() relies on it).
    safe_tell(
        actor,
        ProviderReturned(
            call_id=call.msg.call_id,
            attempt=attempt,
            response=response,
            error=error,
        ),
    )
    if error is None:
        reply(
            config,
            call.msg,
            attempt,
            now - call.received,
            None,
            response.text,
            response.usage,
            response.tool_calls,
            call.waited_s,
        )
