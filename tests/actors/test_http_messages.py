"""The Anthropic Messages API door (CONTRACT §13): the translation both ways, pure, with
the shapes checked against the anthropic SDK's own types; then the real anthropic SDK
against a real daemon over loopback (``messages.create``, ``messages.stream``, tools with
a ``tool_result`` turn, a bad key). At the end: every Chat Completions message form and
the sampling fields reach the provider (another helper's tests, kept)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import anthropic
import httpx2
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent, message_create_params
from daemon_helpers import rpc
from helpers import WAIT, fake_models
from test_http import KEY as CHAT_KEY
from test_http import client as chat_client
from test_http import start as start_chat

from actors.daemon.http import anthropic as a
from actors.daemon.http import anthropic_output as ao
from actors.daemon.http.anthropic_output import MessagesStream, events
from actors.daemon.http.errors import HttpError, StreamFailed

EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
ASKED = [{"role": "user", "content": "Weather in Paris?"}]


def base(**fields: Any) -> dict[str, Any]:
    return {"model": "orchestrord", "max_tokens": 100, "messages": ASKED, **fields}


def body(**fields: Any) -> dict[str, Any]:
    return a.chat_body(base(**fields))


def refused(request: dict[str, Any]) -> a.Refused:
    with pytest.raises(a.Refused) as caught:
        a.chat_body(request)
    assert caught.value.status == 400
    return caught.value


# --- the request --------------------------------------------------------------------------


def test_system_text_blocks_and_a_string_message_become_chat_messages() -> None:
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "Answer in French."}]  # fmt: skip
    assert body(system=system) == {
        "model": "orchestrord",
        "max_tokens": 100,
        "messages": [
            {"role": "system", "content": "Be brief.\nAnswer in French."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
    }


def test_tool_use_and_tool_result_blocks_become_tool_calls_and_tool_messages() -> None:
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should look.", "signature": "sig"},
            {"type": "text", "text": "Let me look."}, USE]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "text", "text": "And dress advice?"}]},
    ]  # fmt: skip
    assert a.messages(history) == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": "And dress advice?"},
    ]  # fmt: skip


def test_a_tool_result_marked_is_error_says_so_to_the_models() -> None:
    history = [
        *ASKED,
        {"role": "assistant", "content": [USE]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "is_error": True,
                                      "content": [{"type": "text", "text": "no network"}]}]},
    ]  # fmt: skip
    out = a.messages(history)
    assert out[1]["content"] is None
    assert out[-1] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": "[the tool reported an error] no network",
    }


def test_client_tools_become_function_tools() -> None:
    tool = {**WEATHER, "cache_control": {"type": "ephemeral"}, "strict": True}
    assert body(tools=[tool])["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["input_schema"],
                "description": "The weather in a city",
                "strict": True,
            },
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}},
             "parallel_tool_calls": False},
        ),
    ],
)  # fmt: skip
def test_tool_choice_is_mapped(choice: Any, expected: dict[str, Any]) -> None:
    out = body(tools=[WEATHER], tool_choice=choice)
    assert {k: out[k] for k in expected} == expected
    assert "parallel_tool_calls" in out or "parallel_tool_calls" not in expected


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 2048}, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, "high"),
        ({"type": "disabled"}, None),
        ({"type": "adaptive"}, None),
    ],
)
def test_extended_thinking_becomes_a_reasoning_effort(thinking: Any, effort: Any) -> None:
    assert body(thinking=thinking).get("reasoning_effort") == effort


def test_sampling_stop_sequences_metadata_and_output_config_are_passed_on() -> None:
    out = body(
        temperature=0.2,
        top_p=0.8,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        output_config={"effort": "max", "format": {"type": "json_schema",
                                                   "schema": {"type": "object"}}},
    )  # fmt: skip
    assert out["temperature"] == 0.2 and out["top_p"] == 0.8 and out["stop"] == ["END"]
    assert out["metadata"] == {"user_id": "u-1"} and out["reasoning_effort"] == "xhigh"
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }


# Every request field of the SDK's MessageCreateParams, and the sampling fields the API
# reference has always had (temperature, top_p, top_k): applied, accepted only with some
# values, or refused by name.
CLASSIC = {"temperature", "top_p", "top_k"}
APPLIED_SAMPLES: dict[str, tuple[Any, str | None, Any]] = {
    "model": ("claude-like", "model", "claude-like"),
    "messages": ([{"role": "user", "content": "Hi"}], "messages",
                 [{"role": "user", "content": "Hi"}]),
    "max_tokens": (7, "max_tokens", 7),
    "system": ("Be brief.", "messages", None),
    "tools": ([WEATHER], "tools", None),
    "tool_choice": ({"type": "any"}, "tool_choice", "required"),
    "temperature": (0.4, "temperature", 0.4),
    "top_p": (0.6, "top_p", 0.6),
    "stop_sequences": (["STOP"], "stop", ["STOP"]),
    "metadata": ({"user_id": "u"}, "metadata", {"user_id": "u"}),
    "stream": (True, "stream", True),
    "thinking": ({"type": "enabled", "budget_tokens": 20000}, "reasoning_effort", "high"),
    "output_config": ({"effort": "low"}, "reasoning_effort", "low"),
    "cache_control": ({"type": "ephemeral"}, None, None),
}  # fmt: skip
REFUSED_SAMPLES = {
    "top_k": 40,
    "container": "container_1",
    "mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}],
    "context_management": {"edits": []},
    "diagnostics": {"previous_message_id": "msg_1"},
    "inference_geo": "us",
    "user_profile_id": "up_1",
    "workspace_id": "wrkspc_1",
}
VALUE_SAMPLES: dict[str, tuple[Any, Any]] = {
    "service_tier": ("auto", "priority"),
    "speed": ("standard", "fast"),
}


def sdk_fields() -> set[str]:
    base_fields = set(message_create_params.MessageCreateParamsBase.__annotations__)
    return base_fields | set(message_create_params.MessageCreateParamsStreaming.__annotations__)


def test_every_request_field_of_the_sdk_is_applied_or_refused_by_name() -> None:
    known = set(a.APPLIED) | set(a.REFUSED) | set(a.ACCEPTED_VALUES)
    wanted = sdk_fields() | CLASSIC
    assert wanted <= known, f"not decided: {sorted(wanted - known)}"
    assert set(APPLIED_SAMPLES) == set(a.APPLIED)
    assert set(REFUSED_SAMPLES) == set(a.REFUSED)
    assert set(VALUE_SAMPLES) == set(a.ACCEPTED_VALUES)
    plain = body()
    for field, (value, key, expected) in APPLIED_SAMPLES.items():
        out = body(**{field: value})
        if key is None:
            assert out == plain, field  # a hint: accepted, and nothing changes
        else:
            assert out.get(key) != plain.get(key), field
            if expected is not None:
                assert out[key] == expected, field
    for field, value in REFUSED_SAMPLES.items():
        error = refused(base(**{field: value}))
        assert error.param == field and field in error.message
    for field, (good, bad) in VALUE_SAMPLES.items():
        assert body(**{field: good}) == plain, field
        assert refused(base(**{field: bad})).param == field


def test_an_unknown_field_is_refused_by_name() -> None:
    assert refused(base(frobnicate=1)).param == "frobnicate"


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        ({"model": "m", "messages": ASKED}, "max_tokens"),
        ({"max_tokens": 5, "messages": ASKED}, "model"),
        (base(max_tokens=0), "max_tokens"),
        (base(max_tokens="5"), "max_tokens"),
        (base(messages=[]), "messages"),
        (base(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (base(messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]),
         "messages[0].content[1]"),
        (base(messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "data": "x",
                                            "media_type": "text/plain"}}]}]),
         "messages[0].content[0]"),
        (base(messages=[*ASKED, {"role": "assistant", "content": "The weather is"}]),
         "messages"),
        (base(messages=[*ASKED, {"role": "assistant", "content": [{**USE, "input": "Paris"}]},
                        {"role": "user", "content": "?"}]), "messages[1].content[0].input"),
        (base(messages=[{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "18C"}]}]),
         "messages[0].content[0].tool_use_id"),
        (base(messages=[*ASKED, {"role": "assistant", "content": [USE]}, {"role": "user",
              "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                  {"type": "image", "source": {}}]}]}]), "messages[2].content[0].content[0]"),
        (base(system=[{"type": "text", "text": "x", "citations": [{"type": "x"}]}]),
         "system.content[0].citations"),
        (base(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0]"),
        (base(tools=[{"type": "bash_20250124", "name": "bash"}]), "tools[0]"),
        (base(tools=[{"name": "x"}]), "tools[0].input_schema"),
        (base(tools=[{**WEATHER, "input_examples": [{"city": "Paris"}]}]),
         "tools[0].input_examples"),
        (base(tool_choice={"type": "sometimes"}), "tool_choice"),
        (base(stop_sequences=["a", "b", "c", "d", "e"]), "stop_sequences"),
        (base(stop_sequences="END"), "stop_sequences"),
        (base(metadata={"team": "a"}), "metadata"),
        (base(thinking={"type": "enabled", "budget_tokens": 10}), "thinking.budget_tokens"),
        (base(output_config={"format": {"type": "regex"}}), "output_config.format"),
        (base(output_config={"effort": "maximal"}), "output_config.effort"),
    ],
)  # fmt: skip
def test_a_bad_or_unsupported_request_is_a_400_naming_the_field(
    request_: dict[str, Any], param: str
) -> None:
    error = refused(request_)
    assert error.param == param and error.message.startswith(param)


# --- the answer ---------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-job42",
        "object": "chat.completion",
        "model": "orchestrord",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        "orchestrord": {"job_id": "job42"},
    }


def test_a_text_answer_is_a_message_with_one_text_block() -> None:
    out = ao.message(completion({"role": "assistant", "content": "Hello."}), "orchestrord")
    message = Message.model_validate(out)  # the SDK's own type, validated
    assert message.id == "msg_job42" and message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Hello."
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 7)
    assert out["orchestrord"] == {"job_id": "job42"}


def test_tool_calls_are_tool_use_blocks_with_toolu_ids_and_parsed_input() -> None:
    calls = [{"id": "call_ab12", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]  # fmt: skip
    out = ao.message(completion({"role": "assistant", "content": None, "tool_calls": calls},
                               "tool_calls"), "orchestrord")  # fmt: skip
    message = Message.model_validate(out)
    (block,) = message.content
    assert block.type == "tool_use" and block.id == "toolu_ab12"
    assert block.name == "get_weather" and block.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"


def test_an_answer_cut_short_stops_for_max_tokens() -> None:
    out = ao.message(completion({"role": "assistant", "content": "Hel"}, "length"), "m")
    assert Message.model_validate(out).stop_reason == "max_tokens"


def test_tool_arguments_that_are_not_an_object_are_a_502_not_a_broken_message() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]
    with pytest.raises(HttpError) as caught:
        ao.message(completion({"role": "assistant", "tool_calls": calls}, "tool_calls"), "m")
    assert caught.value.status == 502


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "api_error"),
    ],
)
def test_errors_are_anthropic_error_bodies(status: int, kind: str) -> None:
    out = ao.error_body(HttpError(status, "why", "code", result={"job_id": "j"}))
    assert out["type"] == "error" and out["error"] == {"type": kind, "message": "why"}
    assert out["orchestrord"] == {"job_id": "j"}


# --- the stream ---------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


USAGE = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


async def replay(items: list[Any], fail: StreamFailed | None = None) -> Any:
    for item in items:
        yield item
    if fail is not None:
        raise fail


def run(items: list[Any], fail: StreamFailed | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event; each data validated as the SDK's event type."""
    state = MessagesStream("msg_job42", "orchestrord")

    async def collect() -> list[str]:
        return [text async for text in events(state, replay(items, fail))]

    out = []
    for text in asyncio.run(collect()):
        name, data = text.strip().split("\n")
        name, parsed = name.removeprefix("event: "), json.loads(data.removeprefix("data: "))
        assert parsed["type"] == name
        if name not in ("ping", "error"):
            EVENT.validate_python(parsed)
        out.append((name, parsed))
    return out


