"""The Responses API's output: a ``chat.completion`` as a ``response`` object, and the
stream of ``chat.completion.chunk`` dicts as the ``response.*`` events:

    response.created, response.in_progress                  at once
    response.output_item.added (message)                     the first text
      response.content_part.added, response.output_text.delta ...
      response.output_text.done, response.content_part.done, response.output_item.done
    response.output_item.added (function_call)               each tool call
      response.function_call_arguments.delta ...
      response.function_call_arguments.done, response.output_item.done
    response.completed (or response.incomplete)              the whole response and usage
    response.failed                                          a failure after the start

Every event has a ``sequence_number`` counting from 0. A keepalive tick (``None`` from the
core) is an SSE comment.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from actors.daemon.http.sse import KEEPALIVE, translated


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_id(completion: dict[str, Any]) -> str:
    """``resp_<job id>``: the job the run store keeps."""
    given = str(completion.get("id") or "")
    return "resp_" + (given.removeprefix("chatcmpl-") or uuid.uuid4().hex)


def message_item(text: str, item_id: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [output_text(text)] if status == "completed" else [],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call: dict[str, Any], item_id: str, status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.get("id") or new_id("call"),
        "name": function.get("name") or "",
        "arguments": (function.get("arguments") or "") if status == "completed" else "",
        "status": status,
    }


def output_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat ``message`` as Responses output items: its text, then its function calls."""
    items = []
    if message.get("content"):
        items.append(message_item(message["content"], new_id("msg")))
    for call in message.get("tool_calls") or ():
        items.append(call_item(call, new_id("fc")))
    if not items:
        items.append(message_item("", new_id("msg")))
    return items


def usage(chat_usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not chat_usage:
        return None
    given, made = chat_usage.get("prompt_tokens", 0), chat_usage.get("completion_tokens", 0)
    return {
        "input_tokens": given,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": made,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": chat_usage.get("total_tokens", given + made),
    }


def skeleton(request: dict[str, Any], resp_id: str, model: str) -> dict[str, Any]:
    """A ``response`` with no output yet (status ``in_progress``): what the request asked."""
    text = request.get("text") or {"format": {"type": "text"}}
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": model,
        "output": [],
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "metadata": request.get("metadata") or {},
        "parallel_tool_calls": request.get("parallel_tool_calls", True) is not False,
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "max_output_tokens": request.get("max_output_tokens"),
        "previous_response_id": None,
        "reasoning": request.get("reasoning"),
        "store": request.get("store", True) is not False,
        "text": text,
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
    }


def finished(
    response: dict[str, Any], finish_reason: str | None, chat_usage: dict[str, Any] | None
) -> dict[str, Any]:
    """``response`` completed (or incomplete, when the answer hit ``max_output_tokens``)."""
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        response["status"] = "completed"
    response["completed_at"] = int(time.time())
    response["usage"] = usage(chat_usage)
    return response


