"""The gemini adapter: the real google-genai SDK over real HTTP to a loopback server."""

from __future__ import annotations

import inspect
import time
from typing import Any

import pytest
from google.genai import errors as genai_errors
from helpers import (
    DEEP,
    HUGE_INT,
    LoopbackServer,
    Reply,
    gemini_content,
    gemini_error,
    single_reply,
)

from actors.config import config_from_dict
from actors.providers import make_provider
from actors.providers.gemini import retry_delay, translate_gemini
from messages.errors import ProviderError, ProviderRejected
from messages.results import ModelReply

ENV = {"GEMINI_API_KEY": "test-key-123"}


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def one_reply(start_orch, server: LoopbackServer, **model: Any) -> ModelReply:
    model = {"name": "gem", "provider": "gemini", "base_url": server.root_url, **model}
    reply: ModelReply = single_reply(start_orch, model, ENV)
    return reply


def test_success_returns_text_and_usage_with_a_system_instruction(start_orch, server) -> None:
    server.default = Reply(body=gemini_content("four", prompt_tokens=21, output_tokens=2))
    reply = one_reply(
        start_orch,
        server,
        model="gemini-test",
        max_tokens=64,
        temperature=0.1,
        seed=5,
        price_in_per_mtok=1e6,
        price_out_per_mtok=1e6,
    )
    assert reply.ok and reply.text == "four"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (21, 2)
    assert reply.cost_usd == pytest.approx(23)
    [body] = server.requests
    assert "gemini-test:generateContent" in server.paths[0]
    assert body["contents"][-1]["parts"][0]["text"] == "What is 2+2?"
    assert "expert assistants" in body["systemInstruction"]["parts"][0]["text"]
    assert body["generationConfig"] == {"temperature": 0.1, "maxOutputTokens": 64, "seed": 5}
    assert server.headers[0]["x-goog-api-key"] == "test-key-123"


@pytest.mark.parametrize(
    ("code", "status"),
    [(400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED")],
)
def test_client_errors_are_rejected_without_retry(start_orch, server, code, status) -> None:
    server.default = Reply(status=code, body=gemini_error(code, status, "no way"))
    reply = one_reply(start_orch, server, max_attempts=3)
    assert reply.status == "error" and reply.error.code == "provider_rejected"
    assert status in reply.error.message
    assert len(server.requests) == 1


def test_resource_exhausted_is_retried_after_its_retry_info_delay(start_orch, server) -> None:
    stamps: list[float] = []

    def handler(body):
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            return Reply(status=429, body=gemini_error(429, "RESOURCE_EXHAUSTED", "quota", "0.3s"))
        return Reply(body=gemini_content("after the quota"))

    server.handler = handler
    reply = one_reply(start_orch, server, max_attempts=3)
    assert reply.ok and reply.text == "after the quota" and reply.attempts == 2
    assert stamps[1] - stamps[0] >= 0.3


def test_server_errors_are_retried(start_orch, server) -> None:
    server.script = [Reply(status=500, body=gemini_error(500, "INTERNAL", "oops"))]
    server.default = Reply(body=gemini_content("recovered"))
    reply = one_reply(start_orch, server, max_attempts=2)
    assert reply.ok and reply.text == "recovered" and len(server.requests) == 2


def test_a_hung_server_times_out(start_orch, server) -> None:
    server.default = Reply(hang=True)
    reply = one_reply(start_orch, server, timeout_s=0.3, max_attempts=1)
    assert reply.status == "timeout" and reply.error.code == "timeout"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b'{"foo": 1}',
        b'{"candidates": []}',
        b"[]",
        b'{"candidates": [{"content": {"parts": []}, "finishReason": "SAFETY"}]}',
        b'{"candidates": [{"content": {"parts": [{"text": "hi"}]}}],'
        b' "usageMetadata": {"promptTokenCount": 1e999}}',
        b'{"candidates": [{"content": {"parts": [{"text": "hi"}]}}],'
        b' "usageMetadata": {"promptTokenCount": ' + HUGE_INT + b"}}",
        b'{"candidates": ' + DEEP + b"}",
    ],
)
def test_malformed_bodies_give_a_clear_error(start_orch, server, body: bytes) -> None:
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server, max_attempts=3)
    assert reply.status == "error" and reply.error.code == "bad_response", reply.error
    assert len(server.requests) == 1


def test_a_missing_key_is_named() -> None:
    config = config_from_dict({"models": [{"name": "g", "provider": "gemini"}]})
    with pytest.raises(ProviderRejected, match="GEMINI_API_KEY or \\$GOOGLE_API_KEY"):
        make_provider(config.models[0], {})


def test_google_api_key_also_works() -> None:
    config = config_from_dict({"models": [{"name": "g", "provider": "gemini"}]})
    provider = make_provider(config.models[0], {"GOOGLE_API_KEY": "k"})
    assert provider.name == "gemini"


def test_retry_delay_reads_retry_info() -> None:
    assert retry_delay(gemini_error(429, "RESOURCE_EXHAUSTED", "q", "12s")) == 12.0
    assert retry_delay(gemini_error(429, "RESOURCE_EXHAUSTED", "q")) is None
    assert retry_delay("not a dict") is None


GENAI_ERRORS = sorted(
    {
        c
        for c in list(vars(genai_errors).values())
        if inspect.isclass(c) and issubclass(c, Exception) and c.__module__ == genai_errors.__name__
    },
    key=lambda c: c.__name__,
)


def make_genai_error(cls: type[Exception]) -> Exception:
    if issubclass(cls, genai_errors.APIError):
        return cls(503, gemini_error(503, "UNAVAILABLE", "x"))
    for shape in (lambda: cls("boom"), lambda: cls()):
        try:
            return shape()
        except TypeError:
            continue
    exc = cls.__new__(cls)
    exc.args = ("boom",)
    return exc


@pytest.mark.parametrize("cls", GENAI_ERRORS, ids=lambda c: c.__name__)
def test_every_google_genai_error_maps_to_a_provider_error(cls) -> None:
    assert isinstance(translate_gemini(make_genai_error(cls)), ProviderError)


@pytest.mark.parametrize(
    ("code", "ours", "retryable"),
    [
        (400, "provider_rejected", False),
        (404, "provider_rejected", False),
        (429, "rate_limited", True),
        (503, "provider_unavailable", True),
    ],
)
def test_api_errors_map_by_code(code: int, ours: str, retryable: bool) -> None:
    error = genai_errors.APIError(code, gemini_error(code, "X", "m", "2s"))
    mapped = translate_gemini(error)
    assert mapped.code == ours and mapped.retryable is retryable
    if code == 429:
        assert mapped.retry_after == 2.0


def test_cached_content_tokens_are_charged_at_the_cache_read_price(start_orch, server) -> None:
    """Gemini reports the prompt's cached part as ``cachedContentTokenCount``;
    gemini-2.5-pro reads from its cache at $0.125 against $1.25 per million."""
    body = gemini_content("four", prompt_tokens=2000, output_tokens=10)
    body["usageMetadata"]["cachedContentTokenCount"] = 1000
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server, model="gemini-2.5-pro")
    assert reply.ok and reply.usage.cached_tokens == 1000
    full = (2000 * 1.25 + 10 * 10.0) / 1e6
    assert reply.cost_usd == pytest.approx(full - 1000 * (1.25 - 0.125) / 1e6)
