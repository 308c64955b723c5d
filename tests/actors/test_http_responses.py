"""The Responses API door (CONTRACT §13): the translation both ways, pure, with the
shapes checked against the openai SDK's own types; then the real openai SDK against a real
daemon over loopback (``client.responses.create``, streaming and not, function tools and a
``function_call_output`` turn)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from helpers import WAIT, fake_models
from openai.types.responses import Response, ResponseStreamEvent, response_create_params

from actors.daemon.http import responses as r
from actors.daemon.http import responses_output as ro
from actors.daemon.http.errors import StreamFailed
from actors.daemon.http.responses_output import ResponsesStream, events

EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": True,
}
CALL = {
    "type": "function_call",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city": "Paris"}',
}


def body(**fields: Any) -> dict[str, Any]:
    return r.chat_body({"model": "orchestrord", "input": "hi", **fields})


def refused(request: dict[str, Any]) -> r.Refused:
    with pytest.raises(r.Refused) as caught:
        r.chat_body(request)
    assert caught.value.status == 400
    return caught.value


# --- the request --------------------------------------------------------------------------


def test_a_string_input_and_instructions_become_a_system_and_a_user_message() -> None:
    out = r.chat_body({"model": "orchestrord", "input": "Hello", "instructions": "Be brief."})
    assert out == {
        "model": "orchestrord",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
    }


def test_message_items_with_text_parts_keep_their_roles_and_join_their_parts() -> None:
    items = [
        {"role": "developer", "content": "Answer in French."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Bonjour"},
                {"type": "input_text", "text": "ça va ?"},
            ],
        },
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Oui.", "annotations": []}],
        },
        {"role": "user", "content": "Et toi ?"},
    ]
    assert r.messages(items) == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Bonjour\nça va ?"},
        {"role": "assistant", "content": "Oui."},
        {"role": "user", "content": "Et toi ?"},
    ]


def test_function_calls_join_the_assistant_turn_and_their_outputs_become_tool_messages() -> None:
    second = {**CALL, "call_id": "call_2", "arguments": '{"city": "Rome"}'}
    items = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        CALL,
        second,
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": [{"type": "input_text", "text": "21C"}],
        },
    ]
    out = r.messages(items)
    assert out[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": '{"city": "Rome"}'}},
        ],
    }  # fmt: skip
    assert out[2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "21C"},
    ]


def test_a_function_call_after_assistant_text_is_part_of_that_message() -> None:
    items = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me look."},
        CALL,
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]
    out = r.messages(items)
    assert out[1]["content"] == "Let me look." and out[1]["tool_calls"][0]["id"] == "call_1"
    assert len(out) == 3


def test_function_tools_in_the_flat_shape_become_chat_tools() -> None:
    assert body(tools=[WEATHER])["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (
            {"type": "function", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_is_mapped(choice: Any, expected: Any) -> None:
    assert body(tools=[WEATHER], tool_choice=choice)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "text"}}, None),
        ({"format": {"type": "json_object"}}, {"type": "json_object"}),
        (
            {"format": {"type": "json_schema", "name": "city", "schema": {"type": "object"},
                        "strict": True}},
            {"type": "json_schema",
             "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True}},
        ),
    ],
)  # fmt: skip
def test_text_format_becomes_response_format(text: Any, expected: Any) -> None:
    assert body(text=text).get("response_format") == expected


def test_sampling_limits_effort_metadata_and_user_are_passed_on() -> None:
    out = body(
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=64,
        reasoning={"effort": "high", "summary": "auto"},
        metadata={"team": "a"},
        parallel_tool_calls=False,
        safety_identifier="user-7",
    )
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["max_completion_tokens"] == 64 and out["reasoning_effort"] == "high"
    assert out["metadata"] == {"team": "a"} and out["parallel_tool_calls"] is False
    assert out["safety_identifier"] == "user-7"


def test_a_stream_asks_the_core_for_the_usage_chunk() -> None:
    assert body(stream=True)["stream_options"] == {"include_usage": True}


# Every request field of the SDK's ResponseCreateParams: applied (a sample value reaches
# the Chat Completions body, or is a hint with no effect), accepted only with some
# values, or refused by name.
APPLIED_SAMPLES: dict[str, tuple[Any, str | None, Any]] = {
    "model": ("orchestrord/vote", "model", "orchestrord/vote"),
    "input": ("Hello", "messages", [{"role": "user", "content": "Hello"}]),
    "instructions": ("Be brief.", "messages", None),
    "tools": ([WEATHER], "tools", None),
    "tool_choice": ("required", "tool_choice", "required"),
    "parallel_tool_calls": (False, "parallel_tool_calls", False),
    "max_output_tokens": (32, "max_completion_tokens", 32),
    "temperature": (0.3, "temperature", 0.3),
    "top_p": (0.5, "top_p", 0.5),
    "text": ({"format": {"type": "json_object"}}, "response_format", {"type": "json_object"}),
    "reasoning": ({"effort": "low"}, "reasoning_effort", "low"),
    "metadata": ({"k": "v"}, "metadata", {"k": "v"}),
    "stream": (True, "stream", True),
    "user": ("u-1", "user", "u-1"),
    "safety_identifier": ("s-1", "safety_identifier", "s-1"),
    "prompt_cache_key": ("conversation-9", "prompt_cache_key", "conversation-9"),
}
REFUSED_SAMPLES = {
    "previous_response_id": "resp_123",
    "conversation": "conv_123",
    "prompt": {"id": "pmpt_1"},
    "max_tool_calls": 3,
    "top_logprobs": 2,
    "context_management": [{"type": "compaction", "compact_threshold": 1000}],
    "access_programs": {"cyber": "standard"},
    "background_options": {"completion_window": "2h"},
    "image": {"context_compression": "enabled"},
    "moderation": {"input": {"policy": "default"}},
    "prompt_cache_options": {"ttl": "30m"},
    "prompt_cache_retention": "24h",
}
VALUE_SAMPLES: dict[str, tuple[Any, Any]] = {  # (accepted, refused)
    "store": (True, None),
    "background": (False, True),
    "truncation": ("disabled", "auto"),
    "service_tier": ("auto", "flex"),
    "stream_options": ({"include_obfuscation": False}, {"include_usage": True}),
    "include": (["reasoning.encrypted_content"], ["file_search_call.results"]),
}


def sdk_fields() -> set[str]:
    fields = set(response_create_params.ResponseCreateParamsBase.__annotations__)
    return fields | set(response_create_params.ResponseCreateParamsStreaming.__annotations__)


def test_every_request_field_of_the_sdk_is_applied_or_refused_by_name() -> None:
    known = set(r.APPLIED) | set(r.REFUSED) | set(r.ACCEPTED_VALUES)
    assert sdk_fields() <= known, f"not decided: {sorted(sdk_fields() - known)}"
    assert set(APPLIED_SAMPLES) == set(r.APPLIED)
    assert set(REFUSED_SAMPLES) == set(r.REFUSED)
    assert set(VALUE_SAMPLES) == set(r.ACCEPTED_VALUES)
    base = body()
    for field, (value, key, expected) in APPLIED_SAMPLES.items():
        out = body(**{field: value})
        assert key is not None and (out.get(key) != base.get(key) or field == "model"), field
        if expected is not None:
            assert out[key] == expected, field
    for field, value in REFUSED_SAMPLES.items():
        error = refused({"model": "orchestrord", "input": "hi", field: value})
        assert error.param == field and field in error.message
    for field, (good, bad) in VALUE_SAMPLES.items():
        assert body(**{field: good}) == base, field
        if bad is not None:
            assert refused({"model": "m", "input": "hi", field: bad}).param == field


def test_an_unknown_field_is_refused_by_name() -> None:
    error = refused({"model": "orchestrord", "input": "hi", "frobnicate": 1})
    assert error.param == "frobnicate" and "frobnicate" in error.message


def test_previous_response_id_is_refused_because_the_door_is_stateless() -> None:
    error = refused({"model": "orchestrord", "input": "hi", "previous_response_id": "resp_1"})
    assert "stateless" in error.message


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": 7}, "input"),
        ({"model": "m", "input": ["hi"]}, "input[0]"),
        (
            {"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://x/y.png"}]}]},
            "input[0].content[1]",
        ),
        ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"model": "m", "input": [{**CALL, "arguments": "{not json"}]}, "input[0].arguments"),
        ({"model": "m", "input": [{**CALL, "arguments": "[1, 2]"}]}, "input[0].arguments"),
        ({"model": "m", "input": [{**CALL, "name": ""}]}, "input[0].name"),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "call_9",
                                      "output": "18C"}]},
            "input[0].call_id",
        ),
        (
            {"model": "m", "input": [CALL, {"type": "function_call_output", "call_id": "call_1",
                                            "output": {"x": 1}}]},
            "input[1].output",
        ),
        ({"model": "m", "input": "hi", "instructions": ["x"]}, "instructions"),
        ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"model": "m", "input": "hi", "tools": [{"type": "file_search",
                                                  "vector_store_ids": ["vs_1"]}]}, "tools[0]"),
        ({"model": "m", "input": "hi", "tools": {"type": "function"}}, "tools"),
        ({"model": "m", "input": "hi", "tools": [{**WEATHER, "defer_loading": True}]},
         "tools[0].defer_loading"),
        ({"model": "m", "input": "hi", "tool_choice": {"type": "web_search_preview"}},
         "tool_choice"),
        ({"model": "m", "input": "hi", "tool_choice": {"type": "allowed_tools", "mode": "auto",
                                                       "tools": []}}, "tool_choice"),
        ({"model": "m", "input": "hi", "text": {"verbosity": "low"}}, "text.verbosity"),
        ({"model": "m", "input": "hi", "text": {"format": {"type": "grammar"}}}, "text.format"),
        ({"model": "m", "input": "hi", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"model": "m", "input": "hi", "reasoning": {"mode": "pro"}}, "reasoning.mode"),
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
        "created": 1,
        "model": "orchestrord",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        "orchestrord": {"job_id": "job42", "status": "ok"},
    }


def test_a_text_answer_is_a_response_with_one_output_text_message() -> None:
    request = {"model": "orchestrord", "input": "hi", "instructions": "Be brief."}
    out = ro.response_object(completion({"role": "assistant", "content": "Hello."}), request)
    response = Response.model_validate(out)  # the SDK's own type, validated
    assert response.id == "resp_job42" and response.status == "completed"
    assert response.output_text == "Hello." and response.instructions == "Be brief."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    assert response.usage.total_tokens == 18
    assert out["orchestrord"] == {"job_id": "job42", "status": "ok"}


def test_tool_calls_are_function_call_items_with_the_call_ids() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_b", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ],
    }  # fmt: skip
    request = {"model": "orchestrord", "input": "hi", "tools": [WEATHER]}
    response = Response.model_validate(
        ro.response_object(completion(message, "tool_calls"), request)
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_weather", {"city": "Rome"}),
    ]
    assert all(c.id and c.id.startswith("fc_") for c in calls)
    assert response.tools[0].type == "function"


def test_an_answer_cut_at_max_output_tokens_is_incomplete() -> None:
    out = ro.response_object(completion({"role": "assistant", "content": "Hel"}, "length"), {})
    response = Response.model_validate(out)
    assert response.status == "incomplete"
    assert response.incomplete_details and response.incomplete_details.reason == "max_output_tokens"


# --- the stream ---------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-job42",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


USAGE = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


async def replay(items: list[Any], fail: StreamFailed | None = None) -> Any:
    for item in items:
        yield item
    if fail is not None:
        raise fail


def run(items: list[Any], fail: StreamFailed | None = None) -> list[str]:
    state = ResponsesStream({"model": "orchestrord", "input": "hi"}, "resp_job42", "orchestrord")

    async def collect() -> list[str]:
        return [text async for text in events(state, replay(items, fail))]

    return asyncio.run(collect())


def parsed(texts: list[str]) -> list[Any]:
    """Each SSE event validated as the SDK's ResponseStreamEvent; its event name is its type."""
    out = []
    for text in texts:
        if text.startswith(":"):
            continue
        name, data = text.strip().split("\n")
        event = EVENT.validate_python(json.loads(data.removeprefix("data: ")))
        assert name == f"event: {event.type}"
        out.append(event)
    assert [e.sequence_number for e in out] == list(range(len(out)))
    return out


