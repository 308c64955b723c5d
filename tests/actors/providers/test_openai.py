"""The openai adapter: the real SDK over real HTTP to a loopback server."""

from __future__ import annotations

import inspect
import socket
import time
from typing import Any

import httpx2
import openai
import pytest
from helpers import (
    OpenAIServer,
    Reply,
    completion,
    odd_openai_bodies,
    openai_error,
    single_reply,
)

from actors.providers.openai import translate_openai
from messages.errors import ProviderError, ProviderRejected
from messages.results import ModelReply


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


def one_reply(start_orch, base_url: str, **model: Any) -> ModelReply:
    model = {"name": "gpt", "provider": "openai", "base_url": base_url, **model}
    reply: ModelReply = single_reply(start_orch, model)
    return reply


def test_success_returns_text_and_usage_and_sends_the_chat_request(start_orch, server) -> None:
    server.default = Reply(body=completion("four", prompt_tokens=12, completion_tokens=3))
    reply = one_reply(
        start_orch,
        server.base_url,
        model="gpt-test",
        max_tokens=50,
        temperature=0.2,
        seed=7,
        price_in_per_mtok=1e6,
        price_out_per_mtok=2e6,
    )
    assert reply.ok and reply.text == "four"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (12, 3)
    assert reply.cost_usd == pytest.approx(12 * 1 + 3 * 2)
    [body] = server.requests
    assert body["model"] == "gpt-test"
    assert body["max_tokens"] == 50 and body["temperature"] == 0.2 and body["seed"] == 7
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "What is 2+2?"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_rejected_without_retry(start_orch, server, status: int) -> None:
    server.default = Reply(status=status, body=openai_error(status, "nope"))
    reply = one_reply(start_orch, server.base_url, max_attempts=3)
    assert reply.status == "error" and reply.error.code == "provider_rejected"
    assert "nope" in reply.error.message
    assert len(server.requests) == 1


def test_429_with_retry_after_is_retried_after_the_wait(start_orch, server) -> None:
    stamps: list[float] = []

    def handler(body):
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            return Reply(
                status=429, body=openai_error(429, "slow down"), headers={"retry-after-ms": "300"}
            )
        return Reply(body=completion("after the wait"))

    server.handler = handler
    reply = one_reply(start_orch, server.base_url, max_attempts=3)
    assert reply.ok and reply.text == "after the wait" and reply.attempts == 2
    assert stamps[1] - stamps[0] >= 0.3  # the pause was honoured (a lower bound only)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
def test_server_errors_are_retried(start_orch, server, status: int) -> None:
    server.script = [Reply(status=status, body=openai_error(status, "oops"))]
    server.default = Reply(body=completion("recovered"))
    reply = one_reply(start_orch, server.base_url, max_attempts=2)
    assert reply.ok and reply.text == "recovered"
    assert len(server.requests) == 2


def test_server_errors_give_up_after_the_attempts(start_orch, server) -> None:
    server.default = Reply(status=500, body=openai_error(500, "always broken"))
    reply = one_reply(start_orch, server.base_url, max_attempts=3)
    assert reply.status == "error" and reply.error.code == "provider_unavailable"
    assert len(server.requests) == 3 and reply.attempts == 3


def test_a_hung_server_times_out(start_orch, server) -> None:
    server.default = Reply(hang=True)
    reply = one_reply(start_orch, server.base_url, timeout_s=0.3, max_attempts=1)
    assert reply.status == "timeout" and reply.error.code == "timeout"


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b'{"unexpected": true}',
        b'{"choices": []}',
        b"[1, 2, 3]",
        b'{"choices": [{"message": {"role": "assistant", "content": null}}]}',
        b'{"trunc',
        *odd_openai_bodies(),
    ],
)
def test_garbage_bodies_give_a_clear_error_not_a_crash(start_orch, server, body: bytes) -> None:
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server.base_url, max_attempts=3)
    assert reply.status == "error" and reply.error.code == "bad_response", reply.error
    assert len(server.requests) == 1  # garbage is not retried


