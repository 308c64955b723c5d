"""Every Chat Completions request field is applied or refused by name (CONTRACT §13):
the door's table against the openai SDK's own list of fields, and what each becomes."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from openai.types.chat import completion_create_params

from actors.config import config_from_dict
from actors.daemon.http import chat
from actors.daemon.http.errors import HttpError
from actors.daemon.http.fields import CHAT_FIELDS

CONFIG = config_from_dict(
    {
        "models": [
            {"name": "a", "provider": "fake"},
            {"name": "b", "provider": "fake"},
            {"name": "quick", "provider": "fake"},
        ],
        "pipelines": {"deep": {"stages": [{"kind": "initial"}, {"kind": "synthesis"}]}},
        "http": {"light_model": "quick"},
    }
)
ASK = [{"role": "user", "content": "Capital of Australia?"}]


def parse(light: bool = False, **body: Any) -> chat.ChatRequest:
    return chat.parse({"model": "orchestrord", "messages": ASK, **body}, CONFIG, light=light)


def refusal(**body: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        parse(**body)
    return caught.value


def test_the_table_holds_every_field_of_the_openai_reference() -> None:
    reference = set(typing.get_type_hints(completion_create_params.CompletionCreateParamsBase))
    reference |= {"stream"}  # the SDK adds it in its streaming and non-streaming subclasses
    assert reference - set(CHAT_FIELDS) == set(), "a reference field the door does not know"


# Each reference field with a value a client may send, and what the job gets (None:
# refused by name with a 400).
APPLIED: dict[str, tuple[Any, dict[str, Any] | None]] = {
    "max_completion_tokens": (50, {"max_tokens": 50}),
    "max_tokens": (60, {"max_tokens": 60}),
    "temperature": (0.2, {"temperature": 0.2}),
    "top_p": (0.5, {"top_p": 0.5}),
    "stop": (["\n\n"], {"stop": ("\n\n",)}),
    "seed": (7, {"seed": 7}),
    "presence_penalty": (0.5, {"presence_penalty": 0.5}),
    "frequency_penalty": (-0.5, {"frequency_penalty": -0.5}),
    "reasoning_effort": ("low", {"reasoning_effort": "low"}),
    "metadata": ({"team": "x"}, {"metadata": {"team": "x"}}),
    "user": ("u-1", {"metadata": {"user": "u-1"}}),
    "safety_identifier": ("s-1", {"metadata": {"safety_identifier": "s-1"}}),
    "prompt_cache_key": ("k-1", {"metadata": {"prompt_cache_key": "k-1"}}),
    "response_format": (
        {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "object"}}},
        {"schema": {"type": "object"}},
    ),
    "n": (1, {}),
    "logprobs": (False, {}),
    "top_logprobs": (0, {}),
    "logit_bias": ({}, {}),
    "modalities": (["text"], {}),
    "store": (False, {}),
    "service_tier": ("auto", {}),
    "verbosity": ("medium", {}),
    "stream": (True, {}),
    "stream_options": ({"include_usage": True}, {}),
    "parallel_tool_calls": (False, {"parallel_tool_calls": False}),
}
REFUSED = {
    "n": 2,
    "logprobs": True,
    "top_logprobs": 3,
    "logit_bias": {"50256": -100},
    "audio": {"voice": "alloy", "format": "mp3"},
    "modalities": ["text", "audio"],
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
    "store": True,
    "service_tier": "flex",
    "verbosity": "low",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {},
    "moderation": {},
    "functions": [{"name": "f"}],
    "function_call": "auto",
}


def test_every_field_is_walked_here() -> None:
    walked = set(APPLIED) | set(REFUSED) | {"messages", "model", "tools", "tool_choice"}
    assert set(CHAT_FIELDS) - walked == set()


@pytest.mark.parametrize("field", sorted(APPLIED))
def test_an_applied_field_reaches_the_job(field: str) -> None:
    value, expected = APPLIED[field]
    request = parse(**{field: value})
    assert expected is not None
    for key, want in expected.items():
        got = request.params[key]
        assert (dict(got) if key == "metadata" else got) == want, key


@pytest.mark.parametrize("field", sorted(REFUSED))
def test_a_refused_field_is_a_400_naming_it(field: str) -> None:
    error = refusal(**{field: REFUSED[field]})
    assert error.status == 400 and error.param == field and error.message.startswith(field)
    assert error.code == "unsupported_parameter"


def test_null_is_the_same_as_leaving_a_field_out() -> None:
    request = parse(**{name: None for name in CHAT_FIELDS if name not in ("model", "messages")})
    assert request.params["temperature"] is None and not request.stream


def test_an_unknown_field_is_a_400_naming_it() -> None:
    error = refusal(temprature=0.2)
    assert error.status == 400 and error.param == "temprature" and "temprature" in error.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", "yes"),
        ("user", 5),
        ("top_p", "x"),
        ("response_format", 3),
        ("temperature", True),
        ("seed", 1.5),
        ("max_tokens", "10"),
        ("metadata", ["a"]),
        ("messages", "hi"),
        ("tools", {}),
        ("stop", 3),
        ("parallel_tool_calls", "false"),
        ("stream_options", True),
    ],
)
def test_a_mistyped_field_is_a_400_naming_it(field: str, value: Any) -> None:
    error = refusal(**{field: value})
    assert error.status == 400 and error.param == field and error.code == "invalid_type"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"top_p": 3}, "top_p", "top_p"),
        ({"temperature": 9}, "temperature", "temperature"),
        ({"reasoning_effort": "huge"}, "reasoning_effort", "reasoning_effort"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "stop"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "boolean"),
        ({"stream_options": {"chunk": 1}}, "stream_options.chunk", "not supported"),
        ({"response_format": {"type": "xml"}}, "response_format", "xml"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages", "image"),
    ],
)
def test_a_value_the_engine_refuses_is_a_400_naming_the_field(body, param, words) -> None:
    error = refusal(**body)
    assert error.status == 400 and error.param == param and words in error.message


def test_model_names_route_the_job() -> None:
    assert parse().route == "ensemble"
    assert parse(model="orchestrord/deep").params["pipeline"] == "deep"
    assert parse(model="orchestrord/vote").params["strategy"] == "vote"
    alone = parse(model="b")
    assert alone.route == "model" and alone.params["models"] == ("b",)
    assert alone.params["rounds"] == ("initial",)
    for name in ("gpt-9", "orchestrord/nope"):
        error = refusal(model=name)
        assert error.status == 404 and error.param == "model" and error.code == "model_not_found"


def test_a_light_request_goes_to_the_light_model_alone() -> None:
    request = parse(light=True, model="orchestrord/deep")
    assert request.route == "light" and request.params["models"] == ("quick",)
    assert request.params["pipeline"] is None
    assert parse(light=True, model="b").params["models"] == ("b",)  # a model named wins
