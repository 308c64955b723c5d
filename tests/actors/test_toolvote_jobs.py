"""Tool jobs through the real actors: the panel proposes, votes, the synthesizer decides.

Fake providers script the calls (``tool_calls``) or answer from Python (``reply`` as a
callable returning a ``ProviderResponse`` with calls), and record what they received.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helpers import Recorder

from actors.providers.base import ProviderResponse
from messages.errors import NoModelAvailable, ProviderRejected
from messages.results import Usage
from messages.tools import ToolCall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city now",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]
PARIS = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
ROME = [{"name": "get_weather", "arguments": {"city": "Rome"}}]
TIME = [{"name": "get_time", "arguments": {}}]
FAST = {"supervision": {"backoff_min_s": 0.001, "backoff_max_s": 0.01}}


def caller(name: str, calls: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """A fake model that answers every call offered tools with ``calls``."""
    return {"name": name, "provider": "fake", "tool_calls": calls, **options}


def texter(name: str, text: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "provider": "fake", "reply": text, **options}


def chair(decision: Callable[[Any], Any]) -> tuple[dict[str, Any], Recorder]:
    """A synthesizer ``s`` whose answer ``decision(request)`` gives (calls or text)."""

    def answer(request: Any) -> Any:
        out = decision(request)
        if isinstance(out, str):
            return ProviderResponse(text=out, usage=Usage(input_tokens=5, output_tokens=5))
        calls = tuple(ToolCall.create(name=c["name"], arguments=c["arguments"]) for c in out)
        return ProviderResponse(text="", tool_calls=calls, usage=Usage(input_tokens=5))

    recorder = Recorder(answer)
    return {"name": "s", "provider": "fake", "reply": recorder}, recorder


def run(start_orch: Any, models: list[dict[str, Any]], **ask: Any) -> Any:
    orch = start_orch({"models": models, **FAST, **ask.pop("config", {})})
    ask.setdefault("models", [m["name"] for m in models if m["name"] != "s"])
    ask.setdefault("messages", [{"role": "user", "content": "Weather in Paris?"}])
    return orch, orch.ask(tools=ask.pop("tools", TOOLS), **ask)


def round_names(result: Any) -> list[str]:
    return [r.name for r in result.rounds]


# --- the vote ---------------------------------------------------------------------------


def test_an_agreed_call_is_the_answer_without_a_synthesis(start_orch) -> None:
    models = [caller("a", PARIS), caller("b", PARIS), caller("c", PARIS)]
    _, result = run(start_orch, models)
    assert result.ok, result.error
    assert result.finish_reason == "tool_calls" and result.answer is None
    [call] = result.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert call.id.startswith("call_")
    assert round_names(result) == ["initial"]
    assert result.confidence == 1.0
    tools = result.tools
    assert tools["decided_by"] == "vote" and tools["confidence"] == 1.0
    assert tools["votes"][0]["models"] == ["a", "b", "c"]
    assert [p["model"] for p in tools["proposals"]] == ["a", "b", "c"]
    assert tools["left_out"] == []


def test_a_majority_wins_over_a_dissent_and_a_text_answer(start_orch) -> None:
    models = [
        caller("a", PARIS),
        caller("b", ROME),
        caller("c", PARIS),
        texter("d", "Sunny."),
        caller("e", PARIS),
    ]
    _, result = run(start_orch, models)
    assert result.ok and [c.arguments for c in result.tool_calls] == [{"city": "Paris"}]
    assert result.tools["decided_by"] == "vote"
    assert result.confidence == pytest.approx(0.6)
    assert [v["models"] for v in result.tools["votes"]] == [["a", "c", "e"], ["b"], ["d"]]


def test_every_participant_is_offered_the_tools_and_the_choice(start_orch) -> None:
    seen = Recorder(
        lambda req: ProviderResponse(
            text="", tool_calls=(ToolCall.create(name="get_weather", arguments={"city": "Paris"}),)
        )
    )
    models = [{"name": "r", "provider": "fake", "reply": seen}, caller("b", PARIS)]
    _, result = run(start_orch, models, tool_choice="required", parallel_tool_calls=False)
    assert result.ok
    [request] = seen.requests
    assert [t.name for t in request.tools] == ["get_weather", "get_time"]
    assert request.tool_choice.mode == "required"
    assert request.parallel_tool_calls is False
    assert request.prompt == "Weather in Paris?"


def test_a_split_panel_leaves_the_decision_to_the_synthesizer(start_orch) -> None:
    s, recorder = chair(lambda req: ROME)
    models = [caller("a", PARIS), caller("b", ROME), caller("c", TIME), s]
    _, result = run(start_orch, models, synthesizer="s")
    assert result.ok, result.error
    assert [c.arguments for c in result.tool_calls] == [{"city": "Rome"}]
    assert result.tools["decided_by"] == "synthesizer"
    assert result.tools["confidence"] == pytest.approx(1 / 3, abs=0.001)
    assert result.synthesizer == "s"
    assert round_names(result) == ["initial", "synthesis"]
    [request] = recorder.requests
    assert [t.name for t in request.tools] == ["get_weather", "get_time"]
    assert "Proposal A" in request.prompt and "Proposal C" in request.prompt
    assert 'get_weather({"city":"Rome"})' in request.prompt
    assert not any(f"{name}" in request.prompt.split("Question:")[1] for name in ("a:", "b:"))


def test_the_synthesizer_may_answer_a_split_in_text(start_orch) -> None:
    s, _ = chair(lambda req: "It is sunny in Paris.")
    models = [caller("a", PARIS), texter("b", "Sunny."), s]
    _, result = run(start_orch, models, synthesizer="s")
    assert result.ok
    assert (result.answer, result.tool_calls, result.finish_reason) == (
        "It is sunny in Paris.",
        None,
        "stop",
    )
    assert result.tools["decided_by"] == "synthesizer"


def test_a_text_majority_is_synthesised_without_tools(start_orch) -> None:
    s, recorder = chair(lambda req: "Sunny, 20C.")
    models = [texter("a", "Sunny."), texter("b", "Warm and sunny."), caller("c", PARIS), s]
    _, result = run(start_orch, models, synthesizer="s")
    assert result.ok
    assert (result.answer, result.finish_reason, result.tool_calls) == ("Sunny, 20C.", "stop", None)
    assert result.tools["decided_by"] == "vote"
    [request] = recorder.requests
    assert not request.wants_tools
    assert "Sunny." in request.prompt and "Warm and sunny." in request.prompt


def test_required_fails_the_job_when_the_synthesizer_answers_in_text(start_orch) -> None:
    s, _ = chair(lambda req: "I would rather not call anything.")
    models = [caller("a", PARIS), caller("b", ROME), s]
    _, result = run(start_orch, models, synthesizer="s", tool_choice="required")
    assert result.status == "error" and result.error.code == "round_failed"
    assert "answered in text, and tool_choice is required" in result.error.message
    assert len(result.tools["proposals"]) == 2  # the partial result keeps the proposals


# --- who takes part -----------------------------------------------------------------------


def test_a_model_without_tool_support_is_left_out_and_said_so(start_orch) -> None:
    quiet = Recorder()
    models = [
        caller("a", PARIS),
        caller("b", PARIS),
        {"name": "n", "provider": "fake", "reply": quiet, "supports_tools": False},
    ]
    _, result = run(start_orch, models)
    assert result.ok and result.tools["decided_by"] == "vote"
    assert result.tools["left_out"] == [
        {"model": "n", "reason": "its provider (fake) does not take tools"}
    ]
    assert quiet.requests == []


def test_a_job_without_any_model_that_takes_tools_is_refused(start_orch) -> None:
    models = [{"name": "n", "provider": "fake", "supports_tools": False}]
    with pytest.raises(NoModelAvailable, match="no model of this job takes tools"):
        run(start_orch, models)


def test_tool_choice_none_is_an_ordinary_job_without_tools(start_orch) -> None:
    seen = Recorder(lambda req: "Sunny.")
    models = [{"name": "r", "provider": "fake", "reply": seen}]
    _, result = run(start_orch, models, tool_choice="none", rounds=["initial"])
    assert result.ok and result.answer == "Sunny." and result.tools is None
    assert result.finish_reason == "stop" and result.tool_calls is None
    assert all(not r.wants_tools for r in seen.requests)


# --- tool results -------------------------------------------------------------------------

AFTER_CALL = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear", "c": 20}'},
]


def test_a_tool_result_goes_to_the_synthesizer_alone(start_orch) -> None:
    s, recorder = chair(lambda req: "Clear and 20C in Paris.")
    panel = Recorder()
    models = [{"name": "a", "provider": "fake", "reply": panel}, caller("b", PARIS), s]
    _, result = run(start_orch, models, synthesizer="s", messages=AFTER_CALL)
    assert result.ok, result.error
    assert result.answer == "Clear and 20C in Paris." and result.finish_reason == "stop"
    assert result.tools["decided_by"] == "synthesizer" and result.tools["proposals"] == []
    assert round_names(result) == ["synthesis"]
    assert panel.requests == []
    [request] = recorder.requests
    assert request.prompt is None  # the conversation as it is, ending with the result
    assert request.history[-1].role == "tool" and request.wants_tools


def test_tool_results_ensemble_sends_the_turn_through_the_panel(start_orch) -> None:
    models = [caller("a", TIME), caller("b", TIME)]
    config = {"http": {"tool_results": "ensemble"}}
    _, result = run(start_orch, models, messages=AFTER_CALL, config=config)
    assert result.ok and result.tools["decided_by"] == "vote"
    assert [c.name for c in result.tool_calls] == ["get_time"]


# --- the record ---------------------------------------------------------------------------


def test_the_run_store_keeps_the_proposals_and_the_decision(start_orch, tmp_path) -> None:
    models = [caller("a", PARIS), caller("b", ROME), caller("c", PARIS)]
    orch, result = run(start_orch, models, config={"daemon": {"state_dir": str(tmp_path)}})
    stored = orch.job(result.job_id)
    assert stored is not None
    assert stored["tool_calls"] == json.loads(json.dumps(result.to_dict()["tool_calls"]))
    assert stored["finish_reason"] == "tool_calls"
    assert stored["tools"] == result.tools


def test_a_pipeline_cannot_name_the_tool_jobs_own_stages() -> None:
    from actors.config import load_config
    from messages.errors import ConfigError

    for kind in ("propose", "decide"):
        config = {
            "models": [{"name": "a", "provider": "fake"}],
            "pipelines": {"p": {"stages": [{"kind": "initial"}, {"kind": kind}]}},
        }
        with pytest.raises(ConfigError, match=r"stages\[1\]\.kind.*got '" + kind):
            load_config(config)


def test_a_tool_job_runs_its_own_stages_whatever_the_pipeline(start_orch) -> None:
    s, _ = chair(lambda req: PARIS)
    models = [caller("a", PARIS), caller("b", ROME), s]
    pipelines = {"review": {"stages": [{"kind": "initial"}, {"kind": "meta"}, {"kind": "rank"}]}}
    _, result = run(
        start_orch,
        models,
        pipeline="review",
        synthesizer="s",
        deterministic=True,
        config={"pipelines": pipelines},
    )
    assert result.ok, result.error
    assert round_names(result) == ["initial", "synthesis"]  # no meta, no rank on tool calls
    assert result.pipeline == "review" and result.tools["decided_by"] == "synthesizer"
    assert [c.arguments for c in result.tool_calls] == [{"city": "Paris"}]
    assert result.confidence == 0.5


def test_a_call_to_a_function_not_offered_fails_that_model_only(start_orch) -> None:
    rogue = caller("c", [{"name": "rm_rf", "arguments": {}}])
    _, result = run(start_orch, [caller("a", PARIS), caller("b", PARIS), rogue])
    assert result.ok and result.tools["decided_by"] == "vote" and result.confidence == 1.0
    [failed] = [r for r in result.rounds[0].replies if r.model == "c"]
    assert failed.status == "error" and failed.error.code == "bad_response"
    assert "rm_rf" in failed.error.message
    assert [p["model"] for p in result.tools["proposals"]] == ["a", "b"]


def test_a_synthesizer_that_fails_is_replaced_by_the_next_candidate(start_orch) -> None:
    def broken(request: Any) -> Any:
        raise ProviderRejected("s: scripted refusal")

    s, _ = chair(broken)
    models = [caller("a", PARIS), caller("b", ROME), s]
    _, result = run(start_orch, models, synthesizer="s")
    assert result.ok, result.error
    assert result.tools["decided_by"] == "synthesizer" and result.synthesizer in ("a", "b")
    assert result.synthesizer_reason is not None and "after s failed" in result.synthesizer_reason
    [failed] = [r for r in result.rounds[1].replies if r.model == "s"]
    assert failed.error is not None and failed.error.code == "provider_rejected"


def test_a_split_nobody_can_decide_fails_with_the_proposals_kept(start_orch) -> None:
    def proposer(city: str) -> Callable[[Any], Any]:
        def answer(request: Any) -> Any:
            if request.round_name == "synthesis":
                raise ProviderRejected("no decisions today")
            call = ToolCall.create(name="get_weather", arguments={"city": city})
            return ProviderResponse(text="", tool_calls=(call,))

        return answer

    models = [
        {"name": "a", "provider": "fake", "reply": proposer("Paris")},
        {"name": "b", "provider": "fake", "reply": proposer("Rome")},
    ]
    _, result = run(start_orch, models)
    assert result.status == "error" and result.error.code == "round_failed"
    assert result.tools["decided_by"] is None and len(result.tools["votes"]) == 2
    assert round_names(result) == ["initial", "synthesis"]
    assert result.tool_calls is None and result.finish_reason == "stop"
