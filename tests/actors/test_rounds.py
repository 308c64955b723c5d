"""Rounds with fake providers: who is called, with what, and what comes back."""

from __future__ import annotations

import re
import threading

import pytest
from helpers import WAIT, Recorder, fake_models

from messages.errors import InvalidParams
from messages.events import JobEvent

NAMES = ("alpha", "bravo", "charlie")


def config(recorder: Recorder, **pipeline: object) -> dict[str, object]:
    return {"models": fake_models(NAMES, reply=recorder), "pipeline": pipeline}


def test_three_rounds_make_n_plus_n_plus_one_calls(start_orch) -> None:
    recorder = Recorder()
    orch = start_orch(config(recorder))
    result = orch.ask("What is 2+2?")
    assert result.status == "ok", result
    assert len(recorder.by_round("initial")) == 3
    assert len(recorder.by_round("meta")) == 3
    assert len(recorder.by_round("synthesis")) == 1
    assert [r.name for r in result.rounds] == ["initial", "meta", "synthesis"]


def test_meta_prompts_hold_every_previous_answer_labelled_and_no_model_name(start_orch) -> None:
    recorder = Recorder(lambda req: f"The answer is {req.participant[::-1]}-{req.round_name}")
    orch = start_orch(config(recorder))
    orch.ask("What is 2+2?")
    initial_answers = [f"The answer is {n[::-1]}-initial" for n in NAMES]
    for request in recorder.by_round("meta"):
        for answer in initial_answers:
            assert answer in request.prompt
        for name in NAMES:
            assert name not in request.prompt
        assert re.findall(r"^Answer ([A-Z]):", request.prompt, re.M) == ["A", "B", "C"]


def test_synthesis_sees_the_meta_answers_and_its_text_is_the_answer(start_orch) -> None:
    recorder = Recorder(lambda req: f"{req.round_name} by {req.participant.upper()}")
    orch = start_orch(config(recorder))
    result = orch.ask("Why is the sky blue?")
    [synthesis] = recorder.by_round("synthesis")
    for name in NAMES:
        assert f"meta by {name.upper()}" in synthesis.prompt
        assert f"initial by {name.upper()}" not in synthesis.prompt
    assert result.answer == f"synthesis by {synthesis.participant.upper()}"
    assert result.synthesizer == synthesis.participant


def test_label_order_is_shuffled_per_call(start_orch) -> None:
    recorder = Recorder(lambda req: f"answer-{req.participant}")
    orch = start_orch(config(recorder))
    orders = set()
    for _ in range(10):
        orch.ask("q")
    for request in recorder.by_round("meta"):
        orders.add(tuple(re.findall(r"answer-(\w+)", request.prompt)))
    assert len(orders) > 1


def test_a_named_synthesizer_is_used(start_orch) -> None:
    recorder = Recorder()
    orch = start_orch(config(recorder, synthesizer="bravo"))
    result = orch.ask("q")
    assert result.synthesizer == "bravo"
    assert [r.participant for r in recorder.by_round("synthesis")] == ["bravo"]


def test_when_the_synthesizer_fails_the_next_best_synthesises(start_orch) -> None:
    def answer(req):
        if req.round_name == "synthesis" and req.participant == "alpha":
            raise_rejected()
        return f"{req.participant} says hi"

    orch = start_orch(config(Recorder(answer), synthesizer="alpha"))
    result = orch.ask("q")
    assert result.status == "ok"
    assert result.synthesizer in ("bravo", "charlie")
    synthesis = result.rounds[-1].replies
    assert synthesis[0].model == "alpha" and synthesis[0].status == "error"
    assert synthesis[-1].model == result.synthesizer and synthesis[-1].ok


def raise_rejected() -> None:
    from messages.errors import ProviderRejected

    raise ProviderRejected("no synthesis for you", status=400)


def test_rounds_and_models_can_be_chosen_per_job(start_orch) -> None:
    recorder = Recorder()
    orch = start_orch(config(recorder))
    result = orch.ask("q", models=["alpha", "charlie"], rounds=["initial", "meta", "meta"])
    assert [r.name for r in result.rounds] == ["initial", "meta", "meta"]
    assert {r.participant for r in recorder.requests} == {"alpha", "charlie"}
    assert len(recorder.requests) == 6
    assert result.synthesizer is None and result.answer is not None


