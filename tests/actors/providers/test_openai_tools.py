"""Tools, tool turns and sampling on the OpenAI wire: the openai SDK (and llama.cpp's
OpenAI dialect) against a loopback server speaking chat completions, JSON and SSE."""

from __future__ import annotations

import pytest
from helpers import SSE, LoopbackServer, Reply, chunks, completion, sse
from wire import (
    CALL,
    SAMPLING,
    WEATHER,
    call,
    function,
    openai_call_chunks,
    openai_calls,
    request,
)

from messages.errors import BadResponse, ProviderRejected
from messages.tools import ToolCall

DIALECTS = [("openai", {}), ("llama", {"api": "openai"})]


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


@pytest.mark.parametrize(("provider", "options"), DIALECTS)
def test_tools_tool_turns_and_every_sampling_param_are_sent(server, provider, options) -> None:
    server.default = Reply(body=completion("It is sunny."))
    req = request(history=True, choice="required", sampling=SAMPLING, parallel_tool_calls=False)
    out = call(provider, server.base_url, req, **options)
    assert out.text == "It is sunny." and out.tool_calls == ()
    [body] = server.requests
    assert body["tools"] == [WEATHER] and body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["stop"] == ["END"] and body["top_p"] == 0.5 and body["seed"] == 7
    assert body["presence_penalty"] == 0.25 and body["frequency_penalty"] == -0.25
    assert body["reasoning_effort"] == "low"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {**CALL, "function": {**CALL["function"], "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ]  # a conversation ending with a tool result: no user turn after it


def test_a_named_tool_choice_goes_in_openai_form(server) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    server.default = Reply(body=completion("x"))
    call("openai", server.base_url, request(choice=choice))
    assert server.requests[0]["tool_choice"] == choice


def test_a_plain_call_sends_no_tool_or_sampling_fields(server) -> None:
    server.default = Reply(body=completion("x"))
    call("openai", server.base_url, request(tools=False))
    assert not {"tools", "tool_choice", "stop", "top_p", "reasoning_effort"} & set(
        server.requests[0]
    )


@pytest.mark.parametrize(("provider", "options"), DIALECTS)
def test_tool_calls_in_a_json_answer_are_parsed_and_normalised(server, provider, options) -> None:
    server.default = Reply(
        body=openai_calls(
            [
                function("get_weather", '{ "city" : "Paris" }', "call_a"),
                function("get_weather", '{"city": "Rome"}', "call_b"),
            ]
        )
    )
    out = call(provider, server.base_url, request(), **options)
    assert out.text == "" and out.finish_reason == "tool_calls"
    assert out.tool_calls == (
        ToolCall(id="call_a", name="get_weather", arguments_json='{"city":"Paris"}'),
        ToolCall(id="call_b", name="get_weather", arguments_json='{"city":"Rome"}'),
    )


@pytest.mark.parametrize(("provider", "options"), DIALECTS)
def test_streamed_tool_call_deltas_are_assembled(server, provider, options) -> None:
    pieces = ['{"ci', 'ty": ', '"Par', 'is"}']
    server.default = Reply(body=sse(openai_call_chunks("get_weather", pieces)), headers=SSE)
    out = call(provider, server.base_url, request(stream=True), **options)
    assert out.tool_calls == (
        ToolCall(id="call_s", name="get_weather", arguments_json='{"city":"Paris"}'),
    )
    assert out.usage is not None and out.usage.output_tokens == 6
    assert server.requests[0]["stream"] is True


def test_a_streamed_text_answer_still_streams(server) -> None:
    server.default = Reply(body=sse(chunks("It is sunny")), headers=SSE)
    req = request(stream=True)
    out = call("openai", server.base_url, req)
    assert out.text == "It is sunny" and out.tool_calls == ()


def test_a_stream_cut_in_the_middle_of_a_call_is_bad_response(server) -> None:
    events = openai_call_chunks("get_weather", ['{"city": "Pa'])[:2]
    server.default = Reply(body=sse(events, done=False), headers=SSE)
    with pytest.raises(BadResponse, match="middle of a tool call"):
        call("openai", server.base_url, request(stream=True))


@pytest.mark.parametrize("stream", [False, True])
def test_arguments_that_are_not_json_fail_that_reply(server, stream) -> None:
    if stream:
        body = sse(openai_call_chunks("get_weather", ["{city: Paris"]))
        server.default = Reply(body=body, headers=SSE)
    else:
        server.default = Reply(body=openai_calls([function("get_weather", "{city: Paris")]))
    with pytest.raises(BadResponse, match="arguments of 'get_weather' is not JSON"):
        call("openai", server.base_url, request(stream=stream))


def test_a_call_to_a_function_not_offered_fails_that_reply(server) -> None:
    server.default = Reply(body=openai_calls([function("delete_everything", "{}")]))
    with pytest.raises(BadResponse, match="'delete_everything', which was not offered"):
        call("openai", server.base_url, request())
    with pytest.raises(BadResponse, match="not offered"):  # no tools at all
        call("openai", server.base_url, request(tools=False))
    with pytest.raises(BadResponse, match="not offered"):  # tool_choice none: none may be called
        call("openai", server.base_url, request(choice="none"))


def test_a_model_refusing_a_param_fails_the_reply_naming_it(server) -> None:
    message = "Unsupported parameter: 'reasoning_effort' is not supported with this model."
    server.default = Reply(status=400, body={"error": {"message": message, "type": "x"}})
    with pytest.raises(ProviderRejected, match="reasoning_effort"):
        call("openai", server.base_url, request(sampling=SAMPLING))


def test_several_calls_under_parallel_false_keep_the_first(server) -> None:
    server.default = Reply(
        body=openai_calls([function("get_weather", "{}", "a"), function("get_weather", "{}", "b")])
    )
    out = call("openai", server.base_url, request(parallel_tool_calls=False))
    assert [c.id for c in out.tool_calls] == ["a"]