def test_a_refused_connection_is_provider_unavailable(start_orch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nobody listens
    reply = one_reply(start_orch, f"http://127.0.0.1:{port}/v1", max_attempts=1)
    assert reply.status == "error" and reply.error.code == "provider_unavailable"


def test_a_missing_api_key_fails_the_model_with_a_clear_message() -> None:
    from actors.config import config_from_dict
    from actors.providers import make_provider

    config = config_from_dict({"models": [{"name": "gpt", "provider": "openai"}]})
    with pytest.raises(ProviderRejected, match="OPENAI_API_KEY"):
        make_provider(config.models[0], {})


# --- every upstream error class maps to one of ours ---------------------------------------

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def make_error(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls``, whichever of the SDK's constructor shapes it takes."""
    response = httpx2.Response(418, request=REQUEST, headers={"retry-after": "2"})
    shapes = [
        lambda: cls("boom", response=response, body=None),
        lambda: cls(response=response, body=None),
        lambda: cls(request=REQUEST),
        lambda: cls("boom", REQUEST, body=None),
        lambda: cls("boom", unsent_messages=[]),
        lambda: cls("boom"),
    ]
    for shape in shapes:
        try:
            return shape()
        except TypeError:
            continue
    exc = cls.__new__(cls)  # e.g. LengthFinishReasonError(completion=...): isinstance is enough
    exc.args = ("boom",)
    return exc


OPENAI_ERRORS = sorted(
    {
        c
        for c in list(vars(openai).values())
        if inspect.isclass(c)
        and issubclass(c, openai.OpenAIError)
        and not c.__name__.startswith("_")
    },
    key=lambda c: c.__name__,
)
HTTPX_ERRORS = sorted(
    {
        c
        for c in list(vars(httpx2).values())
        if inspect.isclass(c) and issubclass(c, httpx2.TransportError | httpx2.TimeoutException)
    },
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("cls", OPENAI_ERRORS + HTTPX_ERRORS, ids=lambda c: c.__name__)
def test_every_known_upstream_error_maps_to_a_provider_error(cls) -> None:
    exc = make_error(cls)
    mapped = translate_openai(exc)
    assert isinstance(mapped, ProviderError), cls


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "provider_rejected", False),
        (401, "provider_rejected", False),
        (429, "rate_limited", True),
        (500, "provider_unavailable", True),
        (503, "provider_unavailable", True),
        (408, "provider_unavailable", True),
    ],
)
def test_status_errors_map_by_status(status: int, code: str, retryable: bool) -> None:
    response = httpx2.Response(status, request=REQUEST, headers={"retry-after": "2"})
    mapped = translate_openai(openai.APIStatusError("x", response=response, body=None))
    assert mapped.code == code and mapped.retryable is retryable
    if status == 429:
        assert mapped.retry_after == 2.0


def test_bugs_are_not_translated() -> None:
    assert translate_openai(AttributeError("a bug")) is None


def test_a_lone_surrogate_in_a_reply_is_replaced_not_passed_on(start_orch, server) -> None:
    server.default = Reply(body=b'{"choices": [{"message": {"content": "a\\ud800b"}}]}')
    reply = one_reply(start_orch, server.base_url)
    assert reply.ok and reply.text == "a\ufffdb"


def test_cached_prompt_tokens_are_charged_at_the_cache_read_price(start_orch, server) -> None:
    """OpenAI reports the prompt's cached part in ``prompt_tokens_details``; genai-prices
    charges it at the cache-read price (gpt-4o-mini: $0.075 against $0.15 per million)."""
    body = completion("four", prompt_tokens=2000, completion_tokens=10)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 1024}
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server.base_url, model="gpt-4o-mini")
    assert reply.ok and reply.usage.cached_tokens == 1024
    assert reply.usage.to_dict()["cached_input_tokens"] == 1024
    full = (2000 * 0.15 + 10 * 0.60) / 1e6
    assert reply.cost_usd == pytest.approx(full - 1024 * (0.15 - 0.075) / 1e6)


def test_an_implausible_cached_token_count_is_a_bad_response(start_orch, server) -> None:
    body = completion("four")
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": "lots"}
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server.base_url)
    assert reply.status == "error" and reply.error.code == "bad_response"
