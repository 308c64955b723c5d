"""Named pipelines (CONTRACT §11): every stage kind, gate and fallback, driven with
scripted fake models, checking the exact prompts each model received."""

from __future__ import annotations

import re
import threading

import pytest
from helpers import WAIT, Recorder, fake_models

from actors.config import config_from_dict
from actors.daemon.defaults import describe
from actors.prompts import DEFAULT_TEMPLATES
from messages.errors import ConfigError, InvalidParams, ProviderUnavailable, RoundError

NAMES = ("alpha", "bravo", "charlie")
CHAIN = DEFAULT_TEMPLATES["chain"]


def start(start_orch, answer, pipelines, names=NAMES, **extra):
    recorder = Recorder(answer)
    config = {
        "models": fake_models(names, reply=recorder, max_attempts=1),
        "pipelines": pipelines,
        **extra,
    }
    return start_orch(config), recorder


def ask(orch, pipeline, prompt="q", **options):
    return orch.ask(prompt, pipeline=pipeline, timeout=WAIT, **options)


# --- chain ------------------------------------------------------------------------------


def test_a_chain_step_receives_the_previous_output_and_the_last_output_is_the_answer(
    start_orch,
) -> None:
    def answer(r):
        if r.prompt == "Write a haiku.":  # the first step drafts: the question itself
            return f"draft by {r.participant}"
        previous = re.search(r"current answer to it:\n\n(.*?)\n\nCritique", r.prompt, re.S)
        return f"notes\nImproved answer:\n{previous.group(1)} + {r.participant}"

    pipelines = {"draft": {"stages": [{"kind": "chain", "models": ["bravo", "alpha", "charlie"]}]}}
    orch, recorder = start(start_orch, answer, pipelines)
    result = ask(orch, "draft", "Write a haiku.")
    assert result.status == "ok", result.error
    prompts = [(r.participant, r.prompt) for r in recorder.requests]
    assert prompts == [
        ("bravo", "Write a haiku."),
        ("alpha", CHAIN.format(prompt="Write a haiku.", answer="draft by bravo", round=1)),
        (
            "charlie",
            CHAIN.format(prompt="Write a haiku.", answer="draft by bravo + alpha", round=1),
        ),
    ]
    assert result.answer == "draft by bravo + alpha + charlie"
    assert result.strategy == "chain" and result.pipeline == "draft"
    assert [r.name for r in result.rounds] == ["chain"]
    assert [r.model for r in result.rounds[0].replies] == ["bravo", "alpha", "charlie"]


def test_a_failed_chain_step_passes_the_previous_output_on(start_orch) -> None:
    def answer(r):
        if r.participant == "bravo":
            raise ProviderUnavailable("down")
        if r.round_name == "initial":
            return {"alpha": "Paris", "charlie": "paris"}[r.participant]
        return f"Improved answer: {r.participant} revised"

    pipelines = {
        "p": {
            "stages": [
                {"kind": "initial", "models": ["alpha", "charlie"]},
                {"kind": "chain", "models": ["bravo", "charlie"]},
            ]
        }
    }
    orch, recorder = start(start_orch, answer, pipelines)
    result = ask(orch, "p", "Capital of France?")
    assert result.status == "ok" and result.answer == "charlie revised"
    [step] = [r for r in recorder.by_round("chain") if r.participant == "charlie"]
    # the chain starts from the most agreed answer, and bravo's failure skips nothing else
    assert step.prompt == CHAIN.format(prompt="Capital of France?", answer="Paris", round=2)
    statuses = [(r.model, r.status) for r in result.rounds[1].replies]
    assert statuses == [("bravo", "error"), ("charlie", "ok")]


# --- gates ------------------------------------------------------------------------------

GATED = {
    "stages": [
        {"kind": "initial"},
        {"kind": "vote", "min_confidence": 0.7, "fallback": "synthesis"},
        {"kind": "rank"},
        {"kind": "synthesis", "model": "charlie"},
    ]
}


def test_a_confident_vote_is_the_answer_and_skips_the_rest(start_orch) -> None:
    orch, recorder = start(start_orch, lambda r: "Canberra", {"gated": GATED})
    result = ask(orch, "gated")
    assert result.status == "ok" and result.answer == "Canberra"
    assert result.strategy == "vote" and result.confidence == 1.0
    assert result.escalations == () and "escalations" not in result.to_dict()
    assert [r.name for r in result.rounds] == ["initial"]
    assert len(recorder.requests) == 3  # no ranking, no synthesis


