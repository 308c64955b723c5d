"""Strategies and options of the pipeline, end to end with scripted fakes."""

from __future__ import annotations

import json
import re
import threading

import pytest
from helpers import WAIT, Recorder, fake_models

from messages.errors import InvalidParams, ProviderUnavailable

NAMES = ("alpha", "bravo", "charlie")


def orch_with(start_orch, answer, names=NAMES, **extra):
    recorder = Recorder(answer)
    config = {"models": fake_models(names, reply=recorder, max_attempts=1), **extra}
    return start_orch(config), recorder


# --- vote -------------------------------------------------------------------------------


def test_vote_picks_the_plurality_and_reports_the_share(start_orch) -> None:
    answers = {"alpha": "42", "bravo": "42.0", "charlie": "41"}
    orch, recorder = orch_with(start_orch, lambda r: answers[r.participant])
    result = orch.ask("6 x 7?", rounds=["initial", "synthesis"], strategy="vote")
    assert result.status == "ok" and result.strategy == "vote"
    assert result.answer in ("42", "42.0") and result.confidence == pytest.approx(2 / 3)
    assert result.votes[0]["models"] == ["alpha", "bravo"] and result.votes[0]["winner"]
    assert len(recorder.requests) == 3  # vote replaces the synthesis round
    assert [r.name for r in result.rounds] == ["initial"]


def test_vote_with_answer_pattern(start_orch) -> None:
    answers = {
        "alpha": "Thinking... Final: (B)",
        "bravo": "Hmm. Final: (b)",
        "charlie": "Final: (D)",
    }
    orch, _ = orch_with(start_orch, lambda r: answers[r.participant])
    result = orch.ask("pick", rounds=["initial"], strategy="vote", answer_pattern=r"\(([A-D])\)")
    assert result.answer == "B" and result.votes[0]["answer"] == "b"


def test_vote_ties_are_broken_by_recent_success_and_reported(start_orch) -> None:
    failing = threading.Event()
    failing.set()

    def answer(r):
        if r.participant == "alpha" and failing.is_set() and r.round_name == "meta":
            raise ProviderUnavailable("down for a moment")
        return {"alpha": "yes", "bravo": "no"}[r.participant]

    orch, _ = orch_with(start_orch, answer, names=("alpha", "bravo"))
    for _ in range(3):  # alpha's record: initial ok, meta failed, three times
        orch.ask("warm up")
    failing.clear()
    result = orch.ask("yes or no?", rounds=["initial"], strategy="vote")
    assert result.answer == "no"  # bravo, with the better recent success rate
    assert result.votes[0]["tie_broken_by"] == "success_rate"


# --- rank -------------------------------------------------------------------------------


def ranker(style: dict[str, str]):
    """Fakes: each model answers 'answer-<name>'; in the ranking round each ranks the
    others' answers in name order (alpha, bravo, charlie), in its own style."""

    def answer(r):
        if r.round_name != "ranking":
            return f"answer-{r.participant}"
        found = {m: re.search(rf"Answer ([A-Z]):\nanswer-{m}", r.prompt) for m in NAMES}
        assert found[r.participant] is None  # a ranker never sees its own answer
        first, second = [f.group(1) for m, f in found.items() if f is not None]
        return {
            "strict": f"Ranking: {first} > {second}",
            "sloppy": f"I liked Answer {first} most; Answer {second} was weaker.",
            "garbage": "I cannot rank these.",
        }[style[r.participant]]

    return answer


def test_rank_combines_parsed_rankings_by_borda(start_orch) -> None:
    style = {"alpha": "strict", "bravo": "sloppy", "charlie": "garbage"}
    orch, recorder = orch_with(start_orch, ranker(style))
    result = orch.ask("q", rounds=["initial"], strategy="rank")
    assert result.status == "ok" and result.answer == "answer-alpha"
    ranking_round = result.rounds[-1]
    assert ranking_round.name == "ranking"
    replies = {r.model: r for r in ranking_round.replies}
    assert replies["charlie"].status == "error" and replies["charlie"].error.code == "bad_ranking"
    assert result.ranking["rankings"] == {
        "alpha": ["bravo", "charlie"],  # alpha ranks only the others
        "bravo": ["alpha", "charlie"],
    }
    # alpha: bravo ranked it first (1.0); bravo: alpha ranked it first (1.0); charlie: last
    # for both (0.0). Nobody's own vote counts, so no self-promotion decides the order.
    assert result.ranking["scores"] == {"alpha": 1.0, "bravo": 1.0, "charlie": 0.0}
    assert result.ranking["order"] == ["alpha", "bravo", "charlie"]
    assert result.confidence == 0.0  # a tie at the top
    assert len(recorder.requests) == 6


