"""The panel's vote on the next tool call: actors.toolvote, pure (no actors)."""

from __future__ import annotations

import json
import random
import re
from types import SimpleNamespace
from typing import Any

import pytest

from actors import toolvote
from actors.toolvote import TEXT, Choice, choice_of, decide, propose, tally
from messages.errors import InvalidParams, RoundError
from messages.tools import ToolCall, ToolChoice

OFFERED = ("get_weather", "get_time", "search")


def call(name: str, arguments: Any = None, call_id: str = "x") -> dict[str, Any]:
    """A call in the OpenAI shape; ``arguments`` given as text is sent as is."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


AUTO = Choice()


def panel(
    *replies: tuple[str, Any], choice: Choice = AUTO, parallel: bool = True
) -> toolvote.Tally:
    """Proposals from (model, [calls] or "text") pairs, and their tally."""
    proposals = [
        propose(
            model,
            None if isinstance(r, str) else r,
            r if isinstance(r, str) else None,
            offered=OFFERED,
            choice=choice,
            parallel=parallel,
        )
        for model, r in replies
    ]
    return tally(proposals)


PARIS = [call("get_weather", {"city": "Paris"})]
ROME = [call("get_weather", {"city": "Rome"})]
TIME = [call("get_time", {"zone": "UTC"})]


# --- agreement and disagreement ---------------------------------------------------------


def test_an_agreed_call_wins_by_vote_with_full_confidence() -> None:
    result = panel(("a", PARIS), ("b", PARIS), ("c", PARIS))
    decision = toolvote.by_vote(result)
    assert decision is not None
    assert decision.decided_by == "vote" and decision.confidence == 1.0
    calls = decision.tool_calls()
    assert calls is not None and len(calls) == 1
    assert calls[0].to_dict()["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert re.fullmatch(r"call_[0-9a-f]{24}", calls[0].id)


def test_each_decided_call_gets_a_fresh_id() -> None:
    decision = toolvote.by_vote(panel(("a", PARIS), ("b", PARIS)))
    assert decision is not None
    first, second = decision.tool_calls(), decision.tool_calls()
    assert first is not None and second is not None
    assert first[0].id != second[0].id


def test_a_majority_wins_and_its_share_is_the_confidence() -> None:
    result = panel(("a", PARIS), ("b", ROME), ("c", PARIS))
    decision = toolvote.by_vote(result)
    assert decision is not None and decision.decided_by == "vote"
    assert decision.confidence == pytest.approx(2 / 3)
    assert decision.calls is not None and decision.calls[0].arguments == {"city": "Paris"}
    assert [g.models for g in result.groups] == [("a", "c"), ("b",)]


def test_no_majority_leaves_the_decision_to_the_synthesizer() -> None:
    result = panel(("a", PARIS), ("b", ROME), ("c", TIME))
    assert result.winner is None and toolvote.by_vote(result) is None
    assert result.voters == 3


def test_half_is_not_a_majority() -> None:
    result = panel(("a", PARIS), ("b", PARIS), ("c", ROME), ("d", ROME))
    assert result.winner is None


def test_a_tie_orders_the_groups_the_same_whatever_the_reply_order() -> None:
    one = panel(("a", PARIS), ("b", ROME), ("c", PARIS), ("d", ROME))
    two = panel(("d", ROME), ("c", PARIS), ("b", ROME), ("a", PARIS))
    assert [g.key for g in one.groups] == [g.key for g in two.groups]
    assert toolvote.decision_prompt("q", one, Choice(), random.Random(3)) == (
        toolvote.decision_prompt("q", two, Choice(), random.Random(3))
    )


# --- text against calls -----------------------------------------------------------------


def test_text_answers_are_votes_for_answering_in_text() -> None:
    result = panel(("a", PARIS), ("b", "It is sunny."), ("c", PARIS))
    decision = toolvote.by_vote(result)
    assert decision is not None and decision.is_call
    assert decision.confidence == pytest.approx(2 / 3)
    assert result.share(TEXT) == pytest.approx(1 / 3)


def test_one_call_against_one_text_goes_to_the_synthesizer() -> None:
    result = panel(("a", PARIS), ("b", "It is sunny."))
    assert toolvote.by_vote(result) is None


def test_a_text_majority_decides_to_answer_in_text_written_by_the_synthesis() -> None:
    result = panel(("a", "Sunny."), ("b", PARIS), ("c", "Sunny, 20C."))
    decision = toolvote.by_vote(result)
    assert decision is not None and not decision.is_call
    assert decision.text is None  # several text answers: the synthesis writes the text
    assert decision.tool_calls() is None
    assert result.winner is not None and result.winner.texts == ("Sunny.", "Sunny, 20C.")


def test_one_model_answers_alone() -> None:
    decision = toolvote.by_vote(panel(("a", "Sunny.")))
    assert decision is not None
    assert (decision.decided_by, decision.text, decision.confidence) == ("single", "Sunny.", None)
    decision = toolvote.by_vote(panel(("a", PARIS)))
    assert decision is not None and decision.decided_by == "single" and decision.is_call


def test_a_reply_with_calls_and_text_proposes_the_calls() -> None:
    proposal = propose("a", PARIS, "Let me check.", offered=OFFERED)
    assert proposal.key is not None and proposal.key != TEXT
    assert proposal.to_dict()["text"] == "Let me check."


def test_an_empty_reply_is_no_vote() -> None:
    proposal = propose("a", [], "  ", offered=OFFERED)
    assert proposal.key is None and proposal.excluded == "an empty reply"


# --- normalisation ----------------------------------------------------------------------


def test_parallel_calls_in_another_order_are_the_same_proposal() -> None:
    result = panel(("a", [*PARIS, *TIME]), ("b", [*TIME, *PARIS]))
    assert len(result.groups) == 1 and result.winner is not None


def test_a_repeated_call_is_not_the_same_proposal_as_one_call() -> None:
    result = panel(("a", [*PARIS, *PARIS]), ("b", PARIS))
    assert len(result.groups) == 2


def test_arguments_differing_in_key_order_or_whitespace_are_the_same() -> None:
    one = call("search", '{"q": "cats", "limit": 3}')
    two = call("search", '{\n  "limit":3,"q":"cats"\n}')
    result = panel(("a", [one]), ("b", [two]))
    assert len(result.groups) == 1
    assert result.groups[0].calls is not None
    assert result.groups[0].calls[0].arguments_json == '{"limit":3,"q":"cats"}'


def test_an_integral_float_equals_the_integer_and_other_numbers_differ() -> None:
    result = panel(
        ("a", [call("search", '{"limit": 1, "n": {"k": [2.0]}}')]),
        ("b", [call("search", '{"limit": 1.0, "n": {"k": [2]}}')]),
        ("c", [call("search", '{"limit": 1.5, "n": {"k": [2]}}')]),
    )
    assert [g.models for g in result.groups] == [("a", "b"), ("c",)]
    assert result.groups[0].calls is not None
    assert result.groups[0].calls[0].arguments_json == '{"limit":1,"n":{"k":[2]}}'


def test_strings_are_compared_exactly() -> None:
    result = panel(("a", [call("search", {"q": "Paris"})]), ("b", [call("search", {"q": "paris"})]))
    assert len(result.groups) == 2


def test_arguments_given_as_an_object_or_empty_text() -> None:
    flat = {"name": "get_time", "arguments": {"zone": "UTC"}}
    attrs = SimpleNamespace(name="get_time", arguments='{"zone":"UTC"}')
    result = panel(("a", TIME), ("b", [flat]), ("c", [attrs]))
    assert len(result.groups) == 1 and len(result.groups[0].models) == 3
    assert toolvote.normalise(call("get_time", "")).arguments == {}


def test_calls_as_the_providers_parse_them_compare_with_1_equal_to_1_0() -> None:
    one = ToolCall.create(name="search", arguments='{"limit": 1.0, "q": "x"}')
    two = ToolCall.create(name="search", arguments={"q": "x", "limit": 1})
    assert one.arguments_json != two.arguments_json  # the providers keep what was sent
    result = panel(("a", [one]), ("b", [two]))
    assert len(result.groups) == 1 and result.winner is not None


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        ("{not json", "are not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('"text"', "a JSON str, not an object"),
        ('{"a": NaN}', "NaN, which is not JSON"),
        ('{"a": 1, "a": 2}', "repeat the key 'a'"),
    ],
)
def test_arguments_that_are_not_a_json_object_make_the_proposal_no_vote(
    arguments: str, why: str
) -> None:
    proposal = propose("a", [call("search", arguments)], None, offered=OFFERED)
    assert proposal.key is None
    assert proposal.excluded is not None and why in proposal.excluded
    assert proposal.excluded.startswith("search: ")


def test_a_call_to_a_function_not_offered_is_no_vote() -> None:
    result = panel(("a", [call("rm_rf", {})]), ("b", PARIS), ("c", PARIS))
    assert result.voters == 2
    assert result.winner is not None and result.winner.models == ("b", "c")
    excluded = result.proposals[0]
    assert excluded.excluded == "it calls 'rm_rf', which is not among the tools offered"
    decision = toolvote.by_vote(result)
    assert decision is not None
    assert toolvote.record(result, decision)["proposals"][0]["excluded"]


def test_a_call_without_a_name_is_no_vote() -> None:
    proposal = propose("a", [{"function": {"arguments": "{}"}}], None, offered=OFFERED)
    assert proposal.excluded == "a call without a function name"


def test_several_calls_without_parallel_tool_calls_are_no_vote() -> None:
    result = panel(("a", [*PARIS, *TIME]), ("b", PARIS), parallel=False)
    assert result.proposals[0].excluded == "it made 2 calls, and parallel_tool_calls is false"
    assert result.winner is not None and result.winner.models == ("b",)


# --- tool_choice ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Choice("auto")),
        ("auto", Choice("auto")),
        ("none", Choice("none")),
        ("required", Choice("required")),
        ({"type": "function", "function": {"name": "search"}}, Choice("function", "search")),
        (SimpleNamespace(mode="function", name="search"), Choice("function", "search")),
        (SimpleNamespace(mode="required", name=None), Choice("required")),
        (ToolChoice(mode="function", name="search"), Choice("function", "search")),
        (ToolChoice(mode="none"), Choice("none")),
    ],
)
def test_tool_choice_forms(value: Any, expected: Choice) -> None:
    assert choice_of(value) == expected


@pytest.mark.parametrize(
    "value",
    ["always", {"type": "function"}, {"type": "function", "function": {"name": ""}}, 3],
)
def test_a_bad_tool_choice_is_refused(value: Any) -> None:
    with pytest.raises(InvalidParams, match="tool_choice"):
        choice_of(value)


def test_required_text_answers_are_no_votes() -> None:
    result = panel(("a", "Sunny."), ("b", "Sunny."), ("c", PARIS), choice=Choice("required"))
    assert result.voters == 1
    assert result.proposals[0].excluded == "it answered in text, and tool_choice is required"
    decision = toolvote.by_vote(result)
    assert decision is not None and decision.is_call and decision.confidence == 1.0


def test_required_with_only_text_answers_leaves_nothing_to_vote_on() -> None:
    result = panel(("a", "Sunny."), ("b", "Rainy."), choice=Choice("required"))
    assert result.voters == 0 and result.winner is None
    assert "(none)" in toolvote.decision_prompt("q", result, Choice("required"))


def test_a_named_function_counts_only_calls_to_it() -> None:
    choice = Choice("function", "get_weather")
    result = panel(("a", TIME), ("b", PARIS), ("c", [*PARIS, *TIME]), ("d", "x"), choice=choice)
    assert [p.excluded for p in result.proposals] == [
        "it calls 'get_time', and tool_choice names 'get_weather'",
        None,
        "it calls 'get_time', and tool_choice names 'get_weather'",
        "it answered in text, and tool_choice is the function 'get_weather'",
    ]
    assert result.winner is not None and result.winner.models == ("b",)


def test_none_counts_text_only() -> None:
    result = panel(("a", PARIS), ("b", "Sunny."), choice=Choice("none"))
    assert result.proposals[0].excluded == "it called a tool, and tool_choice is none"
    assert result.winner is not None and result.winner.key == TEXT


# --- the synthesizer's decision ---------------------------------------------------------


def test_the_decision_prompt_shows_every_proposal_anonymously() -> None:
    result = panel(("gpt", PARIS), ("gemini", ROME), ("llama", "It is sunny in Paris."))
    prompt = toolvote.decision_prompt("Weather in Paris?", result, Choice(), random.Random(1))
    assert prompt.startswith("Question:\nWeather in Paris?\n\n")
    assert {"Proposal A:", "Proposal B:", "Proposal C:"} <= set(re.findall(r"Proposal \w:", prompt))
    assert 'get_weather({"city":"Paris"})' in prompt and 'get_weather({"city":"Rome"})' in prompt
    assert "answer in text:\nIt is sunny in Paris." in prompt
    assert "1 of 3 assistants" in prompt
    assert not any(name in prompt for name in ("gpt", "gemini", "llama"))
    assert "or, if no tool is needed, answer the question directly in text" in prompt


def test_the_decision_prompt_states_the_tool_choice() -> None:
    result = panel(("a", PARIS), ("b", ROME))
    required = toolvote.decision_prompt("q", result, Choice("required"))
    named = toolvote.decision_prompt("q", result, Choice("function", "get_weather"))
    assert "You must call a tool" in required and "answer the question directly" not in required
    assert "You must call the function get_weather" in named


def test_the_synthesizer_decides_a_call_and_its_confidence_is_the_panels_share() -> None:
    result = panel(("a", PARIS), ("b", ROME), ("c", TIME))
    decision = decide(ROME, None, synthesizer="s", result=result, offered=OFFERED, choice=Choice())
    assert decision.decided_by == "synthesizer"
    assert decision.confidence == pytest.approx(1 / 3)
    new = decide(
        [call("search", {"q": "x"})],
        None,
        synthesizer="s",
        result=result,
        offered=OFFERED,
        choice=Choice(),
    )
    assert new.confidence == 0.0  # a call nobody proposed


def test_the_synthesizer_may_decide_to_answer_in_text() -> None:
    result = panel(("a", PARIS), ("b", "Sunny."))
    decision = decide(
        None, "It is sunny.", synthesizer="s", result=result, offered=OFFERED, choice=Choice()
    )
    assert (decision.text, decision.calls, decision.confidence) == ("It is sunny.", None, 0.5)


@pytest.mark.parametrize("choice", [Choice("required"), Choice("function", "get_weather")])
def test_a_text_decision_when_a_call_is_required_fails_the_job(choice: Choice) -> None:
    result = panel(("a", PARIS), ("b", ROME))
    with pytest.raises(RoundError, match="synthesizer s's tool decision is not usable: it answ"):
        decide(None, "Sunny.", synthesizer="s", result=result, offered=OFFERED, choice=choice)


@pytest.mark.parametrize(
    ("calls", "text", "why"),
    [
        ([call("rm_rf", {})], None, "'rm_rf', which is not among the tools offered"),
        ([call("search", "{oops")], None, "are not JSON"),
        (None, "", "an empty reply"),
    ],
)
def test_an_unusable_decision_fails_the_job_saying_why(calls: Any, text: Any, why: str) -> None:
    result = panel(("a", PARIS), ("b", ROME))
    with pytest.raises(RoundError, match=re.escape(why)):
        decide(calls, text, synthesizer="s", result=result, offered=OFFERED, choice=Choice())


# --- the record -------------------------------------------------------------------------


def test_the_record_holds_proposals_votes_and_the_decision_as_json() -> None:
    result = panel(("a", PARIS), ("b", PARIS), ("c", "Sunny."), ("d", [call("rm", {})]))
    decision = toolvote.by_vote(result)
    assert decision is not None
    out = toolvote.record(result, decision, [{"model": "e", "reason": "no tools"}])
    assert json.loads(json.dumps(out)) == out
    assert out["decided_by"] == "vote" and out["confidence"] == pytest.approx(2 / 3)
    assert out["votes"] == [
        {
            "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
            "models": ["a", "b"],
            "share": 0.6667,
        },
        {"calls": None, "models": ["c"], "share": 0.3333},
    ]
    assert [p["model"] for p in out["proposals"]] == ["a", "b", "c", "d"]
    assert out["proposals"][2] == {"model": "c", "tool_calls": None, "text": "Sunny."}
    assert out["left_out"] == [{"model": "e", "reason": "no tools"}]


def test_the_record_of_a_decision_without_a_vote() -> None:
    decision = toolvote.Decision(calls=None, text="ok", decided_by="synthesizer", confidence=None)
    out = toolvote.record(None, decision)
    assert out == {
        "proposals": [],
        "votes": [],
        "decided_by": "synthesizer",
        "confidence": None,
        "left_out": [],
    }


def test_the_record_of_a_job_that_failed_before_a_decision() -> None:
    result = panel(("a", PARIS), ("b", ROME))
    out = toolvote.record(result, None)
    assert (out["decided_by"], out["confidence"]) == (None, None)
    assert len(out["proposals"]) == 2 and len(out["votes"]) == 2


def test_the_decision_prompt_follows_a_configured_template() -> None:
    from actors.config import load_config

    config = load_config(
        {
            "models": [{"name": "a", "provider": "fake"}],
            "templates": {"tools": "Q: {prompt} | {proposals} | {rule}"},
        }
    )
    result = panel(("a", PARIS), ("b", ROME))
    prompt = toolvote.decision_prompt("q?", result, Choice(), template=config.templates.tools)
    assert prompt.startswith("Q: q? | Proposal A: call") and prompt.endswith("directly in text.")


def test_a_tools_template_with_an_unknown_placeholder_is_refused() -> None:
    from actors.config import load_config
    from messages.errors import ConfigError

    with pytest.raises(ConfigError, match=r"templates\.tools.*unknown placeholder"):
        load_config(
            {
                "models": [{"name": "a", "provider": "fake"}],
                "templates": {"tools": "{prompt} {answers}"},
            }
        )
