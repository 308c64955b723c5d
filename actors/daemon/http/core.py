"""The Chat Completions core every door calls (TOOLS-INTERFACE.md): ``complete`` answers
with a ``chat.completion`` dict, ``chunks`` yields ``chat.completion.chunk`` dicts. The
Responses and Messages doors translate their request into a Chat Completions body, call
these, and translate the dicts back.

``chunks`` raises ``HttpError`` before its first item for a request refused with a
status (bad field, unknown model, overloaded, draining). After the first item a failure
is raised as ``StreamFailed`` (an ``HttpError``): the door writes it in its own API's
error event. ``None`` items are keep-alive ticks (every ``[http] keepalive_s`` while
nothing else is sent).

Honest streams: a client that concatenates the content deltas gets exactly the final
answer and nothing before it. An ensemble's answer can be replaced until the job ends
(a retried or hedged synthesis, a fallback, a repair, a label taken off), so its
content is held and sent once final (time to the first token: the whole job, where a
live stream would have shown the synthesis's first token). One model alone (a
configured model's name, a light task) streams live
when there is no ``response_format``: a retried call that repeats what was sent goes on
where the client is; one that says something else ends the stream with the error
``answer_replaced`` rather than a wrong concatenation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from actors.config import Config
from actors.daemon.http import chat, observe
from actors.daemon.http.errors import PREFIX, HttpError, StreamFailed
from actors.daemon.http.light import LightTasks
from actors.daemon.http.sse import ticking
from messages.commands import new_id
from messages.errors import OrchestratorError
from messages.events import JobEvent
from messages.results import JobResult


class Door(Protocol):
    """What the core needs of the HTTP server: the socket server (admission, jobs, the
    orchestrator's metrics), the configuration and the light-task rules."""

    server: Any
    config: Config
    light: LightTasks


def request(door: Door, body: Mapping[str, Any], headers: Mapping[str, str]) -> chat.ChatRequest:
    """``body`` checked and routed (``HttpError`` if it cannot be); a caller's valid W3C
    ``traceparent`` header makes the job's trace a child of the caller's span."""
    req = chat.parse(body, door.config, light=door.light.wanted(headers, body))
    parent = observe.traceparent(headers)
    if parent is not None:
        req.params["traceparent"] = parent
    return req


async def complete(
    door: Door, body: Mapping[str, Any], *, headers: Mapping[str, str]
) -> dict[str, Any]:
    """One finished job as a ``chat.completion`` (``HttpError`` when refused or failed)."""
    req = request(door, body, headers)
    try:
        result = await door.server.run_job(req.params)
    except OrchestratorError as exc:
        raise HttpError.of(exc) from None
    if not result.ok:
        raise HttpError.failed(result)
    return completion(result, req.model)


async def chunks(
    door: Door, body: Mapping[str, Any], *, headers: Mapping[str, str]
) -> AsyncIterator[dict[str, Any] | None]:
    """A job as ``chat.completion.chunk`` dicts (and ``None`` ticks); see the module."""
    req = request(door, body, headers)
    try:
        door.server.admit()  # a full or draining daemon: 429 or 503, not a stream
    except OrchestratorError as exc:
        raise HttpError.of(exc) from None
    return _stream(door, req)


async def _stream(door: Door, req: chat.ChatRequest) -> AsyncIterator[dict[str, Any] | None]:
    live = req.route != "ensemble" and not req.schema and not req.params.get("tools")
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[JobEvent] = asyncio.Queue()

    def listener(event: JobEvent) -> None:
        if event.type in ("delta", "reset"):
            loop.call_soon_threadsafe(events.put_nowait, event)

    job_id = new_id()
    job = asyncio.ensure_future(
        door.server.run_job(req.params, listener if live else None, job_id=job_id)
    )
    out = Chunks(f"chatcmpl-{job_id}", req.model)
    text = Text()
    try:
        yield out.chunk({"role": "assistant"})  # content: none yet (a tool call has none)
        async for item in ticking(events, job, door.config.http.keepalive_s):
            if item is None:
                yield None
            elif (piece := text.take(item)) is not None:
                observe.first_token(door.server.orch.metrics, req.model)
                yield out.chunk({"content": piece})
        result = _result(job)
        for delta in final_deltas(result, text if live else None):
            observe.first_token(door.server.orch.metrics, req.model)
            yield out.chunk(delta)
        yield out.chunk({}, finish_reason(result), result.to_dict())
        if req.include_usage:
            yield out.usage(result)
    finally:
        if not job.done():  # the client went away: the job is cancelled, not paid for
            door.server.cancel_job(job_id)
            job.add_done_callback(_retrieved)


class Text:
    """What a live stream has sent, and what its job's deltas say now (a reset starts
    them again): only what extends what was sent goes out."""

    def __init__(self) -> None:
        self.sent = ""
        self.now = ""

    def take(self, event: JobEvent) -> str | None:
        if event.type == "reset":
            self.now = ""
            return None
        self.now += event.text or ""
        if len(self.now) > len(self.sent) and self.now.startswith(self.sent):
            piece, self.sent = self.now[len(self.sent) :], self.now
            return piece
        return None


def _result(job: asyncio.Future[JobResult]) -> JobResult:
    """The finished job's result, or ``StreamFailed`` saying why there is none."""
    try:
        result = job.result()
    except OrchestratorError as exc:
        raise StreamFailed.of_error(HttpError.of(exc)) from None
    if not result.ok:
        raise StreamFailed.of_error(HttpError.failed(result))
    return result


def final_deltas(result: JobResult, text: Text | None) -> list[dict[str, Any]]:
    """The answer's deltas once it is final: all of it (held), or the rest of it (live);
    then its tool calls as the SDKs' stream helpers assemble them."""
    answer = result.answer or ""
    out: list[dict[str, Any]] = []
    if text is None:
        if answer:
            out.append({"content": answer})
    elif answer.startswith(text.sent):
        if len(answer) > len(text.sent):
            out.append({"content": answer[len(text.sent) :]})
    else:
        message = "the model's answer changed after part of it was sent (a retried call)"
        raise StreamFailed(502, message, "answer_replaced", result=result.to_dict())
    for index, call in enumerate(tool_calls(result)):
        function = call["function"]
        head = {"name": function["name"], "arguments": ""}
        out.append(
            {
                "tool_calls": [
                    {"index": index, "id": call["id"], "type": "function", "function": head}
                ]
            }
        )
        out.append(
            {"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]}
        )
    return out


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning


def tool_calls(result: JobResult) -> list[dict[str, Any]]:
    """The result's tool calls in OpenAI's shape ([] for a text answer)."""
    calls = getattr(result, "tool_calls", None) or ()
    return [c if isinstance(c, dict) else c.to_dict() for c in calls]


def finish_reason(result: JobResult) -> str:
    reason = getattr(result, "finish_reason", None)
    if isinstance(reason, str):
        return reason
    return "tool_calls" if tool_calls(result) else "stop"


def usage(result: JobResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.input_tokens,
        "completion_tokens": result.usage.output_tokens,
        "total_tokens": result.usage.total,
    }


def completion(result: JobResult, model: str) -> dict[str, Any]:
    """A finished job as a ``chat.completion``, with the job result under ``orchestrord``."""
    calls = tool_calls(result)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.answer or ("" if not calls else None),
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{result.job_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(result),
                "logprobs": None,
            }
        ],
        "usage": usage(result),
        PREFIX: result.to_dict(),
    }


class Chunks:
    """``chat.completion.chunk`` dicts of one stream."""

    def __init__(self, chunk_id: str, model: str) -> None:
        self.id, self.model, self.created = chunk_id, model, int(time.time())

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def chunk(
        self, delta: dict[str, Any], finish: str | None = None, extra: Any = None
    ) -> dict[str, Any]:
        body = {**self._base(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if extra is not None:
            body[PREFIX] = extra
        return body

    def usage(self, result: JobResult) -> dict[str, Any]:
        return {**self._base(), "choices": [], "usage": usage(result)}
