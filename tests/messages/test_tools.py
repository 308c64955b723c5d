"""Tool definitions, calls and choices: normalised for the vote, bad ones refused by name."""

from __future__ import annotations

import json

import pytest

from messages.codec import ask_params
from messages.commands import Ask
from messages.errors import InvalidParams
from messages.tools import (
    MAX_TOOLS,
    ToolCall,
    ToolChoice,
    ToolError,
    ToolSpec,
    check_offered,
    jsonable,
    parse_tool_choice,
    parse_tools,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tool(name: str, **function) -> dict:
    return {"type": "function", "function": {"name": name, **function}}


def test_a_tool_round_trips_in_the_openai_form() -> None:
    [spec] = parse_tools([WEATHER])
    assert spec.name == "get_weather" and spec.to_dict() == WEATHER
    assert spec.parameters == WEATHER["function"]["parameters"]


def test_arguments_are_canonical_whatever_their_order_and_spacing() -> None:
    a = ToolCall.from_dict(
        {
            "id": "1",
            "type": "function",
            "function": {"name": "f", "arguments": '{"b": 1, "a": [2]}'},
        }
    )
    b = ToolCall.create(id="2", name="f", arguments={"a": [2], "b": 1})
    assert a.arguments_json == b.arguments_json == '{"a":[2],"b":1}'
    assert a.key == b.key and a.arguments == {"a": [2], "b": 1}
    assert a.to_dict()["function"]["arguments"] == '{"a":[2],"b":1}'


def test_empty_arguments_are_an_empty_object_and_a_missing_id_is_made() -> None:
    call = ToolCall.create(name="now", arguments="  ")
    assert call.arguments == {} and call.id.startswith("call_")


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ("{city: Paris}", "not JSON"),
        ('{"x": NaN}', "not JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('"Paris"', "must be a JSON object, not str"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_arguments_that_are_not_a_json_object_are_refused(arguments, words) -> None:
    with pytest.raises(ToolError, match=words):
        ToolCall.create(id="1", name="f", arguments=arguments)


@pytest.mark.parametrize(
    ("tools", "words"),
    [
        ([], "non-empty list"),
        ([tool("ok")] * 2, "used twice"),
        ([tool("has space")], r"tools\[0\].function.name must match"),
        ([tool("x" * 65)], "name must match"),
        ([{"type": "web_search"}], "type 'function'"),
        (
            [tool("f", parameters={"type": "nonsense"})],
            r"tools\[0\].function.parameters is not a valid",
        ),
        (
            [tool("f", parameters={"properties": {"a": {"minimum": "ten"}}})],
            "not a valid JSON Schema",
        ),
        ([tool("f", parameters=[1])], "must be a JSON Schema object"),
        ([tool("f", colour="red")], r"unknown key\(s\) \['colour'\]"),
        ([tool("f", strict="yes")], "strict must be a boolean"),
    ],
)
def test_bad_tool_definitions_are_refused_naming_the_tool(tools, words) -> None:
    with pytest.raises(ToolError, match=words):
        parse_tools(tools)


def test_ten_thousand_tools_are_refused_before_any_is_checked() -> None:
    tools = [tool(f"f{i}", parameters={"type": "object"}) for i in range(10_000)]
    with pytest.raises(ToolError, match=f"10000 tools; at most {MAX_TOOLS}"):
        parse_tools(tools)
    assert len(parse_tools(tools[:MAX_TOOLS])) == MAX_TOOLS


def test_a_deeply_nested_or_huge_schema_is_refused_without_recursing() -> None:
    deep: dict = {"type": "object"}
    for _ in range(5000):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(ToolError, match="nests deeper"):
        parse_tools([tool("f", parameters=deep)])
    huge = {"type": "object", "description": "x" * 200_000}
    with pytest.raises(ToolError, match="larger than"):
        parse_tools([tool("f", parameters=huge)])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", ToolChoice(mode="auto")),
        ("none", ToolChoice(mode="none")),
        ("required", ToolChoice(mode="required")),
        ({"type": "function", "function": {"name": "f"}}, ToolChoice(mode="function", name="f")),
    ],
)
def test_tool_choice_forms(value, expected) -> None:
    choice = parse_tool_choice(value)
    assert choice == expected and choice.to_wire() == value


@pytest.mark.parametrize("value", ["always", {"type": "function"}, {"name": "f"}, 3])
def test_a_malformed_tool_choice_is_refused(value) -> None:
    with pytest.raises(ToolError, match="tool_choice must be"):
        parse_tool_choice(value)


def test_a_tool_choice_naming_an_unknown_function_is_refused_on_the_socket() -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    with pytest.raises(InvalidParams, match="names the function 'get_time', which tools lacks"):
        ask_params({"prompt": "q", "tools": [WEATHER], "tool_choice": choice})
    with pytest.raises(InvalidParams, match="tool_choice is given without tools"):
        ask_params({"prompt": "q", "tool_choice": "auto"})


def test_the_embedding_ask_takes_plain_values_and_checks_them_the_same_way() -> None:
    ask = Ask(prompt="q", tools=[WEATHER], tool_choice="required", stop="END")
    assert ask.tools == (ToolSpec.from_dict(WEATHER),)
    assert ask.tool_choice == ToolChoice(mode="required") and ask.stop == ("END",)
    with pytest.raises(InvalidParams, match="which tools lacks"):
        Ask(
            prompt="q", tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "x"}}
        )


def test_sampling_params_are_validated() -> None:
    out = ask_params(
        {"prompt": "q", "stop": ["a", "b"], "seed": -5, "top_p": 1, "reasoning_effort": "low"}
    )
    assert out["stop"] == ("a", "b") and out["seed"] == -5 and out["top_p"] == 1.0
    for params, words in [
        ({"stop": ["a"] * 5}, "stop must be"),
        ({"stop": ""}, "stop must be"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"top_p": 1.5}, "top_p must be"),
        ({"presence_penalty": -3}, "presence_penalty must be"),
        ({"frequency_penalty": "a"}, "frequency_penalty must be"),
        ({"reasoning_effort": "max"}, "reasoning_effort must be one of"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls must be a boolean"),
    ]:
        with pytest.raises(InvalidParams, match=words):
            ask_params({"prompt": "q", **params})


def test_a_call_to_a_function_not_offered_is_named() -> None:
    [spec] = parse_tools([WEATHER])
    call = ToolCall.create(id="1", name="rm_rf", arguments="{}")
    assert check_offered([call], [spec]) == "called the function 'rm_rf', which was not offered"
    assert (
        check_offered([ToolCall.create(id="2", name="get_weather", arguments="{}")], [spec]) is None
    )


def test_values_are_stored_as_plain_json() -> None:
    ask = Ask(prompt="q", tools=[WEATHER], tool_choice="auto")
    text = json.dumps({"tools": ask.tools, "tool_choice": ask.tool_choice}, default=jsonable)
    assert json.loads(text) == {"tools": [WEATHER], "tool_choice": "auto"}