def test_an_unsure_vote_escalates_to_the_next_synthesis_stage(start_orch) -> None:
    answers = {"alpha": "Canberra", "bravo": "Sydney", "charlie": "Melbourne"}

    def answer(r):
        return answers[r.participant] if r.round_name == "initial" else "Canberra, surely"

    orch, recorder = start(start_orch, answer, {"gated": GATED})
    result = ask(orch, "gated", "Capital of Australia?")
    assert result.status == "ok" and result.answer == "Canberra, surely"
    assert result.to_dict()["escalations"] == [
        {"stage": "vote", "confidence": pytest.approx(1 / 3), "threshold": 0.7, "to": "synthesis"}
    ]
    assert [r.name for r in result.rounds] == ["initial", "synthesis"]  # rank was skipped
    assert recorder.by_round("ranking") == []
    [synthesis] = recorder.by_round("synthesis")
    assert synthesis.participant == "charlie" and result.synthesizer == "charlie"
    assert result.strategy == "synthesize"


def test_a_gate_with_fallback_fail_fails_the_job_with_its_partial_result(start_orch) -> None:
    answers = {"alpha": "yes", "bravo": "no", "charlie": "maybe"}
    pipelines = {
        "strict": {
            "stages": [
                {"kind": "initial"},
                {"kind": "vote", "min_confidence": 0.5, "fallback": "fail"},
            ]
        }
    }
    orch, _ = start(start_orch, lambda r: answers[r.participant], pipelines)
    future = orch.submit("q", pipeline="strict")
    result = future.get(timeout=WAIT)
    assert result.status == "error" and result.error.code == RoundError.code
    assert "below its min_confidence 0.5" in result.error.message
    assert result.escalations[0]["to"] == "fail"
    assert len(result.rounds[0].replies) == 3


def test_a_meta_fallback_refines_and_then_decides_again(start_orch) -> None:
    def answer(r):
        if r.round_name == "initial":
            return {"alpha": "4", "bravo": "5", "charlie": "22"}[r.participant]
        return "Improved answer: 4"  # the meta round converges

    pipelines = {
        "retry": {
            "stages": [
                {"kind": "initial"},
                {"kind": "vote", "min_confidence": 0.9, "fallback": "meta"},
            ]
        }
    }
    orch, recorder = start(start_orch, answer, pipelines)
    result = ask(orch, "retry", "2+2?")
    assert result.status == "ok" and result.answer == "4" and result.confidence == 1.0
    assert [r.name for r in result.rounds] == ["initial", "meta"]
    assert [e["to"] for e in result.escalations] == ["meta"]  # the second vote is ungated
    assert len(recorder.by_round("meta")) == 3


def test_a_rank_fallback_runs_in_place_then_the_pipeline_goes_on(start_orch) -> None:
    def answer(r):
        if r.round_name == "initial":
            return f"answer-{r.participant}"
        if r.round_name == "ranking":
            labels = re.findall(r"Answer ([A-Z]):\nanswer-(\w+)", r.prompt)
            assert r.participant not in {m for _, m in labels}  # never its own answer
            return "Ranking: " + " > ".join(lab for lab, _ in sorted(labels, key=lambda x: x[1]))
        return "final from the top two"

    pipelines = {
        "p": {
            "stages": [
                {"kind": "initial"},
                {"kind": "vote", "min_confidence": 0.9, "fallback": "rank"},
                {"kind": "synthesis", "model": "alpha"},
            ]
        }
    }
    orch, recorder = start(start_orch, answer, pipelines)
    result = ask(orch, "p")
    assert result.status == "ok" and result.answer == "final from the top two"
    assert [r.name for r in result.rounds] == ["initial", "ranking", "synthesis"]
    assert result.ranking is None  # the synthesis decided; the ranking chose its inputs
    [synthesis] = recorder.by_round("synthesis")
    assert "answer-alpha" in synthesis.prompt and "answer-bravo" in synthesis.prompt
    assert "answer-charlie" not in synthesis.prompt


def test_an_unreadable_ranking_falls_back_to_agreement_and_fires_its_gate(start_orch) -> None:
    def answer(r):
        if r.round_name == "initial":
            return {"alpha": "Canberra", "bravo": "Sydney", "charlie": "Canberra"}[r.participant]
        if r.round_name == "ranking":
            return "I would rather not."
        return "Canberra."

    pipelines = {
        "p": {
            "stages": [
                {"kind": "initial"},
                {"kind": "rank", "min_confidence": 0.2, "fallback": "synthesis"},
            ]
        }
    }
    orch, _ = start(start_orch, answer, pipelines, pipeline={"synthesizer": "bravo"})
    result = ask(orch, "p")
    assert result.status == "ok" and result.answer == "Canberra."
    assert result.escalations[0] == {
        "stage": "rank",
        "confidence": None,
        "threshold": 0.2,
        "to": "synthesis",
    }
    assert result.synthesizer == "bravo"  # [pipeline]'s synthesizer writes a fallback


