"""A tool job end to end: the real daemon on a real Unix socket, fake providers scripting
tool calls; the result and the run store's copy of it."""

from __future__ import annotations

from daemon_helpers import connect, rpc

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
PARIS = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
ROME = [{"name": "get_weather", "arguments": '{"city": "Rome"}'}]
CONFIG = {
    "models": [
        {"name": "a", "provider": "fake", "tool_calls": PARIS},
        {"name": "b", "provider": "fake", "tool_calls": ROME},
        {
            "name": "c",
            "provider": "fake",
            "tool_calls": [{"name": "get_weather", "arguments": '{ "city" :"Paris" }'}],
        },
        {"name": "n", "provider": "fake", "supports_tools": False},
    ]
}
ASK = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS}


def test_a_tool_job_over_the_socket_is_voted_and_stored_whole(daemon) -> None:
    d = daemon(CONFIG)
    result = rpc(d, "ask", ASK)["result"]
    assert result["status"] == "ok", result
    assert result["finish_reason"] == "tool_calls" and result["answer"] is None
    [call] = result["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    tools = result["tools"]
    assert tools["decided_by"] == "vote"
    assert tools["confidence"] == result["confidence"]
    assert [v["models"] for v in tools["votes"]] == [["a", "c"], ["b"]]
    assert tools["left_out"] == [
        {"model": "n", "reason": "its provider (fake) does not take tools"}
    ]
    stored = rpc(d, "job", {"job_id": result["job_id"]})["result"]
    assert stored["tool_calls"] == result["tool_calls"]
    assert stored["finish_reason"] == "tool_calls"
    assert stored["tools"] == tools


def test_a_streamed_tool_job_sends_its_events_then_the_calls_in_the_result(daemon) -> None:
    d = daemon(CONFIG)
    with connect(d) as client:
        request_id = client.send("ask", {**ASK, "stream": True})
        events = []
        while True:
            message = client.read()
            assert message is not None
            if message.get("id") == request_id:
                break
            events.append(message["params"]["type"])
    assert message["result"]["finish_reason"] == "tool_calls"
    assert events[0] == "round_started" and "delta" not in events


def test_a_tool_choice_naming_an_unknown_function_is_refused(daemon) -> None:
    d = daemon(CONFIG)
    answer = rpc(
        d, "ask", {**ASK, "tool_choice": {"type": "function", "function": {"name": "nope"}}}
    )
    assert answer["error"]["code"] == -32602
    assert "nope" in answer["error"]["message"]