def response_object(completion: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` as a Responses ``response`` (the job result under
    ``orchestrord``, as in the chat door)."""
    choice = (completion.get("choices") or [{}])[0]
    model = str(completion.get("model") or request.get("model") or "")
    response = skeleton(request, response_id(completion), model)
    response["output"] = output_items(choice.get("message") or {})
    finished(response, choice.get("finish_reason"), completion.get("usage"))
    if "orchestrord" in completion:
        response["orchestrord"] = completion["orchestrord"]
    return response


# --- the stream ---------------------------------------------------------------------------


class ResponsesStream:
    """The state of one stream: the output items so far, and the next sequence number."""

    def __init__(self, request: dict[str, Any], resp_id: str, model: str) -> None:
        self.response = skeleton(request, resp_id, model)
        self.sequence = 0
        self.items: list[dict[str, Any]] = []  # the output, in order
        self.text: dict[str, Any] | None = None  # the open message item
        self.calls: dict[int, dict[str, Any]] = {}  # the chunk's tool-call index -> open item
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.result: Any = None

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        return event

    def _snapshot(self, kind: str) -> dict[str, Any]:
        return self.event(kind, response=copy.deepcopy(self.response))

    def start(self) -> list[dict[str, Any]]:
        return [self._snapshot("response.created"), self._snapshot("response.in_progress")]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chunk makes (often one, none for an empty delta)."""
        events: list[dict[str, Any]] = []
        extra = chunk.get("orchestrord")
        if isinstance(extra, dict) and extra.get("reset") and self.text is not None:
            self.text["content"][0]["text"] = ""  # the .done events carry the final text
        elif extra is not None:
            self.result = extra
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or ():
                events += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        events = []
        if self.text is None:
            self.text = message_item("", new_id("msg"), status="in_progress")
            self.items.append(self.text)
            index = len(self.items) - 1
            events.append(self.event("response.output_item.added", output_index=index,
                                     item=copy.deepcopy(self.text)))  # fmt: skip
            self.text["content"].append(output_text(""))
            events.append(
                self.event(
                    "response.content_part.added",
                    item_id=self.text["id"],
                    output_index=index,
                    content_index=0,
                    part=output_text(""),
                )
            )
        self.text["content"][0]["text"] += text
        events.append(
            self.event(
                "response.output_text.delta",
                item_id=self.text["id"],
                output_index=self.items.index(self.text),
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = call.get("index", 0)
        item = self.calls.get(index)
        function = call.get("function") or {}
        if item is None:
            events += self._close_text()
            item = call_item(call, new_id("fc"), status="in_progress")
            self.calls[index] = item
            self.items.append(item)
            events.append(self.event("response.output_item.added",
                                     output_index=len(self.items) - 1,
                                     item=copy.deepcopy(item)))  # fmt: skip
        elif function.get("name"):
            item["name"] += function["name"]
        piece = function.get("arguments") or ""
        if piece:
            item["arguments"] += piece
            events.append(
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self.items.index(item),
                    delta=piece,
                )
            )
        return events

    def _close_text(self) -> list[dict[str, Any]]:
        if self.text is None or self.text["status"] == "completed":
            return []
        item, index = self.text, self.items.index(self.text)
        item["status"] = "completed"
        part = item["content"][0]
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self.event("response.output_text.done", **ids, text=part["text"], logprobs=[]),
            self.event("response.content_part.done", **ids, part=copy.deepcopy(part)),
            self.event("response.output_item.done", output_index=index, item=copy.deepcopy(item)),
        ]

    def _close_call(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        index = self.items.index(item)
        item["status"] = "completed"
        return [
            self.event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            ),
            self.event("response.output_item.done", output_index=index, item=copy.deepcopy(item)),
        ]

    def complete(self) -> list[dict[str, Any]]:
        """The closing events: every open item done, then ``response.completed``."""
        events = self._close_text()
        for item in self.calls.values():
            events += self._close_call(item)
        if not self.items:  # an empty answer is still one message
            events += self._text_delta("")
            events += self._close_text()
        self.response["output"] = self.items
        finished(self.response, self.finish_reason, self.usage)
        if self.result is not None:
            self.response["orchestrord"] = self.result
        kind = "response.incomplete" if self.response["status"] == "incomplete" else ""
        return [*events, self._snapshot(kind or "response.completed")]

    def fail(self, status: int, code: str | None, message: str) -> list[dict[str, Any]]:
        """``response.failed``: the job failed after the stream began."""
        self.response["status"] = "failed"
        self.response["output"] = self.items
        wire_code = "rate_limit_exceeded" if status == 429 else "server_error"
        text = f"{code}: {message}" if code else message
        self.response["error"] = {"code": wire_code, "message": text}
        return [self._snapshot("response.failed")]


async def opened(
    chunks: AsyncIterator[dict[str, Any] | None],
) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any] | None]]:
    """The stream's first chunk (the core sends the role chunk at once: its id names the
    job) and the whole stream again. ``chunks`` is closed (its job cancelled) on failure."""
    try:
        head = await anext(chunks)
        while head is None:
            head = await anext(chunks)
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
        raise

    async def again() -> AsyncIterator[dict[str, Any] | None]:
        yield head
        async for item in chunks:
            yield item

    return head, again()


def events(
    state: ResponsesStream,
    chunks: AsyncIterator[dict[str, Any] | None],
) -> AsyncIterator[str]:
    """The SSE text of a stream: ``chunks`` from the core, an SSE comment for a
    keep-alive; a failure raised mid-stream ends it with ``response.failed``."""
    return translated(
        state,
        chunks,
        tick=KEEPALIVE,
        failed=lambda exc: state.fail(exc.status, exc.code, exc.message),
    )
