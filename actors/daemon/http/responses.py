"""The Responses API door (CONTRACT §13), stateless: a ``POST /v1/responses`` request
becomes a Chat Completions body for the door's core, and the ``chat.completion`` it
returns becomes a ``response`` object (``responses_output``, with the stream's events).

Every request field of the API reference is applied or refused by name (``APPLIED``,
``REFUSED``, and the fields whose values decide: ``ACCEPTED_VALUES``). Nothing is kept
server-side for a later request: ``previous_response_id`` and ``conversation`` are
refused, and ``store: true`` is accepted but retrieves nothing later (the run store keeps
the job, under its orchestrord id, for ``orchestrctl runs``).

    input item                      Chat Completions message
    message (user/system/developer) same role; input_text parts joined
    message (assistant)             assistant; output_text (and refusal) parts joined
    function_call                   assistant tool_calls (merged into the turn before)
    function_call_output            tool (tool_call_id = call_id)
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from actors.daemon.http import core
from actors.daemon.http.refusal import Refused, check_fields
from actors.daemon.http.responses_output import (
    ResponsesStream,
    events,
    opened,
    response_id,
    response_object,
)
from actors.daemon.http.sse import HEADERS

# The request fields, each applied or refused by name (a test walks the SDK's list).
APPLIED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "reasoning",
        "metadata",
        "stream",
        "user",
        "safety_identifier",
        "prompt_cache_key",  # kept in the job's metadata; orchestrord's cache is by content
    }
)
# Fields accepted only with the values that change nothing here.
ACCEPTED_VALUES: dict[str, tuple[Any, ...]] = {
    "store": (True, False),  # stateless either way: nothing is retrievable by id later
    "background": (False,),
    "truncation": ("disabled",),
    "service_tier": ("auto", "default"),
    "stream_options": ({}, {"include_obfuscation": False}, {"include_obfuscation": True}),
    "include": ([], ["reasoning.encrypted_content"]),  # no reasoning items are ever returned
}
REFUSED = {
    "previous_response_id": "orchestrord's Responses API is stateless: send the whole input",
    "conversation": "orchestrord's Responses API is stateless: send the whole input",
    "prompt": "stored prompt templates are not supported",
    "max_tool_calls": "built-in tools are not supported",
    "top_logprobs": "logprobs are not supported",
    "context_management": "server-side context management is not supported",
    "access_programs": "access programs are not supported",
    "background_options": "background responses are not supported",
    "image": "image options are not supported (no image generation)",
    "moderation": "moderation is not supported",
    "prompt_cache_options": "prompt cache options are not supported",
    "prompt_cache_retention": "prompt cache retention is not supported",
}
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
PART_TEXT = {"input_text": "text", "output_text": "text", "refusal": "refusal"}


def routes(door: Any) -> list[BaseRoute]:
    """``POST /v1/responses`` on the door (its key, body limits and core)."""

    async def create(request: Request) -> Response:
        door.authorise(request)
        given = await door.read_json(request)
        body = chat_body(given)
        if body.get("stream") is not True:
            completion = await core.complete(door, body, headers=request.headers)
            return JSONResponse(response_object(completion, given))
        head, items = await opened(await core.chunks(door, body, headers=request.headers))
        state = ResponsesStream(given, response_id(head), str(head.get("model") or ""))
        stream = events(state, items)
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)

    return [Route("/v1/responses", create, methods=["POST"])]


def chat_body(request: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request as a Chat Completions body (raises ``Refused``)."""
    check_fields(
        request,
        applied=APPLIED,
        refused=REFUSED,
        accepted=ACCEPTED_VALUES,
        unknown="is not a field orchestrord's Responses API knows",
    )
    body: dict[str, Any] = {"model": request.get("model")}
    if "input" not in request or request["input"] is None:
        raise Refused("input", "is required", "missing_required_parameter")
    body["messages"] = messages(request["input"], request.get("instructions"))
    if request.get("tools"):
        body["tools"] = tools(request["tools"])
    if request.get("tool_choice") is not None:
        body["tool_choice"] = tool_choice(request["tool_choice"])
    for ours, theirs in (
        ("parallel_tool_calls", "parallel_tool_calls"),
        ("max_output_tokens", "max_completion_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("metadata", "metadata"),
        ("user", "user"),  # these three the core keeps in the job's metadata
        ("safety_identifier", "safety_identifier"),
        ("prompt_cache_key", "prompt_cache_key"),
    ):
        if request.get(ours) is not None:
            body[theirs] = request[ours]
    if request.get("text") is not None:
        body.update(_text(request["text"]))
    if request.get("reasoning") is not None:
        body.update(_reasoning(request["reasoning"]))
    if request.get("stream") is True:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def messages(items: Any, instructions: Any = None) -> list[dict[str, Any]]:
    """``input`` (a string or a list of items) and ``instructions`` as chat messages."""
    out: list[dict[str, Any]] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise Refused("instructions", "must be a string", "invalid_value")
        out.append({"role": "system", "content": instructions})
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise Refused("input", "must be a string or a non-empty list of items", "invalid_value")
    calls: set[str] = set()
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise Refused(where, "must be an object", "invalid_value")
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            _function_call(out, item, where, calls)
        elif kind == "function_call_output":
            out.append(_function_output(item, where, calls))
        else:
            raise Refused(f"{where}.type", f"{kind!r} items are not supported")
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise Refused(
            f"{where}.role",
            f"{role!r} is not user, assistant, system or developer",
            "invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise Refused(f"{where}.content", "must be a string or a list of parts", "invalid_value")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        key = PART_TEXT.get(kind) if isinstance(kind, str) else None
        if key is None or not isinstance(part.get(key), str):
            raise Refused(f"{where}.content[{j}]", f"{kind} parts are not supported")
        texts.append(part[key])
    return {"role": role, "content": "\n".join(texts)}


def _function_call(
    out: list[dict[str, Any]], item: dict[str, Any], where: str, calls: set[str]
) -> None:
    """A ``function_call`` item: a tool call on the assistant turn before it (or a new one)."""
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    for field, value in (("call_id", call_id), ("name", name), ("arguments", arguments)):
        if not isinstance(value, str) or (field != "arguments" and not value):
            raise Refused(f"{where}.{field}", "must be a non-empty string", "invalid_value")
    assert isinstance(call_id, str) and isinstance(arguments, str)
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise Refused(f"{where}.arguments", "must be the JSON text of an object", "invalid_value")
    calls.add(call_id)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: dict[str, Any], where: str, calls: set[str]) -> dict[str, Any]:
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str) or call_id not in calls:
        raise Refused(
            f"{where}.call_id", f"{call_id!r} matches no earlier function_call", "invalid_value"
        )
    if isinstance(output, list):
        output = _message({"role": "user", "content": output}, f"{where}.output")["content"]
    if not isinstance(output, str):
        raise Refused(
            f"{where}.output", "must be a string or a list of input_text parts", "invalid_value"
        )
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def tools(given: Any) -> list[dict[str, Any]]:
    """Responses function tools (flat) as Chat Completions tools (nested); others refused."""
    if not isinstance(given, list):
        raise Refused("tools", "must be a list", "invalid_value")
    out = []
    for i, tool in enumerate(given):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise Refused(f"tools[{i}]", f"{kind} tools are not supported (only function tools)")
        for field in ("defer_loading", "allowed_callers", "output_schema", "async"):
            if tool.get(field) not in (None, False):
                raise Refused(f"tools[{i}].{field}", "is not supported")
        function: dict[str, Any] = {"name": tool.get("name")}
        for field in ("description", "parameters", "strict"):
            if tool.get(field) is not None:
                function[field] = tool[field]
        out.append({"type": "function", "function": function})
    return out


