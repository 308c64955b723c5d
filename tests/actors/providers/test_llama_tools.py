"""Tools, tool turns and sampling on Ollama's ``/api/chat`` (NDJSON, tool calls with
arguments as objects) and in the embedded model's plain chat form (llama.cpp's server)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers import LoopbackServer, Reply, completion, ollama_stream
from wire import SAMPLING, WEATHER, call, ndjson, request

from actors.config import ModelConfig
from actors.providers import call_provider, supports_tools
from actors.providers.local import LocalProvider
from messages.commands import Sampling
from messages.errors import BadResponse, ProviderRejected


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def ollama_calls(*calls: dict, text: str = "") -> bytes:
    def line(message: dict, **extra) -> dict:
        return {"model": "m", "message": {"role": "assistant", **message}, **extra}

    return ndjson(
        [
            line({"content": text}, done=False),
            line({"content": "", "tool_calls": list(calls)}, done=False),
            line(
                {"content": ""}, done=True, done_reason="stop", prompt_eval_count=30, eval_count=8
            ),
        ]
    )


def ollama(server, req):
    return call("llama", server.root_url, req, api="ollama")


def test_ollama_gets_tools_tool_turns_and_sampling_in_its_own_form(server) -> None:
    server.default = Reply(body=ollama_stream("It is sunny"))
    out = ollama(server, request(history=True, sampling=SAMPLING))
    assert out.text == "It is sunny"
    [body] = server.requests
    assert server.paths == ["/api/chat"]
    assert body["tools"] == [WEATHER]
    assert body["options"] == {
        "temperature": 0.2,
        "num_predict": 50,
        "seed": 7,
        "stop": ["END"],
        "top_p": 0.5,
        "presence_penalty": 0.25,
        "frequency_penalty": -0.25,
    }
    assert body["think"] == "low"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [("none", None), ("required", ["get_weather", "get_time"]), ("get_time", ["get_time"])],
)
def test_ollama_tool_choice_picks_the_tools_sent(server, choice, sent) -> None:
    from messages.tools import parse_tools

    server.default = Reply(body=ollama_stream("x"))
    time = {"type": "function", "function": {"name": "get_time"}}
    wire = (
        choice
        if choice in ("none", "required")
        else {"type": "function", "function": {"name": choice}}
    )
    req = replace(request(choice=wire), tools=parse_tools([WEATHER, time]))
    ollama(server, req)
    tools = server.requests[0].get("tools")
    assert (None if tools is None else [t["function"]["name"] for t in tools]) == sent


@pytest.mark.parametrize("effort", ["none", "xhigh"])
def test_reasoning_effort_becomes_think(server, effort) -> None:
    server.default = Reply(body=ollama_stream("x"))
    ollama(server, request(sampling=Sampling(reasoning_effort=effort)))
    assert server.requests[0]["think"] == {"none": False, "xhigh": "high"}[effort]


def test_ollama_tool_calls_with_object_arguments_are_parsed(server) -> None:
    server.default = Reply(
        body=ollama_calls({"function": {"name": "get_weather", "arguments": {"city": "Paris"}}})
    )
    out = ollama(server, request(stream=True))
    assert [c.key for c in out.tool_calls] == [("get_weather", '{"city":"Paris"}')]
    assert out.text == "" and out.usage is not None and out.usage.input_tokens == 30


@pytest.mark.parametrize(
    ("calls", "words"),
    [
        ([{"function": {"name": "get_weather", "arguments": "{city"}}], "is not JSON"),
        ([{"function": {"name": "get_weather", "arguments": [1]}}], "must be a JSON object"),
        ([{"function": {"name": "rm", "arguments": {}}}], "'rm', which was not offered"),
        (["nonsense"], "without a function"),
    ],
)
def test_bad_ollama_calls_fail_that_reply(server, calls, words) -> None:
    server.default = Reply(body=ollama_calls(*calls))
    with pytest.raises(BadResponse, match=words):
        ollama(server, request())


# --- the embedded model: llama.cpp's OpenAI server, reached over loopback ------------------


class _Loopback:
    """Stands in for the llama.cpp process manager: the server is the loopback one."""

    def __init__(self, url: str) -> None:
        self.base_url, self.port = url, 1

    async def ensure(self) -> str:
        return self.base_url


class _Shared:
    def __init__(self, url: str) -> None:
        self.url = url

    def local_server(self, model_path: Path, n_ctx: int) -> _Loopback:
        return _Loopback(self.url)


def local_call(server, req):
    import asyncio

    config = ModelConfig(name="local-1", provider="local", options={"model_path": __file__})
    provider = LocalProvider(config, {}, _Shared(server.base_url))

    async def run():
        try:
            return await call_provider(provider, req)
        finally:
            await provider.aclose()

    return asyncio.run(run())


def test_the_local_model_takes_sampling_but_not_reasoning_effort(server) -> None:
    server.default = Reply(body=completion("sunny"))
    local_call(server, request(tools=False, sampling=SAMPLING))
    [body] = server.requests
    assert body["stop"] == ["END"] and body["top_p"] == 0.5 and body["seed"] == 7
    assert body["presence_penalty"] == 0.25 and body["frequency_penalty"] == -0.25
    assert "reasoning_effort" not in body and "tools" not in body


def test_the_local_model_gets_tool_turns_as_text_and_refuses_tools(server) -> None:
    server.default = Reply(body=completion("sunny"))
    local_call(server, request(history=True, choice="none"))
    assert server.requests[0]["messages"][1:] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": 'Call call_1: get_weather({"city":"Paris"})'},
        {"role": "user", "content": "Result of call_1:\nsunny"},
    ]
    with pytest.raises(ProviderRejected, match="does not take tools"):
        local_call(server, request())
    assert not supports_tools(config=ModelConfig(name="l", provider="local"))
    assert supports_tools(config=ModelConfig(name="o", provider="llama"))
    fake = ModelConfig(name="f", provider="fake", options={"supports_tools": False})
    assert not supports_tools(fake)