def test_a_text_stream_is_message_start_blocks_and_message_stop() -> None:
    got = run([
        chunk({"role": "assistant", "content": ""}),
        None,
        chunk({"content": "Hel"}),
        chunk({"content": "lo."}),
        chunk({}, "stop", orchestrord={"job_id": "job42"}),
        USAGE,
    ])  # fmt: skip
    assert [name for name, _ in got] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(d["delta"]["text"] for n, d in got if n == "content_block_delta") == "Hello."
    delta = got[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"] == {"input_tokens": 5, "output_tokens": 3}


def test_text_then_tool_calls_are_separate_blocks_with_input_json_deltas() -> None:
    def head(index: int, call_id: str) -> dict[str, Any]:
        return {"index": index, "id": call_id, "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip

    def args(index: int, text: str) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": index, "function": {"arguments": text}}]})

    got = run([
        chunk({"content": "Looking."}),
        chunk({"tool_calls": [head(0, "call_a")]}),
        args(0, '{"city": '),
        args(0, '"Paris"}'),
        chunk({"tool_calls": [head(1, "call_b")]}),
        args(1, '{"city": "Rome"}'),
        chunk({}, "tool_calls"),
    ])  # fmt: skip
    starts = [d for n, d in got if n == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "text"), (1, "tool_use"), (2, "tool_use")]  # fmt: skip
    assert starts[1]["content_block"]["id"] == "toolu_a"
    json_of = {}
    for name, data in got:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            json_of[data["index"]] = json_of.get(data["index"], "") + data["delta"]["partial_json"]
    assert {i: json.loads(t) for i, t in json_of.items()} == {1: {"city": "Paris"},
                                                             2: {"city": "Rome"}}  # fmt: skip
    assert [d["index"] for n, d in got if n == "content_block_stop"] == [0, 1, 2]
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_failure_after_the_start_is_an_error_event() -> None:
    got = run([chunk({"content": "Hel"})], StreamFailed(504, "the job timed out", "job_timeout"))
    error = {"type": "api_error", "message": "the job timed out"}
    assert got[-1] == ("error", {"type": "error", "error": error})


# --- end to end: the anthropic SDK against a real daemon ----------------------------------

KEY = "test-messages-key-0123456789"
REPLY = "It is 18C in Paris."
SCRIPT = [[{"name": "get_weather", "arguments": {"city": "Paris"}}], []]  # a call, then text


def start(spawn: Any, http: dict[str, Any] | None = None, **options: Any) -> Any:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "models": fake_models(("a", "b"), **{"reply": REPLY, **options}),
        "http": {"listen": f"127.0.0.1:{port}", **(http or {})},
    }
    d = spawn(config, env={"ORCHESTRORD_API_KEY": KEY})
    d.url = f"http://127.0.0.1:{port}"
    return d


