"""Conversations (``messages``): each provider gets them in its own wire format, every
stage keeps the conversation's context, and bad conversations are refused."""

from __future__ import annotations

import json

import pytest
from daemon_helpers import rpc
from helpers import (
    WAIT,
    LoopbackServer,
    Recorder,
    Reply,
    completion,
    fake_models,
    gemini_content,
    ollama_stream,
)

from messages.conversation import Message
from messages.errors import InvalidParams

TALK = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
EARLIER = (
    Message(role="user", content="Capital of France?"),
    Message(role="assistant", content="Paris."),
)


def test_every_stage_keeps_the_conversation(start_orch) -> None:
    recorder = Recorder(lambda r: "Improved answer: Rome" if r.round_name == "meta" else "Rome")
    orch = start_orch({"models": fake_models(("a", "b"), reply=recorder)})
    result = orch.ask(messages=TALK, timeout=WAIT)  # initial, meta, synthesis
    assert result.status == "ok" and result.answer == "Rome"
    assert {r.round_name for r in recorder.requests} == {"initial", "meta", "synthesis"}
    for request in recorder.requests:
        assert request.history == EARLIER and request.system == "Be brief."
        assert "And of Italy?" in request.prompt
    assert {r.prompt for r in recorder.by_round("initial")} == {"And of Italy?"}


def test_a_bad_conversation_is_refused(start_orch) -> None:
    orch = start_orch({"models": fake_models(("a",))})
    for messages, words in [
        ([], "non-empty list"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "last"),
        ([{"role": "robot", "content": "hi"}], "role must be one of"),
        ([{"role": "user", "content": 5}], "content must be a string"),
        ([{"role": "user", "content": "hi", "colour": "x"}], r"unknown key\(s\) \['colour'\]"),
    ]:
        with pytest.raises(InvalidParams, match=words):
            orch.ask(messages=messages)
    with pytest.raises(InvalidParams, match="exactly one of prompt and messages"):
        orch.ask("q", messages=TALK)
    with pytest.raises(InvalidParams, match="system prompt once"):
        orch.ask(messages=TALK, system="Be long.")


# --- each provider's wire format --------------------------------------------------------


def one_call(start_orch, model: dict, environ: dict | None = None):
    orch = start_orch(
        {"models": [{"name": "m", "max_attempts": 1, **model}]}, environ=environ or {}
    )
    result = orch.ask(messages=TALK, rounds=["initial"], timeout=WAIT)
    assert result.status == "ok", result.rounds
    return result


OPENAI_FORM = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]


def test_openai_gets_chat_messages(start_orch) -> None:
    with LoopbackServer() as server:
        server.default = Reply(body=completion("Rome"))
        one_call(start_orch, {"provider": "openai", "base_url": server.base_url})
        [body] = server.requests
    assert body["messages"] == OPENAI_FORM


def test_gemini_gets_contents_with_the_model_role_and_a_system_instruction(start_orch) -> None:
    with LoopbackServer() as server:
        server.default = Reply(body=gemini_content("Rome"))
        one_call(
            start_orch,
            {"provider": "gemini", "base_url": server.root_url},
            {"GEMINI_API_KEY": "test-key-123"},
        )
        [body] = server.requests
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "Capital of France?"),
        ("model", "Paris."),
        ("user", "And of Italy?"),
    ]
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_llama_gets_chat_messages_in_both_dialects(start_orch, api) -> None:
    with LoopbackServer() as server:
        server.default = Reply(
            body=ollama_stream("Rome") if api == "ollama" else completion("Rome")
        )
        base = server.root_url if api == "ollama" else server.base_url
        one_call(start_orch, {"provider": "llama", "api": api, "base_url": base})
        [body] = server.requests
    assert body["messages"] == OPENAI_FORM


def test_the_socket_takes_and_stores_a_conversation(daemon) -> None:
    d = daemon({"models": fake_models(("a",), reply="Rome")})
    result = rpc(d, "ask", {"messages": TALK, "rounds": ["initial"]})["result"]
    assert result["answer"] == "Rome"
    record = rpc(d, "job", {"job_id": result["job_id"]})["result"]
    assert record["messages"] == TALK and record["prompt"] == "And of Italy?"
    both = rpc(d, "ask", {"prompt": "q", "messages": TALK})
    assert both["error"]["code"] == -32602 and "exactly one" in both["error"]["message"]
    bad = rpc(d, "ask", {"messages": [{"role": "assistant", "content": "hi"}]})
    assert bad["error"]["code"] == -32602 and "last of messages" in bad["error"]["message"]


# --- issue 20: tool turns, and the sampling params reaching every call ---------------------

AGENT = [
    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
    {"role": "user", "content": "Weather in Paris?", "name": "ann"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
    {"role": "user", "content": "And tomorrow?"},
]


def test_tool_turns_reach_an_openai_model_as_tool_messages(start_orch) -> None:
    with LoopbackServer() as server:
        server.default = Reply(body=completion("Rain."))
        orch = start_orch(
            {"models": [{"name": "m", "provider": "openai", "base_url": server.base_url}]}
        )
        assert orch.ask(messages=AGENT, rounds=["initial"], timeout=WAIT).answer == "Rain."
        [body] = server.requests
    assert [m["role"] for m in body["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert body["messages"][0]["content"] == "Be brief."
    assert body["messages"][1]["name"] == "ann"
    assert body["messages"][2]["tool_calls"][0]["function"] == {"name": "w", "arguments": "{}"}
    assert body["messages"][3] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}


SAMPLED = {
    "stop": ["END"],
    "seed": 11,
    "top_p": 0.5,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "reasoning_effort": "low",
}


def test_sampling_params_reach_the_provider_from_the_socket_and_embedding(
    daemon, start_orch
) -> None:
    d = daemon({"models": fake_models(("a",), reply="{params}")})
    result = rpc(d, "ask", {"prompt": "q", "rounds": ["initial"], **SAMPLED})["result"]
    assert json.loads(result["answer"]) == SAMPLED
    orch = start_orch({"models": fake_models(("a",), reply="{params}")})
    embedded = orch.ask("q", rounds=["initial"], timeout=WAIT, **{**SAMPLED, "stop": "END"})
    assert json.loads(embedded.answer) == SAMPLED
    synthesized = orch.ask(
        "q", models=["a"], rounds=["initial", "synthesis"], timeout=WAIT, **SAMPLED
    )
    assert json.loads(synthesized.answer) == SAMPLED  # the synthesizer's call too


def test_bad_tool_params_are_refused_on_the_socket(daemon) -> None:
    d = daemon({"models": fake_models(("a",))})
    tool = {"type": "function", "function": {"name": "w", "parameters": {"type": 5}}}
    for params, words in [
        ({"tools": [tool]}, "tools[0].function.parameters is not a valid JSON Schema"),
        ({"tools": [{**tool, "function": {"name": "w"}}] * 2}, "used twice"),
        (
            {"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(10_000)]},
            "10000 tools; at most 128",
        ),
        (
            {
                "tools": [{"type": "function", "function": {"name": "w"}}],
                "tool_choice": {"type": "function", "function": {"name": "x"}},
            },
            "names the function 'x'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "image_url parts are not supported",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "tool", "tool_call_id": "zz", "content": "r"},
                ]
            },
            "matches no earlier assistant tool call",
        ),
    ]:
        asked = {"prompt": "q", **params} if "messages" not in params else params
        error = rpc(d, "ask", asked)["error"]
        assert error["code"] == -32602 and words in error["message"], (words, error)