def tool_choice(choice: Any) -> Any:
    if choice in ("none", "auto", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else choice
    if kind == "function" and isinstance(choice, dict):
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise Refused("tool_choice", f"{kind!r} is not supported (none, auto, required, a function)")


def _text(text: Any) -> dict[str, Any]:
    """``text.format`` as ``response_format``; ``text.verbosity`` is refused."""
    if not isinstance(text, dict):
        raise Refused("text", "must be an object", "invalid_value")
    if text.get("verbosity") is not None:
        raise Refused("text.verbosity", "is not supported")
    unknown = set(text) - {"format", "verbosity"}
    if unknown:
        raise Refused(f"text.{sorted(unknown)[0]}", "is not supported")
    spec = text.get("format")
    kind = spec.get("type") if isinstance(spec, dict) else None
    if spec is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        assert isinstance(spec, dict)
        inner = {k: spec[k] for k in ("name", "schema", "description", "strict") if k in spec}
        return {"response_format": {"type": "json_schema", "json_schema": inner}}
    raise Refused("text.format", f"{kind!r} is not supported (text, json_schema, json_object)")


def _reasoning(reasoning: Any) -> dict[str, Any]:
    """``reasoning.effort`` as ``reasoning_effort``. ``summary`` is accepted: no reasoning
    item is ever returned, as for any model that gives no summary."""
    if not isinstance(reasoning, dict):
        raise Refused("reasoning", "must be an object", "invalid_value")
    for field, value in reasoning.items():
        if field in ("summary", "generate_summary", "effort") or value is None:
            continue
        raise Refused(f"reasoning.{field}", "is not supported")
    effort = reasoning.get("effort")
    if effort is None:
        return {}
    if effort not in EFFORTS:
        raise Refused(
            "reasoning.effort", f"{effort!r} is not one of {', '.join(EFFORTS)}", "invalid_value"
        )
    return {"reasoning_effort": effort}