def sdk(d: Any, **auth: str) -> anthropic.Anthropic:
    auth = auth or {"api_key": KEY}
    return anthropic.Anthropic(base_url=d.url, max_retries=0, timeout=WAIT, **auth)


def test_the_anthropic_sdk_creates_a_message(daemon: Any) -> None:
    d = start(daemon)
    reply = sdk(d).messages.create(
        model="orchestrord", max_tokens=200, system="Be brief.", messages=ASKED
    )
    assert reply.type == "message" and reply.role == "assistant"
    assert [b.type for b in reply.content] == ["text"] and reply.content[0].text == REPLY
    assert reply.stop_reason == "end_turn" and reply.usage.output_tokens > 0
    job = (reply.model_extra or {})["orchestrord"]
    assert reply.id == f"msg_{job['job_id']}"


def test_a_bearer_token_is_accepted_as_well_as_x_api_key(daemon: Any) -> None:
    d = start(daemon)
    reply = sdk(d, auth_token=KEY).messages.create(model="a", max_tokens=50, messages=ASKED)
    assert reply.content[0].text == REPLY


def test_the_sdk_stream_helper_gives_the_text_and_the_final_message(daemon: Any) -> None:
    d = start(daemon)
    with sdk(d).messages.stream(model="orchestrord", max_tokens=200, messages=ASKED) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY and final.content[0].text == REPLY
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_a_bad_key_is_an_authentication_error(daemon: Any) -> None:
    d = start(daemon)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(d, api_key="wrong").messages.create(model="a", max_tokens=50, messages=ASKED)
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_a_refused_block_is_a_bad_request_in_anthropics_error_body(daemon: Any) -> None:
    d = start(daemon)
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(d).messages.create(
            model="a", max_tokens=50, messages=[{"role": "user", "content": [image]}]
        )
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("messages[0].content[0]: image blocks")


