"""Messages are immutable values; JobResult.to_dict is exactly the contract's job result."""

from __future__ import annotations

import dataclasses

import pytest

import messages
from messages import ERRORS_BY_CODE, OrchestratorError
from messages.results import ErrorInfo, JobResult, ModelReply, RoundResult, Usage

CONTRACT_KEYS = {
    "job_id",
    "status",
    "answer",
    "strategy",
    "synthesizer",
    "confidence",
    "elapsed_ms",
    "cost_usd",
    "usage",
    "rounds",
    "agreement",  # contract §4: "Each result also carries agreement"
    "tool_calls",  # §13: null for a text answer
    "finish_reason",
}
REPLY_KEYS = {"model", "status", "text", "latency_ms", "usage", "error", "cost_usd"}


def sample() -> JobResult:
    ok = ModelReply(
        model="gpt",
        status="ok",
        text="hi",
        latency_ms=812.04,
        usage=Usage(input_tokens=30, output_tokens=120),
        cost_usd=0.0001,
    )
    bad = ModelReply(
        model="gemini",
        status="error",
        latency_ms=40.2,
        error=ErrorInfo(code="provider_unavailable", message="down"),
    )
    return JobResult(
        job_id="j1",
        status="ok",
        answer="hi",
        synthesizer="gpt",
        elapsed_ms=1234.5,
        cost_usd=0.0012,
        usage=Usage(input_tokens=900, output_tokens=400),
        rounds=(RoundResult(name="initial", replies=(ok, bad)),),
    )


def test_to_dict_has_exactly_the_contract_keys() -> None:
    data = sample().to_dict()
    assert set(data) == CONTRACT_KEYS
    assert data["usage"] == {"input_tokens": 900, "output_tokens": 400}
    replies = data["rounds"][0]["replies"]
    assert all(set(r) == REPLY_KEYS for r in replies)
    assert replies[1]["error"] == {"code": "provider_unavailable", "message": "down"}
    assert replies[1]["usage"] is None and replies[1]["text"] is None


def test_optional_keys_appear_only_when_set() -> None:
    result = sample().with_changes(
        status="error", error=ErrorInfo(code="round_failed", message="x"), cached=True
    )
    data = result.to_dict()
    assert data["error"] == {"code": "round_failed", "message": "x"}
    assert data["cached"] is True
    assert "votes" not in data and "ranking" not in data


def test_from_dict_reads_back_what_to_dict_wrote() -> None:
    result = sample()
    again = JobResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict()


def test_messages_are_frozen_and_slotted() -> None:
    for name in messages.__all__:
        cls = getattr(messages, name)
        if dataclasses.is_dataclass(cls):
            assert cls.__dataclass_params__.frozen, name  # type: ignore[attr-defined]
            assert hasattr(cls, "__slots__"), name
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample().status = "error"  # type: ignore[misc]


def test_ask_freezes_its_metadata_and_lists() -> None:
    ask = messages.Ask(prompt="p", models=["a", "b"], metadata={"k": 1})  # type: ignore[arg-type]
    assert ask.models == ("a", "b")
    with pytest.raises(TypeError):
        ask.metadata["k"] = 2  # type: ignore[index]


def test_error_codes_are_unique_and_map_back_to_their_class() -> None:
    classes = [c for c in ERRORS_BY_CODE.values()]
    assert len({c.code for c in classes}) == len(classes)
    for code, cls in ERRORS_BY_CODE.items():
        assert issubclass(cls, OrchestratorError)
        assert cls.code == code


@pytest.mark.parametrize(
    ("name", "rpc"),
    [
        ("ParseError", -32700),
        ("ProtocolError", -32600),
        ("MethodNotFound", -32601),
        ("InvalidParams", -32602),
        ("OrchestratorError", -32603),
        ("OverloadedError", -32001),
        ("NoModelAvailable", -32002),
        ("JobTimeoutError", -32003),
        ("JobCancelled", -32004),
        ("ShuttingDown", -32005),
        ("RequestTooLarge", -32006),
        ("UnknownJob", -32007),
        ("RoundError", -32008),
        ("SchemaError", -32009),
        ("BudgetExhausted", -32010),
    ],
)
def test_each_error_has_the_contract_rpc_code(name: str, rpc: int) -> None:
    assert getattr(messages, name).rpc_code == rpc


def test_error_info_of_a_foreign_exception_is_an_internal_error() -> None:
    info = ErrorInfo.of(KeyError("x"))
    assert info.code == "internal_error" and "KeyError" in info.message


def test_tool_calls_and_the_tool_record_round_trip() -> None:
    from messages.tools import ToolCall

    call = ToolCall.create(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    reply = ModelReply(model="gpt", status="ok", text="", tool_calls=(call,))
    tools = {"proposals": [], "votes": [], "decided_by": "vote", "confidence": 1.0, "left_out": []}
    result = JobResult(
        job_id="j",
        status="ok",
        tool_calls=(call,),
        finish_reason="tool_calls",
        tools=tools,
        rounds=(RoundResult(name="initial", replies=(reply,)),),
    )
    data = result.to_dict()
    assert data["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert data["finish_reason"] == "tool_calls" and data["tools"] == tools
    assert data["rounds"][0]["replies"][0]["tool_calls"] == data["tool_calls"]
    assert JobResult.from_dict(data).to_dict() == data
    assert JobResult.from_dict(data).tool_calls == (call,)


def test_a_text_answer_says_so() -> None:
    data = sample().to_dict()
    assert data["tool_calls"] is None and data["finish_reason"] == "stop"
    assert "tools" not in data and "tool_calls" not in data["rounds"][0]["replies"][0]
