"""Tools, tool turns and sampling on Gemini's wire: the google-genai SDK against a
loopback server speaking ``generateContent`` (JSON) and ``streamGenerateContent`` (SSE)."""

from __future__ import annotations

import json

import pytest
from helpers import SSE, LoopbackServer, Reply, gemini_content
from wire import SAMPLING, call, request

from messages.errors import BadResponse
from messages.tools import ToolCall

KEY = {"GEMINI_API_KEY": "test-key-123"}


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def gemini_calls(*calls: tuple[str, dict], text: str | None = None) -> dict:
    parts = [{"text": text}] if text else []
    parts += [{"functionCall": {"name": name, "args": args}} for name, args in calls]
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 7},
    }


def gemini(server, req, **options):
    return call("gemini", server.root_url, req, KEY, **options)


def test_tools_and_sampling_go_in_gemini_form(server) -> None:
    server.default = Reply(body=gemini_content("sunny"))
    req = request(
        choice={"type": "function", "function": {"name": "get_weather"}}, sampling=SAMPLING
    )
    assert gemini(server, req).text == "sunny"
    [body] = server.requests
    [declaration] = body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    # the SDK writes this one key in snake case (the API's JSON parser takes both)
    schema = declaration.get("parametersJsonSchema") or declaration["parameters_json_schema"]
    assert schema["required"] == ["city"]
    assert body["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["get_weather"],
    }
    config = body["generationConfig"]
    assert config["stopSequences"] == ["END"] and config["topP"] == 0.5 and config["seed"] == 7
    assert config["presencePenalty"] == 0.25 and config["frequencyPenalty"] == -0.25
    assert list(config["thinkingConfig"].values()) == [1024]  # reasoning_effort low: budget


@pytest.mark.parametrize(
    ("choice", "mode"), [("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")]
)
def test_tool_choice_modes(server, choice, mode) -> None:
    server.default = Reply(body=gemini_content("x"))
    gemini(server, request(choice=choice))
    assert server.requests[0]["toolConfig"]["functionCallingConfig"] == {"mode": mode}


def test_a_tool_conversation_becomes_function_call_and_response_parts(server) -> None:
    server.default = Reply(body=gemini_content("It is sunny in Paris."))
    gemini(server, request(history=True))
    contents = server.requests[0]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    [called] = contents[1]["parts"]
    assert called["functionCall"] == {
        "id": "call_1",
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    assert called["thoughtSignature"]  # the documented value for calls Gemini did not write
    [answered] = contents[2]["parts"]
    assert answered["functionResponse"] == {
        "id": "call_1",
        "name": "get_weather",
        "response": {"output": "sunny"},
    }


def test_function_calls_are_parsed(server) -> None:
    server.default = Reply(
        body=gemini_calls(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"}))
    )
    out = gemini(server, request())
    assert out.text == ""
    assert [c.key for c in out.tool_calls] == [
        ("get_weather", '{"city":"Paris"}'),
        ("get_weather", '{"city":"Rome"}'),
    ]
    assert all(c.id.startswith("call_") for c in out.tool_calls)  # Gemini gives no ids


def test_streamed_function_calls_are_parsed(server) -> None:
    events = [
        gemini_calls(text="Let me check."),
        gemini_calls(("get_weather", {"city": "Paris"})),
    ]
    body = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events).encode()
    server.default = Reply(body=body, headers=SSE)
    out = gemini(server, request(stream=True))
    assert "streamGenerateContent" in server.paths[0]
    assert out.text == "Let me check."
    assert [c.key for c in out.tool_calls] == [("get_weather", '{"city":"Paris"}')]


def test_a_call_to_a_function_not_offered_fails_that_reply(server) -> None:
    server.default = Reply(body=gemini_calls(("launch", {})))
    with pytest.raises(BadResponse, match="'launch', which was not offered"):
        gemini(server, request())


def test_calls_keep_only_the_first_when_parallel_calls_are_off(server) -> None:
    server.default = Reply(body=gemini_calls(("get_weather", {"city": "A"}), ("get_weather", {})))
    out = gemini(server, request(parallel_tool_calls=False))
    assert [c.arguments for c in out.tool_calls] == [{"city": "A"}]
    assert isinstance(out.tool_calls[0], ToolCall)
