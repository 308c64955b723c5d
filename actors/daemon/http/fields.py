"""Every request field of OpenAI's Chat Completions reference, and what the door does
with it: nothing is dropped silently (CONTRACT §13).

- ``ask``: passed to the job's ``ask`` param of the same name (or ``to``), where the
  engine checks its value; a field whose ``ask`` param this engine lacks is refused.
- ``door``: the door itself uses it (``model``, ``stream``, ``response_format``...).
- ``metadata``: kept in the job's metadata (the run store; ``runs`` finds it).
- ``default``: accepted only with its harmless default values (``n: 1``, ``logprobs:
  false``, ``modalities: ["text"]``, ``store: false``, ``service_tier: "auto"``...), else
  refused naming the field. An empty default list refuses every value but ``null``.
Any other field is refused by name. ``null`` is the same as leaving a field out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from actors.daemon.http.errors import HttpError

Use = Literal["ask", "door", "metadata", "default"]
JsonType = Literal["string", "bool", "int", "number", "object", "list"]


@dataclass(frozen=True, slots=True)
class Field:
    types: tuple[JsonType, ...]
    use: Use
    to: str | None = None  # the ask param (default: the field's own name)
    defaults: tuple[Any, ...] = ()  # for ``default``: the values accepted
    why: str = ""  # for ``default``: why other values are refused


_NO_AUDIO = "orchestrord answers in text only"
_NO_LOGPROBS = "an ensemble's answer has no token log-probabilities"
_DEPRECATED = "deprecated by OpenAI: send tools and tool_choice"

CHAT_FIELDS: dict[str, Field] = {
    "messages": Field(("list",), "ask"),
    "model": Field(("string",), "door"),
    "stream": Field(("bool",), "door"),
    "stream_options": Field(("object",), "door"),
    "response_format": Field(("object",), "door"),
    "max_completion_tokens": Field(("int",), "ask", to="max_tokens"),
    "max_tokens": Field(("int",), "ask"),
    "temperature": Field(("number",), "ask"),
    "top_p": Field(("number",), "ask"),
    "stop": Field(("string", "list"), "ask"),
    "seed": Field(("int",), "ask"),
    "presence_penalty": Field(("number",), "ask"),
    "frequency_penalty": Field(("number",), "ask"),
    "reasoning_effort": Field(("string",), "ask"),
    "tools": Field(("list",), "ask"),
    "tool_choice": Field(("string", "object"), "ask"),
    "parallel_tool_calls": Field(("bool",), "ask"),
    "metadata": Field(("object",), "metadata"),
    "user": Field(("string",), "metadata"),
    "safety_identifier": Field(("string",), "metadata"),
    "prompt_cache_key": Field(("string",), "metadata"),
    "n": Field(("int",), "default", defaults=(1,), why="an ensemble writes one answer"),
    "logprobs": Field(("bool",), "default", defaults=(False,), why=_NO_LOGPROBS),
    "top_logprobs": Field(("int",), "default", defaults=(0,), why=_NO_LOGPROBS),
    "logit_bias": Field(
        ("object",), "default", defaults=({},), why="no provider shares a tokenizer with the others"
    ),
    "modalities": Field(("list",), "default", defaults=(["text"],), why=_NO_AUDIO),
    "audio": Field(("object",), "default", why=_NO_AUDIO),
    "prediction": Field(("object",), "default", why="predicted outputs are OpenAI's alone"),
    "web_search_options": Field(("object",), "default", why="no model here searches the web"),
    "store": Field(
        ("bool",),
        "default",
        defaults=(False,),
        why="OpenAI's store is not kept (the run store keeps every job anyway)",
    ),
    "service_tier": Field(
        ("string",), "default", defaults=("auto", "default"), why="orchestrord has one service tier"
    ),
    "verbosity": Field(
        ("string",), "default", defaults=("medium",), why="no provider here takes a verbosity"
    ),
    "prompt_cache_retention": Field(
        ("string",), "default", why="orchestrord keeps no provider prompt caches"
    ),
    "prompt_cache_options": Field(
        ("object",), "default", why="orchestrord keeps no provider prompt caches"
    ),
    "moderation": Field(
        ("object", "string", "bool"), "default", why="orchestrord runs no moderation"
    ),
    "functions": Field(("list",), "default", why=_DEPRECATED),
    "function_call": Field(("string", "object"), "default", why=_DEPRECATED),
}

_CHECK: dict[JsonType, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
}
_WORD = {
    "string": "a string",
    "bool": "a boolean",
    "int": "an integer",
    "number": "a number",
    "object": "an object",
    "list": "an array",
}


def bad(field: str, message: str, code: str = "invalid_request_error") -> HttpError:
    return HttpError(400, f"{field} {message}", code, param=field)


def checked(body: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """``body`` without its nulls, every field known, of its type and allowed here;
    ``known``: the ask params this engine takes (an ``ask`` field it lacks is refused)."""
    unknown = sorted(set(body) - set(CHAT_FIELDS))
    if unknown:
        raise bad(
            unknown[0], "is not a Chat Completions field orchestrord knows", "unsupported_parameter"
        )
    out = {}
    for name, value in body.items():
        if value is None:
            continue
        spec = CHAT_FIELDS[name]
        if not any(_CHECK[t](value) for t in spec.types):
            wanted = " or ".join(_WORD[t] for t in spec.types)
            raise bad(name, f"must be {wanted}, got {type(value).__name__}", "invalid_type")
        if spec.use == "default" and value not in spec.defaults:
            allowed = f" (only {', '.join(map(repr, spec.defaults))})" if spec.defaults else ""
            raise bad(name, f"is not supported{allowed}: {spec.why}", "unsupported_parameter")
        if spec.use == "ask" and (spec.to or name) not in known:
            raise bad(name, "is not supported by this orchestrord", "unsupported_parameter")
        out[name] = value
    return out
