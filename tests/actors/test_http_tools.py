"""Tools through the ensemble on the HTTP door (CONTRACT §13), with the real openai SDK:
the panel's agreed call comes back as an ordinary ``tool_calls`` message, streamed as
the deltas the SDK's stream helpers assemble; a turn that ends with a tool result goes to
the synthesizer alone; bad tool input is a 400 naming the field."""

from __future__ import annotations

import httpx2
import openai
import pydantic
import pytest
from helpers import WAIT, fake_models
from test_http import KEY, QUESTION, client, start


class Weather(pydantic.BaseModel):
    city: str


class City(pydantic.BaseModel):
    city: str


TOOL = openai.pydantic_function_tool(Weather, name="weather")
CALL = [{"name": "weather", "arguments": {"city": "Paris"}}]
ASKED = [{"role": "user", "content": "Weather in Paris?"}]


def panel(daemon, **http):
    return start(daemon, models=fake_models(("a", "b", "c"), tool_calls=CALL), http_extra=http)


HISTORY = [
    *ASKED,
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
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
]


def models_asked(reply) -> list[list[str]]:
    rounds = reply.model_extra["orchestrord"]["rounds"]
    return [sorted(r["model"] for r in rnd["replies"]) for rnd in rounds]


def test_a_turn_ending_with_a_tool_result_goes_to_the_synthesizer_alone(daemon) -> None:
    d = start(
        daemon,
        models=fake_models(("a", "b"), reply="It is sunny."),
        pipeline={"synthesizer": "b"},
    )
    reply = client(d).chat.completions.create(model="orchestrord", messages=HISTORY, tools=[TOOL])
    assert reply.choices[0].message.content == "It is sunny."
    assert models_asked(reply) == [["b"]]


def test_with_tool_results_ensemble_the_panel_answers_a_tool_result(daemon) -> None:
    d = start(
        daemon,
        models=fake_models(("a", "b"), reply="It is sunny."),
        http_extra={"tool_results": "ensemble"},
    )
    reply = client(d).chat.completions.create(model="orchestrord", messages=HISTORY, tools=[TOOL])
    assert models_asked(reply)[0] == ["a", "b"]


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": 5}}}]},
            "tools",
            "tools[0]",
        ),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "nope",
        ),
        (
            {
                "messages": [
                    *HISTORY[:2],
                    {"role": "tool", "tool_call_id": "call_9", "content": "x"},
                ]
            },
            "messages",
            "call_9",
        ),
        (
            {
                "tools": [TOOL],
                "messages": [
                    *ASKED,
                    {
                        **HISTORY[1],
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "weather", "arguments": "{"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "x"},
                ],
            },
            "messages",
            "arguments",
        ),
    ],
)
def test_bad_tool_input_is_a_400_naming_the_field(daemon, change, param, words) -> None:
    d = start(daemon)
    body = {"model": "orchestrord", "messages": ASKED, **change}
    response = httpx2.post(
        f"{d.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=WAIT,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_ten_thousand_tools_are_refused(daemon) -> None:
    d = start(daemon)
    tools = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(10_000)]
    with pytest.raises(openai.BadRequestError) as caught:
        client(d).chat.completions.create(model="orchestrord", messages=QUESTION, tools=tools)
    assert caught.value.body["param"] == "tools"


def test_the_synthesizer_for_a_tool_result_is_one_that_takes_tools(daemon) -> None:
    models = [
        {"name": "a", "provider": "fake", "reply": "no tools here", "supports_tools": False},
        {"name": "b", "provider": "fake", "reply": "It is sunny."},
    ]
    d = start(daemon, models=models)  # synthesizer auto: a would come first, untried
    reply = client(d).chat.completions.create(model="orchestrord", messages=HISTORY, tools=[TOOL])
    assert models_asked(reply) == [["b"]] and reply.choices[0].message.content == "It is sunny."