def test_rank_with_synthesis_synthesises_from_the_top_two(start_orch) -> None:
    style = dict.fromkeys(NAMES, "strict")
    orch, recorder = orch_with(start_orch, ranker(style))
    result = orch.ask("q", rounds=["initial", "synthesis"], strategy="rank")
    [synthesis] = recorder.by_round("synthesis")
    assert "answer-alpha" in synthesis.prompt and "answer-bravo" in synthesis.prompt
    assert "answer-charlie" not in synthesis.prompt
    assert result.synthesizer == synthesis.participant


# --- schema -----------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def schema_answers(script: dict[str, list[str]]):
    lock = threading.Lock()

    def answer(r):
        if r.round_name != "synthesis":
            return "Canberra"
        with lock:
            queue = script[r.participant]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def test_a_valid_answer_passes_and_models_are_told_the_schema(start_orch) -> None:
    script = {"alpha": ['{"city": "Canberra"}'], "bravo": ["x"], "charlie": ["x"]}
    orch, recorder = orch_with(
        start_orch, schema_answers(script), pipeline={"synthesizer": "alpha"}
    )
    result = orch.ask("capital?", rounds=["initial", "synthesis"], schema=SCHEMA)
    assert result.status == "ok" and json.loads(result.answer) == {"city": "Canberra"}
    assert '"required"' in recorder.by_round("synthesis")[0].prompt


def test_an_invalid_answer_is_repaired_by_the_same_synthesizer(start_orch) -> None:
    script = {"alpha": ["Canberra!", '{"city": "Canberra"}'], "bravo": ["x"], "charlie": ["x"]}
    orch, recorder = orch_with(
        start_orch, schema_answers(script), pipeline={"synthesizer": "alpha"}
    )
    result = orch.ask("capital?", rounds=["initial", "synthesis"], schema=SCHEMA)
    assert result.status == "ok" and result.synthesizer == "alpha"
    second = recorder.by_round("synthesis")[1]
    assert second.participant == "alpha" and "does not meet the requirements" in second.prompt


def test_then_the_next_best_model_synthesises(start_orch) -> None:
    script = {"alpha": ["bad"], "bravo": ['{"city": "Canberra"}'], "charlie": ['{"city": "C"}']}
    orch, recorder = orch_with(
        start_orch,
        schema_answers(script),
        names=("alpha", "bravo"),
        pipeline={"synthesizer": "alpha"},
    )
    result = orch.ask("capital?", rounds=["initial", "synthesis"], schema=SCHEMA)
    assert result.status == "ok" and result.synthesizer == "bravo"
    assert [r.participant for r in recorder.by_round("synthesis")] == ["alpha", "alpha", "bravo"]


def test_when_nothing_is_valid_the_job_fails_with_the_answer_and_errors(start_orch) -> None:
    script = {"alpha": ["bad"], "bravo": ["worse"], "charlie": ["x"]}
    orch, _ = orch_with(
        start_orch,
        schema_answers(script),
        names=("alpha", "bravo"),
        pipeline={"synthesizer": "alpha"},
    )
    result = orch.ask("capital?", rounds=["initial", "synthesis"], schema=SCHEMA)
    assert result.status == "error" and result.error.code == "schema_failed"
    assert result.answer == "worse" and result.schema_errors
    assert "not valid JSON" in result.schema_errors[0]


# --- deterministic, early exit, budgets --------------------------------------------------