def test_a_confident_synthesis_gate_passes_on_agreement(start_orch) -> None:
    pipelines = {
        "p": {
            "stages": [
                {"kind": "initial"},
                {"kind": "synthesis", "min_confidence": 0.5, "fallback": "fail"},
            ]
        }
    }
    orch, _ = start(start_orch, lambda r: "the same words", pipelines)
    result = ask(orch, "p")
    assert result.status == "ok" and result.confidence == 1.0 and result.escalations == ()


# --- roles: stage models, chairman, system, template -----------------------------------


def test_a_chairman_outside_the_participants_synthesises(start_orch) -> None:
    pipelines = {
        "board": {
            "stages": [
                {"kind": "initial", "models": ["alpha", "bravo"]},
                {"kind": "synthesis", "model": "charlie", "system": "You chair the board."},
            ]
        }
    }
    orch, recorder = start(start_orch, lambda r: f"{r.participant} says", pipelines)
    result = ask(orch, "board")
    assert result.status == "ok" and result.synthesizer == "charlie"
    assert {r.participant for r in recorder.by_round("initial")} == {"alpha", "bravo"}
    [synthesis] = recorder.by_round("synthesis")
    assert synthesis.participant == "charlie" and synthesis.system == "You chair the board."


def test_the_request_synthesizer_outranks_the_stage_model(start_orch) -> None:
    pipelines = {"p": {"stages": [{"kind": "initial"}, {"kind": "synthesis", "model": "charlie"}]}}
    orch, _ = start(start_orch, lambda r: "x", pipelines)
    result = ask(orch, "p", synthesizer="alpha")
    assert result.synthesizer == "alpha"


def test_stage_system_and_template_replace_the_defaults_for_that_stage(start_orch) -> None:
    pipelines = {
        "p": {
            "stages": [
                {
                    "kind": "initial",
                    "system": "You are a lawyer.",
                    "template": "Legal view: {prompt}",
                },
                {"kind": "meta", "models": ["alpha"], "template": "R{round}: {answers}"},
                {"kind": "vote"},
            ]
        }
    }
    orch, recorder = start(
        start_orch,
        lambda r: "agreed",
        pipelines,
        names=("alpha", "bravo"),
    )
    result = ask(orch, "p", "May I?")
    assert result.status == "ok"
    initial = recorder.by_round("initial")
    assert {(r.prompt, r.system) for r in initial} == {("Legal view: May I?", "You are a lawyer.")}
    [meta] = recorder.by_round("meta")
    assert meta.participant == "alpha"
    assert meta.prompt in ("R2: Answer A:\nagreed\n\nAnswer B:\nagreed",)
    assert meta.system == DEFAULT_TEMPLATES["system"]  # no stage role: the default


def test_a_pipelines_validate_repairs_through_the_synthesizer(start_orch) -> None:
    lock = threading.Lock()
    attempts: list[str] = []

    def answer(r):
        if r.round_name != "synthesis":
            return "notes"
        with lock:
            attempts.append(r.prompt)
            return "Summary\nall good" if len(attempts) > 1 else "no sections"

    pipelines = {
        "report": {
            "stages": [{"kind": "initial"}, {"kind": "synthesis", "model": "alpha"}],
            "validate": {"required_sections": ["Summary"]},
        }
    }
    orch, _ = start(start_orch, answer, pipelines)
    result = ask(orch, "report")
    assert result.status == "ok" and result.answer.startswith("Summary")
    assert "these sections" in attempts[0] and "does not meet the requirements" in attempts[1]
    assert ask(orch, None).status == "ok"  # the default pipeline has no such check


# --- requests ---------------------------------------------------------------------------


def test_a_request_names_a_known_pipeline_and_not_rounds_or_strategy(start_orch) -> None:
    orch, _ = start(
        start_orch, lambda r: "x", {"p": {"stages": [{"kind": "initial"}, {"kind": "vote"}]}}
    )
    with pytest.raises(InvalidParams, match="unknown pipeline 'nope'; known: \\['p'\\]"):
        ask(orch, "nope")
    with pytest.raises(InvalidParams, match="named pipeline"):
        ask(orch, "p", strategy="vote")
    with pytest.raises(InvalidParams, match="named pipeline"):
        ask(orch, "p", rounds=["initial"])
    assert orch.status()["pipelines"] == ["p"]


