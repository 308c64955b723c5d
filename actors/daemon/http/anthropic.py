"""The Anthropic Messages API door (CONTRACT §13): a ``POST /v1/messages`` request becomes
a Chat Completions body for the door's core, the ``chat.completion`` it returns becomes a
``message``, and errors are Anthropic's error body (``anthropic_output``, with the
stream's events).

Every request field is applied or refused by name (``APPLIED``, ``REFUSED``,
``ACCEPTED_VALUES``). Hints that change no answer (``cache_control``) are accepted.

    content block         Chat Completions
    text                  the message's text (blocks joined with newlines)
    tool_use (assistant)  tool_calls (arguments: the input as JSON text)
    tool_result (user)    a tool message before the user's text; is_error marks the text
    thinking (assistant)  left out, as the API itself leaves out earlier turns' thinking
    image, document, ...  refused by name
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from actors.daemon.http import core
from actors.daemon.http.anthropic_output import (
    MessagesStream,
    error_body,
    events,
    message,
    message_id,
)
from actors.daemon.http.errors import HttpError
from actors.daemon.http.refusal import Refused, check_fields
from actors.daemon.http.responses_output import opened
from actors.daemon.http.sse import HEADERS

APPLIED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "temperature",
        "top_p",
        "stop_sequences",
        "metadata",
        "stream",
        "thinking",
        "output_config",
        "cache_control",  # a cache hint: orchestrord's own cache is keyed by content
    }
)
ACCEPTED_VALUES: dict[str, tuple[Any, ...]] = {
    "service_tier": ("auto", "standard_only"),
    "speed": ("standard",),
}
REFUSED = {
    "top_k": "no provider behind orchestrord takes top_k; use temperature or top_p",
    "container": "code execution containers are not supported",
    "mcp_servers": "MCP servers on the request are not supported",
    "context_management": "server-side context management is not supported",
    "diagnostics": "diagnostics are not supported",
    "inference_geo": "inference regions are not supported",
    "user_profile_id": "user profiles are not supported",
    "workspace_id": "workspaces are not supported",
}
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
TOOL_FIELDS = {"name", "description", "input_schema", "strict", "type", "cache_control"}
TOOL_HINTS = {"eager_input_streaming"}  # tool inputs stream as they come either way
MAX_STOP = 4


def routes(door: Any) -> list[BaseRoute]:
    """``POST /v1/messages`` on the door: its key as ``x-api-key`` or a Bearer token, any
    ``anthropic-version``; every error in Anthropic's error body."""

    async def create(request: Request) -> Response:
        try:
            return await _create(door, request)
        except HttpError as exc:
            headers = exc.headers()
            return JSONResponse(error_body(exc), status_code=exc.status, headers=headers)

    return [Route("/v1/messages", create, methods=["POST"])]


async def _create(door: Any, request: Request) -> Response:
    door.authorise(request, x_api_key=True)
    given = await door.read_json(request)
    body = chat_body(given)
    if body.get("stream") is not True:
        completion = await core.complete(door, body, headers=request.headers)
        return JSONResponse(message(completion, str(given["model"])))
    head, items = await opened(await core.chunks(door, body, headers=request.headers))
    stream = events(MessagesStream(message_id(head), str(given["model"])), items)
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