def test_deterministic_repeats_are_cached_with_zero_provider_calls(start_orch) -> None:
    orch, recorder = orch_with(start_orch, lambda r: f"{r.participant}: 4")
    first = orch.ask("2+2?", deterministic=True)
    calls = len(recorder.requests)
    assert calls == 7 and not first.cached
    assert all(r.seed is not None for r in recorder.requests)
    again = orch.ask("2+2?", deterministic=True)
    assert again.cached and again.answer == first.answer and again.job_id != first.job_id
    assert len(recorder.requests) == calls  # no provider call
    orch.ask("2+2?")  # not deterministic: runs
    orch.ask("3+3?", deterministic=True)  # another prompt: runs
    assert len(recorder.requests) == calls + 14


def test_deterministic_label_order_follows_the_content(start_orch) -> None:
    orch, recorder = orch_with(start_orch, lambda r: f"answer-{r.participant}")
    orch.ask("same prompt", deterministic=True)
    orch.cache.clear()  # run again for real
    orch.ask("same prompt", deterministic=True)
    metas = [r.prompt for r in recorder.by_round("meta")]
    assert sorted(metas[:3]) == sorted(metas[3:])


def test_early_exit_makes_n_calls_when_initial_answers_agree(start_orch) -> None:
    orch, recorder = orch_with(
        start_orch, lambda r: "Canberra." if r.participant != "alpha" else "canberra"
    )
    result = orch.ask("capital?", early_exit=True)
    assert result.status == "ok" and result.confidence == 1.0 and result.early_exit
    assert len(recorder.requests) == 3 and [r.name for r in result.rounds] == ["initial"]
    assert result.answer.lower().startswith("canberra")


def test_early_exit_goes_on_when_answers_differ(start_orch) -> None:
    orch, recorder = orch_with(start_orch, lambda r: r.participant)
    result = orch.ask("q", early_exit=True)
    assert not result.early_exit and len(recorder.requests) == 7


def test_a_budget_stops_the_job_before_the_round_that_would_pass_it(start_orch) -> None:
    recorder = Recorder(lambda r: f"{r.participant} says 4")
    models = fake_models(
        NAMES, reply=recorder, max_tokens=100, price_in_per_mtok=1000.0, price_out_per_mtok=1000.0
    )
    orch = start_orch({"models": models})
    # At $0.001 a token, initial is estimated at ~$0.38 (prompt + max_tokens, 3 models) and
    # costs ~$0.10; meta's estimate (~$0.40 more) would pass $0.45: it is not started.
    result = orch.ask("2+2?", max_cost_usd=0.45)
    assert result.status == "error" and result.error.code == "budget_exhausted"
    assert len(recorder.requests) == 3 and result.cost_usd <= 0.45
    assert result.answer is not None and result.answer.endswith("says 4")


# --- auto synthesizer ---------------------------------------------------------------------


def test_auto_synthesizer_follows_the_metrics_and_drops_a_failing_model(start_orch) -> None:
    failing = threading.Event()

    def answer(r):
        if r.participant == "alpha" and failing.is_set():
            raise ProviderUnavailable("alpha is failing")
        return f"{r.participant} answer"

    recorder = Recorder(answer)
    models = [
        {"name": "alpha", "provider": "fake", "reply": recorder, "max_attempts": 1},
        {"name": "bravo", "provider": "fake", "reply": recorder, "latency_ms": 30},
        {"name": "charlie", "provider": "fake", "reply": recorder, "latency_ms": 30},
    ]
    orch = start_orch({"models": models})
    assert orch.ask("q").synthesizer == "alpha"  # fastest with a clean record
    failing.set()
    results = [orch.ask("q") for _ in range(2)]
    assert all(r.status == "ok" for r in results)
    assert orch.metrics.stats("alpha").circuit_open
    assert orch.ask("q").synthesizer in ("bravo", "charlie")


def test_recorded_history_seeds_the_auto_pick(start_orch, tmp_path) -> None:
    from actors.store import RunStore
    from messages.results import JobResult, ModelReply, RoundResult

    store = RunStore(tmp_path / "runs.sqlite3")
    replies = [
        ModelReply(model="alpha", status="error"),
        ModelReply(model="bravo", status="ok", latency_ms=5.0),
        ModelReply(model="charlie", status="ok", latency_ms=50.0),
    ]
    store.accept("old", "p", {}, {}).result(10)
    store.finish(
        JobResult(
            job_id="old", status="ok", rounds=(RoundResult(name="initial", replies=tuple(replies)),)
        )
    ).result(10)
    history = store.history(NAMES).result(10)
    store.close()
    orch = start_orch({"models": fake_models(NAMES)})
    orch.metrics.load(history)
    assert orch.metrics.rank(NAMES) == ["bravo", "charlie", "alpha"]
    assert orch.ask("q").synthesizer == "bravo"


