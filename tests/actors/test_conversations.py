"""Conversations (``messages``): each provider gets them in its own wire format, every
stage keeps the conversation's context, and bad conversations are refused."""

from __future__ import annotations

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
