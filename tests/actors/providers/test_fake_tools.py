"""The fake provider scripts tool calls (tests and benchmarks drive the panel's vote with
it) and echoes what reached it (``{params}``)."""

from __future__ import annotations

import asyncio
import json

import pytest
from wire import SAMPLING, call, request

from actors.config import ModelConfig
from actors.providers import call_provider, make_provider
from actors.providers.fake import FakeProvider
from messages.errors import BadResponse, ConfigError

SCRIPT = [
    [{"name": "get_weather", "arguments": {"city": "Paris"}}],
    [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}],
]


def test_scripted_calls_answer_in_turn_without_text() -> None:
    options = FakeProvider.validate_options("models[0]", {"tool_calls": SCRIPT, "reply": "text"})
    provider = make_provider(ModelConfig(name="f", provider="fake", options=options), {})

    async def three() -> list:
        return [await call_provider(provider, request()) for _ in range(3)]

    first, second, third = asyncio.run(three())
    assert first.text == "" and [c.arguments for c in first.tool_calls] == [{"city": "Paris"}]
    assert [c.arguments for c in second.tool_calls] == [{"city": "Rome"}]
    assert third.tool_calls[0].key == first.tool_calls[0].key
    assert first.tool_calls[0].id != third.tool_calls[0].id  # fresh ids, as models give


def test_no_calls_without_tools_or_with_tool_choice_none() -> None:
    for req in (request(tools=False), request(choice="none")):
        out = call("fake", "", req, tool_calls=SCRIPT[0], reply="in text")
        assert out.text == "in text" and out.tool_calls == ()


def test_a_script_calling_a_function_not_offered_fails_that_reply() -> None:
    with pytest.raises(BadResponse, match="'launch', which was not offered"):
        call("fake", "", request(), tool_calls=[{"name": "launch"}])


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ([{"name": "f", "arguments": "{oops"}], "is not JSON"),
        (["f"], "must be an object"),
        ([{"arguments": {}}], "function name must be a non-empty string"),
    ],
)
def test_a_bad_script_is_a_config_error_naming_the_call(script, words) -> None:
    with pytest.raises(ConfigError, match=rf"models\[0\].tool_calls\[0\]\[0\].*{words}"):
        FakeProvider.validate_options("models[0]", {"tool_calls": script})


def test_params_placeholder_echoes_what_reached_the_provider() -> None:
    out = call("fake", "", request(sampling=SAMPLING, choice="auto"), reply="{params}")
    assert json.loads(out.text) == {
        "stop": ["END"],
        "top_p": 0.5,
        "presence_penalty": 0.25,
        "frequency_penalty": -0.25,
        "reasoning_effort": "low",
        "seed": 7,
        "tools": ["get_weather"],
        "tool_choice": "auto",
    }