def test_an_unknown_model_is_a_not_found_error(daemon: Any) -> None:
    d = start(daemon)
    with pytest.raises(anthropic.NotFoundError) as caught:
        sdk(d).messages.create(model="claude-nope", max_tokens=50, messages=ASKED)
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_a_stream_pings_while_the_panel_works_and_the_sdk_skips_the_pings(daemon: Any) -> None:
    d = start(daemon, http={"keepalive_s": 0.05}, latency_ms=300)
    request = {"model": "orchestrord", "max_tokens": 50, "messages": ASKED, "stream": True}
    with (
        httpx2.Client(timeout=WAIT) as http,
        http.stream(
            "POST", f"{d.url}/v1/messages", json=request, headers={"x-api-key": KEY}
        ) as reply,
    ):
        lines = [line for line in reply.iter_lines() if line]
    assert reply.headers["x-accel-buffering"] == "no"
    assert "event: ping" in lines
    assert lines[0] == "event: message_start" and lines[-2] == "event: message_stop"
    with sdk(d).messages.stream(model="orchestrord", max_tokens=50, messages=ASKED) as stream:
        assert stream.get_final_message().content[0].text == REPLY


def test_a_tool_result_turn_is_answered_by_the_synthesizer_alone(daemon: Any) -> None:
    d = start(daemon)
    history = [
        *ASKED,
        {"role": "assistant", "content": [USE]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "18C"}]},
    ]  # fmt: skip
    reply = sdk(d).messages.create(
        model="orchestrord", max_tokens=200, messages=history, tools=[WEATHER]
    )
    assert reply.content[0].text == REPLY and reply.stop_reason == "end_turn"
    rounds = (reply.model_extra or {})["orchestrord"]["rounds"]
    assert [len(r["replies"]) for r in rounds] == [1]