def chat_body(request: dict[str, Any]) -> dict[str, Any]:
    """A Messages API request as a Chat Completions body (raises ``Refused``)."""
    check_fields(
        request,
        applied=APPLIED,
        refused=REFUSED,
        accepted=ACCEPTED_VALUES,
        unknown="Extra inputs are not permitted",
    )
    for field in ("model", "messages", "max_tokens"):
        if request.get(field) is None:
            raise Refused(field, "Field required", "missing_required_parameter")
    tokens = request["max_tokens"]
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise Refused("max_tokens", "must be an integer of at least 1", "invalid_value")
    body: dict[str, Any] = {"model": request["model"], "max_tokens": tokens}
    body["messages"] = messages(request["messages"], request.get("system"))
    if request.get("tools"):
        body["tools"] = tools(request["tools"])
    if request.get("tool_choice") is not None:
        body.update(tool_choice(request["tool_choice"]))
    for field in ("temperature", "top_p"):
        if request.get(field) is not None:
            body[field] = request[field]
    if request.get("stop_sequences") is not None:
        body["stop"] = _stop(request["stop_sequences"])
    if request.get("metadata") is not None:
        body["metadata"] = _metadata(request["metadata"])
    if request.get("thinking") is not None:
        body.update(_thinking(request["thinking"]))
    if request.get("output_config") is not None:
        body.update(_output_config(request["output_config"]))
    if request.get("stream") is True:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def messages(given: Any, system: Any = None) -> list[dict[str, Any]]:
    """``system`` and ``messages`` as chat messages."""
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": _text(system, "system")})
    if not isinstance(given, list) or not given:
        raise Refused("messages", "must be a non-empty list", "invalid_value")
    calls: set[str] = set()
    for i, turn in enumerate(given):
        where = f"messages[{i}]"
        role = turn.get("role") if isinstance(turn, dict) else None
        if role == "system":
            out.append({"role": "system", "content": _text(turn.get("content"), where)})
        elif role == "user":
            out += _user(turn.get("content"), where, calls)
        elif role == "assistant":
            out.append(_assistant(turn.get("content"), where, calls))
        else:
            raise Refused(f"{where}.role", f"{role!r} is not user or assistant", "invalid_value")
    if out[-1]["role"] == "assistant":
        raise Refused("messages", "a last assistant message (prefill) is not supported")
    return out


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise Refused(f"{where}.content", "must be a string or a list of blocks", "invalid_value")
    return content


def _text(content: Any, where: str) -> str:
    """The text of a string or a list of text blocks (any other block refused by name)."""
    texts = []
    for j, block in enumerate(_blocks(content, where)):
        texts.append(_block_text(block, f"{where}.content[{j}]"))
    return "\n".join(texts)


def _block_text(block: dict[str, Any], where: str) -> str:
    kind = block.get("type")
    if kind != "text":
        raise Refused(where, f"{kind} blocks are not supported here")
    if block.get("citations"):
        raise Refused(f"{where}.citations", "citations are not supported")
    if not isinstance(block.get("text"), str):
        raise Refused(f"{where}.text", "must be a string", "invalid_value")
    return str(block["text"])


def _user(content: Any, where: str, calls: set[str]) -> list[dict[str, Any]]:
    """A user turn: its tool results (as tool messages), then its text, if any."""
    out, texts = [], []
    for j, block in enumerate(_blocks(content, where)):
        here = f"{where}.content[{j}]"
        if block.get("type") == "tool_result":
            out.append(_tool_result(block, here, calls))
        else:
            texts.append(_block_text(block, here))
    if texts or not out:
        out.append({"role": "user", "content": "\n".join(texts)})
    return out


def _tool_result(block: dict[str, Any], where: str, calls: set[str]) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or call_id not in calls:
        raise Refused(f"{where}.tool_use_id", f"{call_id!r} matches no earlier tool_use",
                      "invalid_value")  # fmt: skip
    content = block.get("content")
    text = "" if content is None else _text(content, where)
    if block.get("is_error") is True:
        text = f"[the tool reported an error] {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _assistant(content: Any, where: str, calls: set[str]) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        here, kind = f"{where}.content[{j}]", block.get("type")
        if kind == "tool_use":
            tool_calls.append(_tool_use(block, here))
            calls.add(tool_calls[-1]["id"])
        elif kind in ("thinking", "redacted_thinking"):
            continue  # as the API does with the thinking of earlier turns
        else:
            texts.append(_block_text(block, here))
    turn: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
    if tool_calls:
        turn["tool_calls"] = tool_calls
    elif turn["content"] is None:
        turn["content"] = ""
    return turn


