"""Tools through the ensemble on the HTTP door (CONTRACT §13), with the real openai SDK:
the panel's agreed call comes back as an ordinary ``tool_calls`` message, streamed as
the deltas the SDK's stream helpers assemble; a turn that ends with a tool result goes to
the synthesizer alone; bad tool input is a 400 naming the field."""

from __future__ import annotations

import asyncio
import json

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


def test_an_agreed_call_is_a_tool_calls_message(daemon) -> None:
    d = panel(daemon)
    reply = client(d).chat.completions.create(model="orchestrord", messages=ASKED, tools=[TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    job = reply.model_extra["orchestrord"]
    assert job["tools"]["decided_by"] == "vote" and job["tools"]["confidence"] == 1.0


def test_the_sdk_stream_helper_assembles_the_streamed_call(daemon) -> None:
    d = panel(daemon)
    with client(d).chat.completions.stream(
        model="orchestrord", messages=ASKED, tools=[TOOL]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds and "content.delta" not in kinds
    (call,) = final.choices[0].message.tool_calls
    assert call.function.parsed_arguments == Weather(city="Paris")
    assert final.choices[0].finish_reason == "tool_calls"


def test_the_async_sdk_streams_tool_call_deltas_in_order(daemon) -> None:
    d = panel(daemon)

    async def run() -> list[dict]:
        async with openai.AsyncOpenAI(
            base_url=f"{d.url}/v1", api_key=KEY, max_retries=0, timeout=WAIT
        ) as api:
            stream = await api.chat.completions.create(
                model="orchestrord", messages=ASKED, tools=[TOOL], stream=True
            )
            return [
                d.model_dump(exclude_none=True)
                async for c in stream
                if c.choices
                for d in (c.choices[0].delta.tool_calls or [])
            ]

    deltas = asyncio.run(run())
    assert deltas[0]["index"] == 0 and deltas[0]["type"] == "function"
    assert deltas[0]["function"] == {"name": "weather", "arguments": ""}
    assert json.loads("".join(d["function"].get("arguments", "") for d in deltas)) == {
        "city": "Paris"
    }


def test_langchain_bind_tools_gets_the_panels_call(daemon) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    calls = [{"name": "City", "arguments": {"city": "Canberra"}}]
    d = start(daemon, models=fake_models(("a", "b", "c"), tool_calls=calls))
    chat = langchain_openai.ChatOpenAI(
        base_url=f"{d.url}/v1", api_key=KEY, model="orchestrord", max_retries=0, timeout=WAIT
    )
    message = chat.bind_tools([City]).invoke("Capital of Australia?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("City", {"city": "Canberra"})]
    by_call = chat.with_structured_output(City, method="function_calling")
    assert by_call.invoke("Capital of Australia?") == City(city="Canberra")
