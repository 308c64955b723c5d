"""A Chat Completions request as a job's ``ask`` params (CONTRACT §9 and §13).

``model`` picks the workflow: ``orchestrord`` (the default pipeline), ``orchestrord/NAME``
(a named pipeline or a strategy) or a configured model's name (that model alone, through
its actor). A light task (``light.py``) goes to ``[http] light_model`` alone. Message
forms, tools and sampling fields pass through by name; the engine checks them (and sends
a turn ending in a tool result to the synthesizer alone unless ``[http] tool_results =
"ensemble"``); its ``invalid_params`` becomes a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.config import STRATEGIES, Config
from actors.daemon.http.errors import PREFIX, HttpError
from actors.daemon.http.fields import CHAT_FIELDS, bad, checked
from messages.codec import ask_params
from messages.errors import InvalidParams
from messages.options import OPTIONS_BY_NAME

ASK_PARAMS = frozenset(OPTIONS_BY_NAME)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """A checked request: the job's validated ``ask`` params and how to answer."""

    params: dict[str, Any]
    model: str  # as the client named it (echoed in every response)
    stream: bool
    include_usage: bool  # a last chunk with the usage (stream_options.include_usage)
    schema: bool  # the answer must validate against a JSON Schema: streams hold it
    route: str  # "ensemble", "model" or "light": who answers


def parse(body: Mapping[str, Any], config: Config, *, light: bool) -> ChatRequest:
    """``body`` as a ``ChatRequest``, or an ``HttpError`` (400 naming the field, 404 for
    an unknown model). ``light``: a housekeeping request (light_model answers it)."""
    fields = checked(dict(body), ASK_PARAMS)
    if "model" not in fields or not fields["model"]:
        raise bad("model", "is required: orchestrord, orchestrord/NAME or a model")
    if "messages" not in fields:
        raise bad("messages", "is required")
    params: dict[str, Any] = {}
    for name, value in fields.items():
        spec = CHAT_FIELDS[name]
        if spec.use == "ask":
            params[spec.to or name] = value
    if "max_completion_tokens" in fields:  # the newer name wins over max_tokens
        params["max_tokens"] = fields["max_completion_tokens"]
    params["metadata"] = _metadata(fields)
    schema = _schema(fields.get("response_format"))
    if schema is not None:
        params["schema"] = schema
    model = fields["model"]
    route = _route(params, model, config, light=light)
    options = fields.get("stream_options") or {}
    if set(options) - {"include_usage", "include_obfuscation"}:
        extra = sorted(set(options) - {"include_usage", "include_obfuscation"})[0]
        raise bad(f"stream_options.{extra}", "is not supported", "unsupported_parameter")
    if not isinstance(options.get("include_usage", False), bool):
        raise bad("stream_options.include_usage", "must be a boolean", "invalid_type")
    return ChatRequest(
        params=validated(params),
        model=model,
        stream=fields.get("stream", False),
        include_usage=options.get("include_usage", False),
        schema=schema is not None,
        route=route,
    )


def validated(params: dict[str, Any]) -> dict[str, Any]:
    """The engine's own check of ``ask`` params; its complaint is a 400 naming the field."""
    try:
        out = ask_params(params)
    except InvalidParams as exc:
        head = exc.message.split(" ", 1)[0]
        raise HttpError(400, exc.message, "invalid_params", param=_field(head)) from None
    out.pop("stream")
    return out


def _field(head: str) -> str | None:
    name = head.split("[", 1)[0].split(".", 1)[0].rstrip(":")
    if name == "max_tokens":
        return "max_completion_tokens"
    return name if name in CHAT_FIELDS else None


def _metadata(fields: Mapping[str, Any]) -> dict[str, Any]:
    metadata = dict(fields.get("metadata") or {})
    for name in ("user", "safety_identifier", "prompt_cache_key"):
        if name in fields:
            metadata[name] = fields[name]
    return metadata


def _route(params: dict[str, Any], model: str, config: Config, *, light: bool) -> str:
    """Who answers: fills ``params`` (pipeline, strategy, or one model's initial round)."""
    if model == PREFIX or model.startswith(PREFIX + "/"):
        name = model[len(PREFIX) + 1 :]
        if name in config.pipelines:
            params["pipeline"] = name
        elif name in STRATEGIES:
            params["strategy"] = name
        elif name:
            raise HttpError(
                404, f"no pipeline or strategy {name!r}", "model_not_found", param="model"
            )
    elif model in config.model_names:
        params.update(models=[model], rounds=["initial"])
        return "model"
    else:
        raise HttpError(
            404, f"the model {model!r} does not exist", "model_not_found", param="model"
        )
    if light and config.http.light_model:
        _alone(params, config.http.light_model)
        return "light"
    return "ensemble"


def _alone(params: dict[str, Any], model: str) -> None:
    for key in ("pipeline", "strategy"):
        params.pop(key, None)
    params.update(models=[model], rounds=["initial"])


def _schema(response_format: Any) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` as the job's JSON Schema (None: free text)."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad("response_format.json_schema.schema", "must be an object")
        return schema
    raise bad("response_format", f"type {kind!r} is not supported", "unsupported_parameter")
