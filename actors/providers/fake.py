"""``fake``: scripted replies, for users' own tests and for our benchmarks.

Keys: ``reply`` — a string (``{model}``, ``{round}`` and ``{n}``, the call count, are
filled in), a list of strings used in turn, or, from Python, a callable taking the
``ProviderRequest`` and returning a string, a ``ProviderResponse`` or an awaitable of
either (it may also raise); ``latency_ms`` — added to every call, waited on the I/O
loop without a thread; ``fail_rate`` — probability (seeded by ``seed``) that a call
fails with ``provider_unavailable``.

Tools (for tests and benchmarks of the panel's vote): ``tool_calls`` — the calls a call
offered tools answers with (unless ``tool_choice`` is ``none``): a list of calls
(``{"name", "arguments"}`` with arguments an object or JSON text, or OpenAI's
``{"type": "function", "function": {...}}``), or a list of such lists used in turn; such
an answer has no text. ``supports_tools`` (default true): false makes a model that a tool
job leaves out. The reply's ``{params}`` placeholder is filled with the sampling params,
tools and tool choice the call received, as JSON (so a test through the socket sees what
reached the provider).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import random
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    estimate_tokens,
    tool_call,
)
from messages.errors import BadResponse, ConfigError, ProviderUnavailable
from messages.results import Usage
from messages.tools import ToolCall

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers


class FakeProvider(Provider):
    name = "fake"
    honours_seed = True
    supports_tools = True
    default_model = "fake"
    OPTIONS = {
        "reply": ((str, list, Callable), "fake answer from {model}"),  # type: ignore[dict-item]  # Callable is a valid isinstance target
        "latency_ms": ((int, float), 0.0),
        "fail_rate": ((int, float), 0.0),
        "tool_calls": ((list,), None),
        "supports_tools": ((bool,), True),
    }

    @classmethod
    def tools_supported(cls, config: ModelConfig) -> bool:
        return bool(config.options.get("supports_tools", True))

    @classmethod
    def validate_options(cls, prefix: str, options: Mapping[str, Any]) -> dict[str, Any]:
        out = super().validate_options(prefix, options)
        if not 0 <= out["fail_rate"] <= 1:
            raise ConfigError(f"{prefix}.fail_rate", "must be between 0 and 1")
        if out["latency_ms"] < 0:
            raise ConfigError(f"{prefix}.latency_ms", "must be >= 0")
        if isinstance(out["reply"], list):
            if not out["reply"] or not all(isinstance(r, str) for r in out["reply"]):
                raise ConfigError(f"{prefix}.reply", "a list of replies must hold strings")
            out["reply"] = tuple(out["reply"])
        if out["tool_calls"] is not None:
            out["tool_calls"] = _scripted_calls(f"{prefix}.tool_calls", out["tool_calls"])
        return out

    def __init__(self, config: ModelConfig, environ: Mapping[str, str], shared: Any = None) -> None:
        super().__init__(config, environ, shared)
        self._count = itertools.count(1)
        self._rng = random.Random(config.seed)

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        n = next(self._count)
        latency = float(self.option("latency_ms"))
        if latency:
            await asyncio.sleep(latency / 1000)
        if self._rng.random() < float(self.option("fail_rate")):
            raise ProviderUnavailable(f"{self.config.name}: scripted failure (fail_rate)")
        reply = self.option("reply")
        if callable(reply):
            out = reply(request)
            if inspect.isawaitable(out):
                out = await out
        elif isinstance(reply, tuple):
            out = reply[(n - 1) % len(reply)]
        else:
            out = reply
        if isinstance(out, ProviderResponse):
            for piece in pieces(out.text) if request.on_delta is not None else ():
                request.emit(piece)
            return out
        calls = self._calls(request, n)
        text = "" if calls else str(out)
        if not callable(reply):  # fill the documented placeholders only; JSON braces stay
            for key, value in (("model", self.config.name), ("round", request.round_name)):
                text = text.replace("{" + key + "}", value)
            text = text.replace("{n}", str(n)).replace("{params}", received(request))
        usage = Usage(
            input_tokens=estimate_tokens((request.system or "") + (request.prompt or "")),
            output_tokens=estimate_tokens(text + "".join(c.arguments_json for c in calls)),
        )
        if request.on_delta is not None:  # a streaming call gets the reply word by word
            for piece in pieces(text):
                request.emit(piece)
        return ProviderResponse(text=text, usage=usage, tool_calls=calls)

    def _calls(self, request: ProviderRequest, n: int) -> tuple[ToolCall, ...]:
        """The scripted calls of call ``n`` (fresh ids each time), if tools were offered."""
        script = self.option("tool_calls")
        if not script or not request.wants_tools:
            return ()
        turn = script[(n - 1) % len(script)]
        return tuple(tool_call(name, args) for name, args in turn)


def _scripted_calls(where: str, value: list[Any]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """``tool_calls`` as turns of (name, arguments) pairs; a flat list is one turn."""
    turns = value if value and all(isinstance(v, list) for v in value) else [value]
    out = []
    for i, turn in enumerate(turns):
        pairs = []
        for j, item in enumerate(turn):
            function = item.get("function", item) if isinstance(item, dict) else None
            try:
                if not isinstance(function, dict):
                    raise BadResponse("must be an object with name and arguments")
                call = tool_call(function.get("name"), function.get("arguments", "{}"))
            except BadResponse as exc:
                raise ConfigError(f"{where}[{i}][{j}]", exc.message) from None
            pairs.append((call.name, call.arguments_json))
        out.append(tuple(pairs))
    return tuple(out)


def received(request: ProviderRequest) -> str:
    """What the call received beyond its prompt, as JSON (the ``{params}`` placeholder)."""
    data = request.sampling.to_dict()
    data["seed"] = request.seed
    if request.tools:
        data["tools"] = [t.name for t in request.tools]
    if request.tool_choice is not None:
        data["tool_choice"] = request.tool_choice.to_wire()
    if request.parallel_tool_calls is not None:
        data["parallel_tool_calls"] = request.parallel_tool_calls
    return json.dumps(data, sort_keys=True)


def pieces(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back to it exactly."""
    return re.findall(r"\S+\s*|\s+", text)
