"""The llama adapter: httpx2 over real HTTP, Ollama NDJSON and OpenAI-compatible JSON."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest
from helpers import (
    DEEP,
    HUGE_INT,
    LoopbackServer,
    Reply,
    completion,
    odd_openai_bodies,
    ollama_stream,
    openai_error,
    single_reply,
)

from actors.providers.base import transport_error
from messages.errors import ConfigError
from messages.results import ModelReply


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def one_reply(start_orch, server: LoopbackServer, api: str, **model: Any) -> ModelReply:
    base = server.root_url if api == "ollama" else server.base_url
    model = {"name": "llama", "provider": "llama", "api": api, "base_url": base, **model}
    reply: ModelReply = single_reply(start_orch, model)
    return reply


def ok_body(api: str, text: str) -> bytes | dict:
    return ollama_stream(text) if api == "ollama" else completion(text)


# --- Ollama -----------------------------------------------------------------------------


def test_ollama_streams_the_answer_and_reads_eval_counts(start_orch, server) -> None:
    server.default = Reply(body=ollama_stream("two plus two is four", 17, 6))
    reply = one_reply(
        start_orch, server, "ollama", model="llama3.2:1b", max_tokens=32, temperature=0.5, seed=9
    )
    assert reply.ok and reply.text == "two plus two is four"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (17, 6)
    assert server.paths == ["/api/chat"]
    [body] = server.requests
    assert body["model"] == "llama3.2:1b" and body["stream"] is True
    assert body["options"] == {"temperature": 0.5, "num_predict": 32, "seed": 9}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json at all\n", "bad_response"),
        (ollama_stream("cut short", done=False), "bad_response"),
        (b'{"error": "model runner crashed"}\n', "provider_unavailable"),
        (b'["a list"]\n', "bad_response"),
        (b'{"message": {"content": "x"}, "done": true, "eval_count": 1e999}\n', "bad_response"),
        (
            b'{"message": {"content": "x"}, "done": true, "eval_count": ' + HUGE_INT + b"}\n",
            "bad_response",
        ),
        (DEEP + b"\n", "bad_response"),
    ],
    ids=["garbage", "no-done-line", "error-line", "wrong-shape", "inf", "huge-int", "deep"],
)
def test_ollama_bad_streams_give_clear_errors(start_orch, server, body, code) -> None:
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server, "ollama", max_attempts=1)
    assert reply.status == "error" and reply.error.code == code, reply.error


# --- both dialects ----------------------------------------------------------------------

APIS = ["ollama", "openai"]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_rejected_without_retry(start_orch, server, api, status) -> None:
    server.default = Reply(status=status, body=openai_error(status, "model not found"))
    reply = one_reply(start_orch, server, api, max_attempts=3)
    assert reply.status == "error" and reply.error.code == "provider_rejected"
    assert "model not found" in reply.error.message
    assert len(server.requests) == 1


@pytest.mark.parametrize("api", APIS)
def test_429_is_retried_after_retry_after(start_orch, server, api) -> None:
    stamps: list[float] = []

    def handler(body):
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            return Reply(status=429, body={"error": "busy"}, headers={"retry-after": "0.3"})
        return Reply(body=ok_body(api, "served"))

    server.handler = handler
    reply = one_reply(start_orch, server, api, max_attempts=3)
    assert reply.ok and reply.text == "served" and reply.attempts == 2
    assert stamps[1] - stamps[0] >= 0.3


@pytest.mark.parametrize("api", APIS)
def test_500_is_retried(start_orch, server, api) -> None:
    server.script = [Reply(status=500, body={"error": "boom"})]
    server.default = Reply(body=ok_body(api, "recovered"))
    reply = one_reply(start_orch, server, api, max_attempts=2)
    assert reply.ok and reply.text == "recovered" and len(server.requests) == 2


@pytest.mark.parametrize("api", APIS)
def test_a_hung_server_times_out(start_orch, server, api) -> None:
    server.default = Reply(hang=True)
    reply = one_reply(start_orch, server, api, timeout_s=0.3, max_attempts=1)
    assert reply.status == "timeout" and reply.error.code == "timeout"


@pytest.mark.parametrize("api", APIS)
def test_a_truncated_body_is_an_error_not_a_crash(start_orch, server, api) -> None:
    server.default = Reply(body=b'{"choices": [{"mess', truncate=True)
    reply = one_reply(start_orch, server, api, max_attempts=1)
    assert reply.status == "error"
    assert reply.error.code in ("bad_response", "provider_unavailable")


# --- OpenAI-compatible ------------------------------------------------------------------


def test_openai_dialect_posts_chat_completions_and_reads_usage(start_orch, server) -> None:
    server.default = Reply(body=completion("four", prompt_tokens=8, completion_tokens=2))
    reply = one_reply(start_orch, server, "openai", model="qwen", api_key_env="MY_LLAMA_KEY")
    assert reply.ok and reply.text == "four"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (8, 2)
    assert server.paths == ["/v1/chat/completions"]
    assert server.requests[0]["model"] == "qwen"


@pytest.mark.parametrize(
    "body",
    [b"<html>502</html>", b'{"choices": []}', b'{"x": 1}', b"[]", *odd_openai_bodies()],
)
def test_openai_dialect_garbage_is_bad_response(start_orch, server, body) -> None:
    server.default = Reply(body=body)
    reply = one_reply(start_orch, server, "openai", max_attempts=3)
    assert reply.status == "error" and reply.error.code == "bad_response", reply.error
    assert len(server.requests) == 1


def test_an_unknown_api_is_a_config_error() -> None:
    from actors.config import config_from_dict

    with pytest.raises(ConfigError, match=r"models\[0\]\.api"):
        config_from_dict({"models": [{"name": "l", "provider": "llama", "api": "grpc"}]})


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx2.ConnectTimeout("t"), "timeout"),
        (httpx2.ReadTimeout("t"), "timeout"),
        (httpx2.ConnectError("refused"), "provider_unavailable"),
        (httpx2.RemoteProtocolError("cut"), "provider_unavailable"),
        (json.JSONDecodeError("x", "doc", 0), "bad_response"),
        (httpx2.ReadError("other"), "provider_unavailable"),
    ],
)
def test_http_exceptions_map_to_ours(exc: Exception, code: str) -> None:
    assert transport_error(exc).code == code


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_a_refused_connection_says_so_plainly(start_orch, api) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = {"name": "llama", "provider": "llama", "api": api, "max_attempts": 1}
    reply = single_reply(start_orch, {**model, "base_url": f"http://127.0.0.1:{port}"})
    assert reply.status == "error" and reply.error.code == "provider_unavailable"
    assert reply.error.message.startswith("cannot reach the provider")
    assert "Max retries" not in reply.error.message  # requests' misleading wording