def _tool_use(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name, given = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id:
        raise Refused(f"{where}.id", "must be a non-empty string", "invalid_value")
    if not isinstance(name, str) or not name:
        raise Refused(f"{where}.name", "must be a non-empty string", "invalid_value")
    if not isinstance(given, dict):
        raise Refused(f"{where}.input", "must be an object", "invalid_value")
    arguments = json.dumps(given)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tools(given: Any) -> list[dict[str, Any]]:
    """Client tools (``name``, ``description``, ``input_schema``) as function tools; server
    tools (web search, bash, text editor, ...) are refused by their type."""
    if not isinstance(given, list):
        raise Refused("tools", "must be a list", "invalid_value")
    out = []
    for i, tool in enumerate(given):
        if not isinstance(tool, dict):
            raise Refused(f"tools[{i}]", "must be an object", "invalid_value")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise Refused(f"tools[{i}]", f"{kind} tools are not supported (client tools only)")
        for field, value in tool.items():
            if field not in TOOL_FIELDS | TOOL_HINTS and value not in (None, False, []):
                raise Refused(f"tools[{i}].{field}", "is not supported")
        if not isinstance(tool.get("input_schema"), dict):
            raise Refused(f"tools[{i}].input_schema", "Field required", "invalid_value")
        function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def tool_choice(choice: Any) -> dict[str, Any]:
    """``auto``/``any``/``tool``/``none`` as ``tool_choice`` (and ``parallel_tool_calls``)."""
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        assert isinstance(choice, dict)
        out: dict[str, Any] = {
            "tool_choice": {"type": "function", "function": {"name": choice.get("name")}}
        }
    elif kind in ("auto", "any", "none"):
        out = {"tool_choice": {"auto": "auto", "any": "required", "none": "none"}[kind]}
    else:
        raise Refused("tool_choice", f"{kind!r} is not auto, any, tool or none", "invalid_value")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def _stop(given: Any) -> list[str]:
    if not isinstance(given, list) or not all(isinstance(s, str) for s in given):
        raise Refused("stop_sequences", "must be a list of strings", "invalid_value")
    if len(given) > MAX_STOP:
        raise Refused("stop_sequences", f"at most {MAX_STOP} are supported", "invalid_value")
    return given


def _metadata(given: Any) -> dict[str, Any]:
    if not isinstance(given, dict) or set(given) - {"user_id"}:
        raise Refused("metadata", "may hold only user_id", "invalid_value")
    return {k: v for k, v in given.items() if v is not None}


def _thinking(thinking: Any) -> dict[str, Any]:
    """Extended thinking as ``reasoning_effort`` for providers that take it, by budget:
    under 4096 tokens low, under 16384 medium, else high. ``adaptive`` and
    ``between_tools`` leave it to the model. No thinking blocks are ever returned."""
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("disabled", "adaptive", "between_tools"):
        return {}
    if kind != "enabled":
        raise Refused("thinking.type", f"{kind!r} is not supported", "invalid_value")
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
        raise Refused("thinking.budget_tokens", "must be an integer >= 1024", "invalid_value")
    return {"reasoning_effort": "low" if budget < 4096 else "medium" if budget < 16384 else "high"}


def _output_config(config: Any) -> dict[str, Any]:
    """``output_config``: ``effort`` as ``reasoning_effort``, ``format`` (a JSON schema)
    as ``response_format``."""
    if not isinstance(config, dict):
        raise Refused("output_config", "must be an object", "invalid_value")
    out: dict[str, Any] = {}
    for field, value in config.items():
        if value is None:
            continue
        if field == "effort":
            if value not in EFFORTS:
                raise Refused("output_config.effort", f"{value!r} is not supported")
            out["reasoning_effort"] = EFFORTS[value]
        elif field == "format":
            if not isinstance(value, dict) or value.get("type") != "json_schema":
                raise Refused("output_config.format", "only json_schema is supported")
            schema = {"name": "output", "schema": value.get("schema")}
            out["response_format"] = {"type": "json_schema", "json_schema": schema}
        else:
            raise Refused(f"output_config.{field}", "is not supported")
    return out