def test_a_catastrophic_answer_pattern_does_not_stall_the_job_or_other_jobs(start_orch) -> None:
    orch = start_orch(
        {
            "models": fake_models(["a", "b", "c"], reply="a" * 40 + "!"),
            "pipeline": {"rounds": ["initial"]},
        }
    )
    evil = orch.submit("q", strategy="vote", answer_pattern=r"(a|aa)+$")
    other = orch.ask("another question", timeout=WAIT)
    assert other.status == "ok"
    result = evil.get(timeout=WAIT)
    assert result.status == "ok"
    assert result.answer == "a" * 40 + "!"  # fell back to the raw replies
    assert result.confidence == 0.0


def test_an_ok_job_never_answers_an_empty_string(start_orch) -> None:
    orch = start_orch(
        {"models": fake_models(["a", "b"], reply="   "), "pipeline": {"rounds": ["initial"]}}
    )
    result = orch.ask("q", strategy="vote", timeout=WAIT)
    assert result.status == "error" and result.error.code == "round_failed"


def test_a_synthesizer_outside_the_jobs_models_is_a_chairman(start_orch) -> None:
    """`--models gemini,llama` with synthesizer = "gpt" used to fail: "synthesizer 'gpt'
    is not one of the job's models"."""
    recorder = Recorder()
    orch = start_orch(
        {
            "models": fake_models(["gpt", "gemini", "llama"], reply=recorder),
            "pipeline": {"synthesizer": "gpt", "rounds": ["initial", "synthesis"]},
        }
    )
    result = orch.ask("q", models=["gemini", "llama"], timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.synthesizer == "gpt"
    assert sorted(r.participant for r in recorder.by_round("initial")) == ["gemini", "llama"]
    assert [r.participant for r in recorder.by_round("synthesis")] == ["gpt"]
    voted = orch.ask("q", models=["gemini", "llama"], strategy="vote", timeout=WAIT)
    assert voted.status == "ok"  # no synthesis stage: the synthesizer is ignored
    with pytest.raises(InvalidParams, match="unknown synthesizer 'nobody'"):
        orch.ask("q", synthesizer="nobody", timeout=WAIT)


def test_deterministic_keeps_the_ensemble_diverse(start_orch) -> None:
    """Every participant used to run at temperature 0 with one seed: three local models
    answered identically. Each model gets its own seed; providers that honour seeds keep
    their configured temperature, the others get 0."""
    recorder = Recorder()
    orch = start_orch(
        {
            "models": [
                *fake_models(["f1", "f2"], reply=recorder, temperature=0.9),
                {"name": "gpt", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
            ],
            "pipeline": {"rounds": ["initial"]},
        }
    )
    orch.ask("q", deterministic=True, models=["f1", "f2"], timeout=WAIT)
    f1, f2 = sorted(recorder.by_round("initial"), key=lambda r: r.participant)
    assert f1.seed != f2.seed
    assert f1.temperature == f2.temperature == 0.9
    from actors.jobs import build_job
    from messages.commands import Ask

    built = build_job(orch.config, Ask(prompt="q", deterministic=True), None, 0.0)
    assert built.sampling("gpt")[0] == 0.0  # openai does not honour seeds: temperature 0
    assert built.sampling("f1") == (None, built.sampling("f1")[1])
    again = build_job(orch.config, Ask(prompt="q", deterministic=True), None, 0.0)
    assert again.sampling("f1") == built.sampling("f1")  # derived from the job: repeatable


def test_deterministic_synthesizer_choice_ignores_call_history(start_orch) -> None:
    orch, _ = orch_with(start_orch, lambda r: f"{r.participant}: 4")
    first = orch.ask("2+2?", deterministic=True)
    orch.metrics.load([(first.synthesizer, False, 1.0)] * 50)  # it now looks unreliable
    orch.cache.clear()
    again = orch.ask("2+2?", deterministic=True)
    assert again.synthesizer == first.synthesizer


def test_system_max_tokens_and_temperature_reach_every_call(start_orch) -> None:
    orch, recorder = orch_with(start_orch, lambda r: f"{r.participant}: 4")
    orch.ask("q", system="You are terse.", max_tokens=7, temperature=0.2)
    assert recorder.requests
    assert all(
        (r.system, r.max_tokens, r.temperature) == ("You are terse.", 7, 0.2)
        for r in recorder.requests
    )


def test_every_cached_option_changes_the_cache_key(start_orch) -> None:
    from dataclasses import replace

    from messages.commands import Ask
    from messages.options import ASK_OPTIONS

    orch, _ = orch_with(start_orch, lambda r: "x")
    base = Ask(prompt="q", deterministic=True)
    samples = {
        "prompt": "other",
        "messages": (("user", "earlier"), ("assistant", "reply"), ("user", "q")),
        "system": "s",
        "max_tokens": 5,
        "temperature": 0.5,
        "models": ("a",),
        "rounds": ("initial",),
        "strategy": "vote",
        "pipeline": "p",
        "synthesizer": "b",
        "schema": {"type": "object"},
        "early_exit": True,
        "max_cost_usd": 1.0,
        "answer_pattern": "x",
        "tools": ({"type": "function", "function": {"name": "f"}},),
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "stop": ("END",),
        "seed": 7,
        "top_p": 0.5,
        "presence_penalty": 1.0,
        "frequency_penalty": 1.0,
        "reasoning_effort": "low",
    }
    for option in ASK_OPTIONS:
        if option.cached:
            # tool_choice needs tools: compare against a job with the same tools
            start = replace(base, tools=samples["tools"]) if option.name == "tool_choice" else base
            changed = replace(start, **{option.name: samples[option.name]})
            assert orch.cache_key(changed) != orch.cache_key(start), option.name


def test_a_models_role_changes_the_cache_key(start_orch) -> None:
    """A model's ``system`` (its role) changes its answers: a cached answer written under
    another role must not be served (it was left out of the key once)."""
    from messages.commands import Ask

    keys = []
    for role in (None, "You are a terse reviewer."):
        models = [{**m, "system": role} if role else m for m in fake_models(["a", "b"])]
        orch = start_orch({"models": models})
        keys.append(orch.cache_key(Ask(prompt="q", deterministic=True)))
    assert keys[0] != keys[1]


def test_every_result_carries_an_agreement_map(start_orch) -> None:
    replies = {"a": "Canberra", "b": "Sydney", "c": "Canberra is the capital"}
    orch = start_orch(
        {
            "models": fake_models(
                ["a", "b", "c"], reply=Recorder(lambda r: replies[r.participant])
            ),
            "pipeline": {"rounds": ["initial", "synthesis"], "synthesizer": "a"},
        }
    )
    result = orch.ask("Capital of Australia?", timeout=WAIT)  # a synthesises "Canberra"
    agreement = result.to_dict()["agreement"]
    assert agreement["dissenters"] == ["b"] and agreement["score"] == 0.6667
    assert agreement["clusters"][0]["models"] == ["a", "c"]


def test_a_models_role_is_its_system_prompt_in_every_stage(start_orch) -> None:
    recorder = Recorder()
    orch = start_orch(
        {
            "models": [
                {
                    "name": "critic",
                    "provider": "fake",
                    "reply": recorder,
                    "system": "You are a sceptical reviewer.",
                },
                {"name": "plain", "provider": "fake", "reply": recorder},
            ],
            "pipeline": {"synthesizer": "critic"},
        }
    )
    orch.ask("q", timeout=WAIT)
    from actors.prompts import DEFAULT_TEMPLATES

    by_model = {}
    for request in recorder.requests:
        by_model.setdefault(request.participant, set()).add(request.system)
    assert by_model["critic"] == {"You are a sceptical reviewer."}  # synthesis included
    assert by_model["plain"] == {DEFAULT_TEMPLATES["system"]}
    recorder.requests.clear()
    orch.ask("q", system="Answer in French.", timeout=WAIT)
    systems = {r.participant: r.system for r in recorder.requests}
    assert systems["critic"] == "You are a sceptical reviewer.\n\nAnswer in French."
    assert systems["plain"] == "Answer in French."


def test_no_readable_ranking_falls_back_to_the_most_agreed_answer(start_orch) -> None:
    """When no model wrote a readable ranking the job used to fail, though good answers
    were there."""
    answers = {"alpha": "Canberra", "bravo": "Sydney", "charlie": "It is Canberra"}

    def answer(r):
        return "I cannot rank these." if r.round_name == "ranking" else answers[r.participant]

    orch, _ = orch_with(start_orch, answer)
    result = orch.ask("Capital of Australia?", rounds=["initial"], strategy="rank")
    assert result.status == "ok", result.error
    assert result.ranking["fallback"] == "agreement"
    assert result.ranking["order"][:2] == ["alpha", "charlie"]
    assert result.answer == "Canberra"


def test_the_ranking_prompt_is_a_template(start_orch) -> None:
    recorder = Recorder(lambda r: "Ranking: A > B" if r.round_name == "ranking" else "x")
    orch = start_orch(
        {
            "models": fake_models(NAMES, reply=recorder),
            "templates": {"ranking": "Rank these for {prompt}:\n{answers}\nRanking: ?"},
        }
    )
    orch.ask("q", rounds=["initial"], strategy="rank", timeout=WAIT)
    assert all(r.prompt.startswith("Rank these for q:") for r in recorder.by_round("ranking"))


def test_a_pipelines_validate_goes_through_repair_like_a_schema(start_orch) -> None:
    """Seed 002's prompt demands named sections and nothing could check them."""
    drafts = iter(["## Summary\nok", "## Summary\nok\n## Risks\nnone"])
    recorder = Recorder(lambda r: next(drafts) if r.round_name == "synthesis" else "x")
    orch = start_orch(
        {
            "models": fake_models(NAMES, reply=recorder),
            "pipeline": {
                "rounds": ["initial", "synthesis"],
                "synthesizer": "alpha",
                "validate": {"required_sections": ["Summary", "Risks"]},
            },
        }
    )
    result = orch.ask("Assess the plan.", timeout=WAIT)
    assert result.status == "ok", result.error
    assert "## Risks" in result.answer
    first, repair = recorder.by_round("synthesis")
    assert "Summary, Risks" in first.prompt  # the synthesis prompt names the sections
    assert "missing the section 'Risks'" in repair.prompt


def test_an_answer_that_never_passes_its_checks_fails_with_32009(start_orch) -> None:
    recorder = Recorder(lambda r: "no sections at all")
    orch = start_orch(
        {
            "models": fake_models(NAMES, reply=recorder),
            "pipeline": {"rounds": ["initial", "synthesis"], "validate": {"regex": "^ANSWER:"}},
        }
    )
    result = orch.ask("q", timeout=WAIT)
    assert result.status == "error" and result.error.code == "schema_failed"
    assert result.schema_errors == ("does not match the required pattern '^ANSWER:'",)


def test_a_votes_agreement_map_compares_the_extracted_answers(start_orch) -> None:
    """The vote's answer is the extracted part ("42"): the map compared it with the
    pattern again, found nothing, and called every model a dissenter (score 0.0)."""
    answers = {
        "alpha": "So the answer is 42",
        "bravo": "the answer is 42.",
        "charlie": "answer is 7",
    }
    orch, _ = orch_with(start_orch, lambda r: answers[r.participant])
    result = orch.ask(
        "6 x 7?", rounds=["initial"], strategy="vote", answer_pattern=r"answer is (\d+)"
    )
    assert result.answer == "42"
    agreement = result.to_dict()["agreement"]
    assert agreement["dissenters"] == ["charlie"] and agreement["score"] == 0.6667


def test_a_vote_that_fell_back_to_whole_answers_maps_whole_answers(start_orch) -> None:
    """No reply holds the pattern: the vote compared whole answers, and so does the map."""
    answers = {"alpha": "Canberra", "bravo": "canberra", "charlie": "Sydney"}
    orch, _ = orch_with(start_orch, lambda r: answers[r.participant])
    result = orch.ask("Capital?", rounds=["initial"], strategy="vote", answer_pattern=r"=(\d+)")
    assert result.votes[0]["pattern_matched"] is False
    agreement = result.to_dict()["agreement"]
    assert agreement["dissenters"] == ["charlie"] and agreement["score"] == 0.6667
