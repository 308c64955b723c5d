"""The Messages API's output: a ``chat.completion`` as a ``message``, errors as
Anthropic's error body, and the stream of ``chat.completion.chunk`` dicts as Anthropic's
events:

    message_start                                    at once (usage filled at the end)
    content_block_start (text), content_block_delta (text_delta) ..., content_block_stop
    content_block_start (tool_use), content_block_delta (input_json_delta) ...,
      content_block_stop                             each tool call
    message_delta (stop_reason, usage), message_stop
    ping                                             a keepalive tick (``None`` from the core)
    error                                            a failure after the start
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from actors.daemon.http.errors import HttpError
from actors.daemon.http.sse import translated

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
PING = 'event: ping\ndata: {"type": "ping"}\n\n'


def tool_use_id(call_id: str | None) -> str:
    """``toolu_<hex>`` for a chat tool call's id (``call_<hex>``); an id already in the
    Anthropic form is kept."""
    if call_id and call_id.startswith("toolu_"):
        return call_id
    if call_id and call_id.startswith("call_"):
        return "toolu_" + call_id.removeprefix("call_")
    return f"toolu_{uuid.uuid4().hex}"


def message_id(completion: dict[str, Any]) -> str:
    given = str(completion.get("id") or "")
    return "msg_" + (given.removeprefix("chatcmpl-") or uuid.uuid4().hex)


def tool_input(arguments: str | None) -> dict[str, Any]:
    """A tool call's arguments as the ``input`` object (502 when they are not one)."""
    try:
        given = json.loads(arguments or "{}")
    except ValueError:
        given = None
    if not isinstance(given, dict):
        raise HttpError(502, "a tool call's arguments are not a JSON object", "bad_response")
    return given


def usage(chat_usage: dict[str, Any] | None) -> dict[str, Any]:
    chat_usage = chat_usage or {}
    return {
        "input_tokens": chat_usage.get("prompt_tokens", 0),
        "output_tokens": chat_usage.get("completion_tokens", 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def message(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """A ``chat.completion`` as an Anthropic ``message`` (the job result under
    ``orchestrord``)."""
    choice = (completion.get("choices") or [{}])[0]
    reply = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if reply.get("content"):
        content.append({"type": "text", "text": reply["content"]})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": function.get("name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    out = {
        "id": message_id(completion),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage(completion.get("usage")),
    }
    if "orchestrord" in completion:
        out["orchestrord"] = completion["orchestrord"]
    return out


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error")


def error_body(error: HttpError) -> dict[str, Any]:
    """An ``HttpError`` in Anthropic's error body (with the job result, when one ran)."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type(error.status), "message": error.message},
    }
    if "result" in error.extra:
        body["orchestrord"] = error.extra["result"]
    return body


# --- the stream ---------------------------------------------------------------------------


class MessagesStream:
    """The state of one stream: the open content block and the blocks so far."""

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id, self.model = message_id, model
        self.blocks = 0  # content blocks started
        self.open: str | int | None = None  # "text", a tool call's chunk index, or None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.result: Any = None

    def start(self) -> list[dict[str, Any]]:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chunk makes."""
        events: list[dict[str, Any]] = []
        extra = chunk.get("orchestrord")
        if extra is not None and not (isinstance(extra, dict) and extra.get("reset")):
            self.result = extra
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.open != "text":
                    events += self._begin("text", {"type": "text", "text": ""})
                events.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                events += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        if self.open != index:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": function.get("name") or "",
                "input": {},
            }
            events += self._begin(index, block)
        piece = function.get("arguments") or ""
        if piece:
            events.append(self._delta({"type": "input_json_delta", "partial_json": piece}))
        return events

    def _begin(self, which: str | int, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._close()
        self.open = which
        events.append({"type": "content_block_start", "index": self.blocks, "content_block": block})
        self.blocks += 1
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self.blocks - 1, "delta": delta}

    def _close(self) -> list[dict[str, Any]]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.blocks - 1}]

    def complete(self) -> list[dict[str, Any]]:
        """The last events: the open block closed, ``message_delta``, ``message_stop``."""
        counts = usage(self.usage)
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None},
            "usage": {
                "input_tokens": counts["input_tokens"],
                "output_tokens": counts["output_tokens"],
            },
        }
        stop: dict[str, Any] = {"type": "message_stop"}
        if self.result is not None:
            stop["orchestrord"] = self.result
        return [*self._close(), delta, stop]


def error_event(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def events(
    state: MessagesStream,
    chunks: AsyncIterator[dict[str, Any] | None],
) -> AsyncIterator[str]:
    """The SSE text of a stream: ``chunks`` from the core, ``ping`` for a keep-alive; a
    failure raised mid-stream ends it with an ``error`` event."""
    return translated(
        state, chunks, tick=PING, failed=lambda exc: [error_event(exc.status, exc.message)]
    )