def test_a_text_stream_is_the_response_events_in_order_with_the_final_text() -> None:
    texts = run([
        chunk({"role": "assistant", "content": ""}),
        None,
        chunk({"content": "Hel"}),
        chunk({"content": "lo."}),
        chunk({}, "stop", orchestrord={"job_id": "job42"}),
        USAGE,
    ])  # fmt: skip
    assert ": keepalive\n\n" in texts
    got = parsed(texts)
    assert [e.type for e in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "".join(e.delta for e in got if e.type == "response.output_text.delta") == "Hello."
    assert got[6].text == "Hello."
    final = got[-1].response
    assert final.output_text == "Hello." and final.status == "completed"
    assert final.usage is not None and final.usage.total_tokens == 8
    assert final.model_extra and final.model_extra["orchestrord"] == {"job_id": "job42"}


def test_a_tool_call_stream_is_function_call_events_with_the_arguments() -> None:
    head = {"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    texts = run([
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [head]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
    ])  # fmt: skip
    got = parsed(texts)
    assert [e.type for e in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert got[2].item.type == "function_call" and got[2].item.call_id == "call_a"
    assert got[5].arguments == '{"city": "Paris"}'
    (item,) = got[-1].response.output
    assert item.type == "function_call" and json.loads(item.arguments) == {"city": "Paris"}


def test_a_failure_after_the_start_ends_the_stream_with_response_failed() -> None:
    fail = StreamFailed(502, "every model failed", "round_failed")
    got = parsed(run([chunk({"role": "assistant", "content": ""})], fail))
    assert [e.type for e in got] == ["response.created", "response.in_progress", "response.failed"]
    error = got[-1].response.error
    assert got[-1].response.status == "failed"
    assert error is not None and error.code == "server_error"
    assert "round_failed" in error.message and "every model failed" in error.message


# --- end to end: the openai SDK against a real daemon -------------------------------------

KEY = "test-responses-key-0123456789"
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


def sdk(d: Any, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{d.url}/v1", api_key=key, max_retries=0, timeout=WAIT)


def test_the_openai_sdk_creates_a_response(daemon: Any) -> None:
    d = start(daemon)
    response = sdk(d).responses.create(
        model="orchestrord", input="Weather in Paris?", instructions="Be brief."
    )
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == REPLY and response.id.startswith("resp_")
    assert response.usage is not None and response.usage.output_tokens > 0
    job = (response.model_extra or {})["orchestrord"]
    assert response.id == f"resp_{job['job_id']}" and job["status"] == "ok"


def test_the_openai_sdk_streams_a_response(daemon: Any) -> None:
    d = start(daemon)
    stream = sdk(d).responses.create(model="orchestrord", input="Weather in Paris?", stream=True)
    got = list(stream)
    assert got[0].type == "response.created" and got[-1].type == "response.completed"
    assert [e.sequence_number for e in got] == list(range(len(got)))
    deltas = "".join(e.delta for e in got if e.type == "response.output_text.delta")
    assert deltas == REPLY and got[-1].response.output_text == REPLY


def test_the_sdk_stream_helper_assembles_the_final_response(daemon: Any) -> None:
    d = start(daemon)
    with sdk(d).responses.stream(model="a", input="Weather in Paris?") as stream:
        final = stream.get_final_response()
    assert final.output_text == REPLY


def test_a_refused_field_is_a_400_the_sdk_raises_naming_it(daemon: Any) -> None:
    d = start(daemon)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(d).responses.create(model="orchestrord", input="hi", previous_response_id="resp_1")
    assert caught.value.param == "previous_response_id"
    assert "stateless" in caught.value.message


def test_a_bad_key_is_a_401(daemon: Any) -> None:
    d = start(daemon)
    with pytest.raises(openai.AuthenticationError):
        sdk(d, key="wrong").responses.create(model="orchestrord", input="hi")


def test_an_unknown_model_is_a_404(daemon: Any) -> None:
    d = start(daemon)
    with pytest.raises(openai.NotFoundError):
        sdk(d).responses.create(model="no-such-model", input="hi")


def test_a_stream_keeps_alive_with_comments_while_the_panel_works(daemon: Any) -> None:
    d = start(daemon, http={"keepalive_s": 0.05}, latency_ms=300)
    request = {"model": "orchestrord", "input": "Weather in Paris?", "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        httpx2.Client(timeout=WAIT) as http,
        http.stream("POST", f"{d.url}/v1/responses", json=request, headers=headers) as reply,
    ):
        lines = [line for line in reply.iter_lines() if line]
    assert reply.headers["x-accel-buffering"] == "no"
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert ": keepalive" in lines
    assert lines[0] == "event: response.created" and lines[-2] == "event: response.completed"


def test_a_function_call_output_turn_is_answered_by_the_synthesizer_alone(daemon: Any) -> None:
    d = start(daemon)
    turn = [
        {"role": "user", "content": "Weather in Paris?"},
        CALL,
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]
    response = sdk(d).responses.create(model="orchestrord", input=turn, tools=[WEATHER])
    assert response.output_text == REPLY and [i.type for i in response.output] == ["message"]
    rounds = (response.model_extra or {})["orchestrord"]["rounds"]
    assert [len(r["replies"]) for r in rounds] == [1]


def test_sampling_fields_reach_the_provider(daemon: Any) -> None:
    d = start(daemon, reply="{params}")
    response = sdk(d).responses.create(
        model="a", input="hi", top_p=0.5, reasoning={"effort": "low"}
    )
    received = json.loads(response.output_text)
    assert received["top_p"] == 0.5 and received["reasoning_effort"] == "low"


def test_function_tools_and_a_function_call_output_turn(daemon: Any) -> None:
    d = start(daemon, tool_calls=SCRIPT)
    client = sdk(d)
    asked: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(model="orchestrord", input=asked, tools=[WEATHER])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert first.output_text == ""
    turn = [*asked, *first.output, {"type": "function_call_output", "call_id": call.call_id,
                                    "output": "18C"}]  # fmt: skip
    second = client.responses.create(model="orchestrord", input=turn, tools=[WEATHER])
    assert second.output_text == REPLY
    assert [item.type for item in second.output] == ["message"]


def test_a_streamed_function_call_arrives_as_function_call_events(daemon: Any) -> None:
    d = start(daemon, tool_calls=SCRIPT)
    events_: list[Any] = list(
        sdk(d).responses.create(
            model="orchestrord", input="Weather in Paris?", tools=[WEATHER], stream=True
        )
    )
    kinds = [e.type for e in events_]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events_ if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Paris"}
    (item,) = events_[-1].response.output
    assert item.type == "function_call" and item.name == "get_weather"