def test_early_exit_in_a_named_pipeline_answers_from_the_agreed_initial_round(start_orch) -> None:
    pipelines = {"p": {"stages": [{"kind": "initial"}, {"kind": "synthesis"}]}}
    orch, recorder = start(start_orch, lambda r: "42", pipelines)
    result = ask(orch, "p", early_exit=True)
    assert result.status == "ok" and result.answer == "42" and result.early_exit
    assert recorder.by_round("synthesis") == []


# --- configuration ----------------------------------------------------------------------


def config_with(pipelines) -> dict:
    return {"models": fake_models(NAMES), "pipelines": pipelines}


@pytest.mark.parametrize(
    ("pipeline", "key", "words"),
    [
        ({"stages": []}, "pipelines.p.stages", "non-empty list"),
        ({"stages": [{"kind": "initial"}], "extra": 1}, "pipelines.p.extra", "unknown key"),
        ({"stages": [{"kind": "guess"}]}, "pipelines.p.stages[0].kind", "one of"),
        ({"stages": [{"kind": "vote"}]}, "pipelines.p.stages[0].kind", "initial or chain"),
        (
            {"stages": [{"kind": "initial"}, {"kind": "meta"}]},
            "pipelines.p.stages[1].kind",
            "decide",
        ),
        (
            {"stages": [{"kind": "initial", "models": ["zulu"]}, {"kind": "vote"}]},
            "pipelines.p.stages[0].models",
            "no model named 'zulu'",
        ),
        (
            {"stages": [{"kind": "chain", "model": "alpha", "models": ["bravo"]}]},
            "pipelines.p.stages[0].model",
            "not both",
        ),
        (
            {"stages": [{"kind": "initial"}, {"kind": "vote", "models": ["alpha"]}]},
            "pipelines.p.stages[1]",
            "calls no model",
        ),
        (
            {"stages": [{"kind": "initial", "min_confidence": 0.5}, {"kind": "vote"}]},
            "pipelines.p.stages[0].min_confidence",
            "confidence gate",
        ),
        (
            {"stages": [{"kind": "initial"}, {"kind": "vote", "min_confidence": 1.5}]},
            "pipelines.p.stages[1].min_confidence",
            "[0, 1]",
        ),
        (
            {"stages": [{"kind": "initial"}, {"kind": "vote", "fallback": "rank"}]},
            "pipelines.p.stages[1].fallback",
            "needs min_confidence",
        ),
        (
            {
                "stages": [
                    {"kind": "initial"},
                    {"kind": "vote", "min_confidence": 0.5, "fallback": "chain"},
                ]
            },
            "pipelines.p.stages[1].fallback",
            "one of",
        ),
        (
            {"stages": [{"kind": "chain", "template": "{prompt} {answers}"}]},
            "pipelines.p.stages[0].template",
            "unknown placeholder(s) ['answers']",
        ),
        (
            {"stages": [{"kind": "chain"}], "validate": {"regex": "("}},
            "pipelines.p.validate.regex",
            "not a valid regex",
        ),
        (
            {"stages": [{"kind": "chain", "system": ""}]},
            "pipelines.p.stages[0].system",
            "non-empty",
        ),
    ],
)
def test_a_bad_pipeline_is_refused_naming_its_key(pipeline, key, words) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(config_with({"p": pipeline}))
    assert caught.value.key == key and words in caught.value.message


def test_a_pipeline_may_not_take_a_strategys_name() -> None:
    with pytest.raises(ConfigError, match="strategy's name"):
        config_from_dict(config_with({"vote": {"stages": [{"kind": "chain"}]}}))


def test_check_config_describes_each_pipeline() -> None:
    config = config_from_dict(config_with({"gated": GATED}))
    text = describe(config)
    assert (
        "gated: [initial] -> [vote min_confidence=0.7 fallback=synthesis] -> [rank] -> "
        "[synthesis models=charlie]" in text
    )
    assert "  chain:\n    Question:" in text  # the chain template is printed too


def test_min_replies_above_one_no_longer_fails_every_synthesis(start_orch) -> None:
    orch, _ = start(start_orch, lambda r: "x", {}, pipeline={"min_replies": 2})
    result = orch.ask("q", timeout=WAIT)  # initial, meta, synthesis: one synthesis answer
    assert result.status == "ok", result.error