def test_sampling_fields_reach_the_provider(daemon: Any) -> None:
    d = start(daemon, reply="{params}")
    reply = sdk(d).messages.create(
        model="a", max_tokens=50, messages=ASKED, stop_sequences=["END"], extra_body={"top_p": 0.5}
    )
    received = json.loads(reply.content[0].text)
    assert received["top_p"] == 0.5 and received["stop"] == ["END"]


# --- Chat Completions message forms (written by another helper into this file in 736aa62,
# kept here verbatim but for the names of test_http's helpers) -----------------------------

FORMS = [
    {"role": "developer", "content": "Answer briefly."},
    {
        "role": "user",
        "name": "ann",
        "content": [{"type": "text", "text": "Weather"}, {"type": "text", "text": "in Paris?"}],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
    {"role": "user", "content": "And tomorrow?"},
]


def test_every_message_form_reaches_the_job(daemon) -> None:
    d = start_chat(daemon)
    reply = chat_client(d).chat.completions.create(model="a", messages=FORMS)
    assert reply.choices[0].message.content == "Canberra is the capital."
    record = rpc(d, "job", {"job_id": reply.id.removeprefix("chatcmpl-")})["result"]
    assert record["prompt"] == "And tomorrow?"
    assert [m["role"] for m in record["messages"]] == [m["role"] for m in FORMS]


def test_an_image_part_is_refused_by_name(daemon) -> None:
    d = start_chat(daemon)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {
        "model": "orchestrord",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
    }
    response = httpx2.post(
        f"{d.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {CHAT_KEY}"},
        timeout=WAIT,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages" and "messages[0].content[1]" in error["message"]
    assert "image_url" in error["message"]


def test_the_sampling_fields_reach_the_provider(daemon) -> None:
    d = start_chat(daemon, models=[{"name": "a", "provider": "fake", "reply": "{params}"}])
    reply = chat_client(d).chat.completions.create(
        model="a",
        messages=[{"role": "user", "content": "q"}],
        stop=["\n\n"],
        seed=7,
        top_p=0.5,
        presence_penalty=0.25,
        frequency_penalty=-0.25,
        reasoning_effort="low",
        max_completion_tokens=33,
        temperature=0.1,
    )
    received = json.loads(reply.choices[0].message.content)
    assert received["stop"] == ["\n\n"] and received["seed"] == 7 and received["top_p"] == 0.5
    assert received["presence_penalty"] == 0.25 and received["frequency_penalty"] == -0.25
    assert received["reasoning_effort"] == "low"


def test_tools_and_a_tool_result_turn(daemon: Any) -> None:
    d = start(daemon, tool_calls=SCRIPT)
    client = sdk(d)
    first = client.messages.create(
        model="orchestrord", max_tokens=200, messages=ASKED, tools=[WEATHER]
    )
    (use,) = first.content
    assert use.type == "tool_use" and use.id.startswith("toolu_")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    assert first.stop_reason == "tool_use"
    history = [
        *ASKED,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "18C"}]},
    ]  # fmt: skip
    second = client.messages.create(
        model="orchestrord", max_tokens=200, messages=history, tools=[WEATHER]
    )
    assert second.content[0].text == REPLY and second.stop_reason == "end_turn"


def test_a_streamed_tool_use_is_assembled_by_the_stream_helper(daemon: Any) -> None:
    d = start(daemon, tool_calls=SCRIPT)
    with sdk(d).messages.stream(
        model="orchestrord", max_tokens=200, messages=ASKED, tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    (use,) = final.content
    assert use.type == "tool_use" and use.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