def test_events_stream_in_order(start_orch) -> None:
    events: list[JobEvent] = []
    lock = threading.Lock()

    def listener(event: JobEvent) -> None:
        with lock:
            events.append(event)

    orch = start_orch(config(Recorder()))
    orch.submit("q", listener=listener).get(timeout=WAIT)
    everything = [(e.type, e.round) for e in events]
    kinds = [k for k in everything if k[0] != "delta"]
    # the synthesis streams: its pieces come after it starts and before its reply
    first = everything.index(("delta", "synthesis"))
    assert everything[first - 1] == ("round_started", "synthesis")
    assert everything[everything.index(("reply", "synthesis")) - 1] == ("delta", "synthesis")
    assert kinds[0] == ("round_started", "initial")
    assert kinds[1:4] == [("reply", "initial")] * 3
    assert kinds[4:6] == [("round_finished", "initial"), ("round_started", "meta")]
    assert kinds[-3:] == [
        ("round_started", "synthesis"),
        ("reply", "synthesis"),
        ("round_finished", "synthesis"),
    ]


def test_usage_and_cost_add_up_over_every_reply(start_orch) -> None:
    models = fake_models(NAMES, reply="x" * 40, price_in_per_mtok=1.0, price_out_per_mtok=2.0)
    orch = start_orch({"models": models})
    result = orch.ask("q")
    replies = [r for rnd in result.rounds for r in rnd.replies]
    assert result.usage.input_tokens == sum(r.usage.input_tokens for r in replies)
    assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in replies))
    assert result.cost_usd > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models": ["nobody"]}, "unknown model"),
        ({"rounds": ["meta"]}, "start with 'initial'"),
        ({"timeout": -1}, "timeout_s"),
    ],
)
def test_bad_job_options_raise_invalid_params(start_orch, kwargs, match) -> None:
    orch = start_orch(config(Recorder()))
    with pytest.raises(InvalidParams, match=match):
        orch.ask("q", **kwargs)


def test_an_empty_prompt_is_invalid(start_orch) -> None:
    orch = start_orch(config(Recorder()))
    with pytest.raises(InvalidParams, match="prompt"):
        orch.ask("   ")


def test_after_a_meta_round_only_the_improved_answers_go_forward(start_orch) -> None:
    def answer(req):
        if req.round_name == "meta":
            return f"Critique: answer A rambles.\nImproved answer:\n{req.participant} improved"
        return f"{req.participant} says"

    recorder = Recorder(answer)
    orch = start_orch(config(recorder))
    orch.ask("q")
    [synthesis] = recorder.by_round("synthesis")
    assert all(f"{n} improved" in synthesis.prompt for n in NAMES)
    assert "Critique" not in synthesis.prompt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain answer", "plain answer"),
        ("critique\nImproved answer:\n  the better one ", "the better one"),
        ("a\nIMPROVED ANSWER: x\nImproved answer: y", "y"),
        ("critique\nImproved answer:", "critique\nImproved answer:"),
    ],
)
def test_improved_answer_extraction(text: str, expected: str) -> None:
    from actors.prompts import improved_answer

    assert improved_answer(text) == expected


def test_the_synthesis_numbers_its_candidates_and_its_answer_loses_a_copied_label(
    start_orch,
) -> None:
    """The embedded model copied letter labels and preambles into its answer
    ("C: The capital …", "The best final answer to the question is: …"): the synthesis
    prompt numbers its candidates, and such a lead is taken off the final answer (the
    round keeps what the model wrote)."""
    from helpers import Recorder, fake_models

    recorder = Recorder(
        lambda r: (
            "Candidate 2: The best final answer to the question is: Canberra."
            if r.round_name == "synthesis"
            else "Canberra"
        )
    )
    orch = start_orch({"models": fake_models(("a", "b"), reply=recorder)})
    result = orch.ask("Capital of Australia?", rounds=["initial", "synthesis"])
    [synthesis] = recorder.by_round("synthesis")
    assert "Candidate 1:\nCanberra\n\nCandidate 2:\nCanberra" in synthesis.prompt
    assert "Answer A" not in synthesis.prompt
    assert result.answer == "Canberra."
    assert result.rounds[-1].replies[0].text.startswith("Candidate 2: The best")


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("The single best answer to the question is: 160 - 9", "160 - 9"),
        ("**Candidate 1**: 42", "42"),
        ("A: A", "A: A"),  # a choice answer: a letter label is not ours to strip
        ("The answer is 42", "The answer is 42"),  # no colon: an answer, not a preamble
        ("The final answer is:", "The final answer is:"),  # nothing after it: kept whole
    ],
)
def test_clean_synthesis(written, kept) -> None:
    from actors.prompts import clean_synthesis

    assert clean_synthesis(written) == kept
