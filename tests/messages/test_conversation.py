"""Every OpenAI message form becomes a ``Message``; anything else is refused by name."""

from __future__ import annotations

import pytest

from messages.codec import ask_params
from messages.conversation import Message, split, turns
from messages.errors import InvalidParams
from messages.tools import ToolCall

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
AGENT = [
    {
        "role": "developer",
        "content": [{"type": "text", "text": "Be"}, {"type": "text", "text": "brief."}],
    },
    {"role": "user", "content": "Weather?", "name": "ann"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
]


def test_every_message_form_is_read() -> None:
    system, user, assistant, result = turns(AGENT)
    assert system == Message(role="developer", content="Be\nbrief.")
    assert user == Message(role="user", content="Weather?", name="ann")
    assert assistant.content is None
    assert assistant.tool_calls == (ToolCall(id="call_1", name="f", arguments_json='{"x":1}'),)
    assert result == Message(role="tool", content="sunny", tool_call_id="call_1")
    assert [
        m.to_dict() for m in turns([m.to_dict() for m in (system, user, assistant, result)])
    ] == [m.to_dict() for m in (system, user, assistant, result)]


def test_a_conversation_ending_with_a_tool_result_keeps_every_turn_as_history() -> None:
    system, history, prompt = split(turns(AGENT))
    assert system == "Be\nbrief." and prompt == "Weather?"
    assert [m.role for m in history] == ["user", "assistant", "tool"]
    params = ask_params({"messages": AGENT})
    assert params["prompt"] == "Weather?" and params["system"] == "Be\nbrief."


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            r"messages\[0\].content\[0\]: image_url parts are not supported \(no model in this "
            r"job takes images\)",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}],
            r"content\[1\]: input_audio parts are not supported",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "tool", "tool_call_id": "nope", "content": "r"},
            ],
            r"messages\[1\].tool_call_id 'nope' matches no earlier assistant tool call",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}],
            r"messages\[1\].tool_call_id must be",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{oops"}}],
                },
                {"role": "user", "content": "q"},
            ],
            r"messages\[1\].tool_calls\[0\]: arguments of 'f' is not JSON",
        ),
        ([{"role": "user", "content": "q", "tool_calls": [CALL]}], "assistant message only"),
        ([{"role": "assistant", "content": None}], "content must be a string"),
        ([{"role": "user", "content": "q", "name": ""}], "name must be a non-empty string"),
        ([{"role": "user", "content": {"text": "q"}}], "content must be a string, null or a list"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "last of"),
    ],
)
def test_bad_messages_are_refused_by_place(messages, words) -> None:
    with pytest.raises(InvalidParams, match=words):
        ask_params({"messages": messages})


def test_the_old_pairs_are_still_read() -> None:
    assert turns((("user", "hi"),)) == (Message(role="user", content="hi"),)
