"""``fake``: scripted replies, for users' own tests and for our benchmarks.

Keys: ``reply`` — a string (``{model}``, ``{round}`` and ``{n}``, the call count, are
filled in), a list of strings used in turn, or, from Python, a callable taking the
``ProviderRequest`` and returning a string, a ``ProviderResponse`` or an awaitable of
either (it may also raise); ``latency_ms`` — added to every call, waited on the I/O
loop without a thread; ``fail_rate`` — probability (seeded by ``seed``) that a call
fails with ``provider_unavailable``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from actors.providers.base import Provider, ProviderRequest, ProviderResponse, estimate_tokens
from messages.errors import ConfigError, ProviderUnavailable
from messages.results import Usage

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers


class FakeProvider(Provider):
    name = "fake"
    honours_seed = True
    default_model = "fake"
    OPTIONS = {
        "reply": ((str, list, Callable), "fake answer from {model}"),  # type: ignore[dict-item]  # Callable is a valid isinstance target
        "latency_ms": ((int, float), 0.0),
        "fail_rate": ((int, float), 0.0),
    }

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
        text = str(out)
        if not callable(reply):  # fill the documented placeholders only; JSON braces stay
            for key, value in (("model", self.config.name), ("round", request.round_name)):
                text = text.replace("{" + key + "}", value)
            text = text.replace("{n}", str(n))
        usage = Usage(
            input_tokens=estimate_tokens((request.system or "") + request.prompt),
            output_tokens=estimate_tokens(text),
        )
        if request.on_delta is not None:  # a streaming call gets the reply word by word
            for piece in pieces(text):
                request.emit(piece)
        return ProviderResponse(text=text, usage=usage)


def pieces(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back to it exactly."""
    return re.findall(r"\S+\s*|\s+", text)
