"""The auto synthesizer learns answer quality: agreement with the final answer, peers'
rank scores and evaluation accuracy, kept across restarts, and says why it chose."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from helpers import WAIT, Recorder, fake_models

from actors.metrics import Metrics
from actors.store import RunStore, quality_samples
from messages.results import JobResult, ModelReply, RoundResult


def test_quality_is_a_smoothed_mean_of_the_evidence() -> None:
    metrics = Metrics()
    assert metrics.quality("new").score == 0.5  # no evidence: neither good nor bad
    for _ in range(5):
        metrics.record_quality("loser", 0.0)
    assert metrics.quality("loser").score == round(1 / 7, 4)  # (0 + 1) / (5 + 2)
    metrics.record_quality("ranked", 0.75)
    assert metrics.quality("ranked").score == round(1.75 / 3, 4)
    metrics.record_eval("evaluated", 9, 10)
    assert metrics.quality("evaluated").score == round(10 / 12, 4)
    assert "evaluation 9/10" in metrics.quality("evaluated").describe()


def test_quality_outranks_latency_and_latency_breaks_ties() -> None:
    metrics = Metrics()
    metrics.record("fast", ok=True, latency_s=0.01)
    metrics.record("slow", ok=True, latency_s=1.0)
    metrics.record("slower", ok=True, latency_s=2.0)
    assert metrics.rank(["slower", "slow", "fast"]) == ["fast", "slow", "slower"]
    for _ in range(5):
        metrics.record_quality("fast", 0.0)
        metrics.record_quality("slow", 1.0)
        metrics.record_quality("slower", 1.0)
    assert metrics.rank(["fast", "slower", "slow"]) == ["slow", "slower", "fast"]


def test_a_model_that_lost_every_vote_is_not_chosen_for_being_fastest(start_orch) -> None:
    """The audit: a model that lost 5 of 5 votes was picked because it was fastest."""

    def answer(r):
        n = int(re.search(r"question (\d+)", r.prompt).group(1))
        if r.round_name == "synthesis":
            return f"{r.participant} writes: the answer is {n}"
        return f"the answer is {n + 1 if r.participant == 'fast' else n}"

    recorder = Recorder(answer)
    models = [
        {"name": "fast", "provider": "fake", "reply": recorder, "max_attempts": 1},
        *fake_models(("steady", "careful"), reply=recorder, latency_ms=40, max_attempts=1),
    ]
    orch = start_orch({"models": models})
    first = orch.ask("question 0", rounds=["initial", "synthesis"], timeout=WAIT)
    assert first.synthesizer == "fast"  # no evidence yet: the fastest
    assert first.synthesizer_reason.startswith("auto: answer quality")
    for n in range(1, 6):
        voted = orch.ask(
            f"question {n}", rounds=["initial"], strategy="vote", answer_pattern=r"(\d+)$"
        )
        assert voted.to_dict()["agreement"]["dissenters"] == ["fast"]
    result = orch.ask("question 9", rounds=["initial", "synthesis"], timeout=WAIT)
    assert result.synthesizer in ("steady", "careful")
    assert result.synthesizer_reason.startswith("auto: answer quality 0.8")
    assert "agreed or ranked high" in result.to_dict()["synthesizer_reason"]
    assert orch.metrics.quality("fast").score < 0.2


def test_a_chosen_synthesizer_says_who_chose_it(start_orch) -> None:
    orch = start_orch(
        {
            "models": fake_models(("a", "b"), reply="x"),
            "pipeline": {"rounds": ["initial", "synthesis"], "synthesizer": "b"},
            "pipelines": {
                "p": {"stages": [{"kind": "initial"}, {"kind": "synthesis", "model": "a"}]}
            },
        }
    )
    assert orch.ask("q").synthesizer_reason == "[pipeline] synthesizer"
    assert orch.ask("q", synthesizer="a").synthesizer_reason == "the request's synthesizer"
    assert orch.ask("q", pipeline="p").synthesizer_reason == "the pipeline stage's model"
    assert orch.ask("q", rounds=["initial"]).synthesizer_reason is None  # nobody synthesised


def test_an_evaluation_teaches_the_synthesizer(start_orch) -> None:
    import json

    import actors
    from actors.evaluation import dataset

    orch = start_orch(
        {
            "models": fake_models(
                ("right", "wrong"),
                reply=Recorder(lambda r: "4" if r.participant == "right" else "5"),
            )
        }
    )
    data = dataset.parse(
        [
            json.dumps({"id": str(i), "prompt": f"2+2 ({i})?", "answer": 4, "grader": "numeric"})
            for i in range(4)
        ]
    )
    actors.evaluate(orch, data, systems=["right", "wrong"])
    assert orch.metrics.quality("right").eval_n == 4 and orch.metrics.quality("right").score > 0.8
    assert orch.metrics.quality("wrong").score < 0.2


def reply(model: str, text: str = "x") -> ModelReply:
    return ModelReply(model=model, status="ok", text=text)


def test_stored_results_give_back_their_quality_samples(tmp_path: Path) -> None:
    voted = JobResult(
        job_id="v",
        status="ok",
        rounds=(RoundResult(name="initial", replies=(reply("a"), reply("b"), reply("c"))),),
        agreement={"score": 0.67, "dissenters": ["c"], "clusters": []},
    )
    ranked = JobResult(
        job_id="r",
        status="ok",
        ranking={"scores": {"a": 1.0, "b": 0.25}, "order": ["a", "b"]},
    )
    alone = JobResult(
        job_id="s", status="ok", rounds=(RoundResult(name="initial", replies=(reply("a"),)),)
    )
    assert quality_samples(voted.to_dict()) == [("a", 1.0), ("b", 1.0), ("c", 0.0)]
    assert quality_samples(ranked.to_dict()) == [("a", 1.0), ("b", 0.25)]
    assert quality_samples(alone.to_dict()) == []  # one answer agrees with itself
    store = RunStore(tmp_path / "runs.sqlite3")
    for result in (voted, alone, ranked):
        store.accept(result.job_id, "p", {}, {}).result(WAIT)
        store.finish(result).result(WAIT)
    assert store.quality_history().result(WAIT) == [
        ("a", 1.0),
        ("b", 1.0),
        ("c", 0.0),
        ("a", 1.0),
        ("b", 0.25),
    ]  # oldest first
    store.close()


def test_an_unproven_model_does_not_outrank_proven_ones() -> None:
    metrics = Metrics()
    for _ in range(3):
        for model in ("a", "b"):
            metrics.record(model, ok=True, latency_s=0.5)
            metrics.record_quality(model, 0.0)  # every answer dissented: score 0.2
    assert metrics.rank(["never", "a", "b"]) == ["a", "b", "never"]
    assert Metrics().rank(["never", "a"]) == ["never", "a"]  # no record anywhere: the order


def test_a_model_always_cut_as_a_straggler_is_not_the_auto_synthesizer(start_orch) -> None:
    """It never answered, so it had no record and scored 0.5, above the models that did
    (their answers dissented from the synthesis); with no latency known it was never
    hedged, so every job waited for it (4.8-6.0 s instead of 1 s)."""

    async def answer(r):
        if r.round_name == "synthesis":
            return f"gamma from {r.participant}"
        if r.participant == "slow":
            await asyncio.sleep(600)  # cut as a straggler every time
        return {"a": "alpha", "b": "beta"}[r.participant]

    orch = start_orch(
        {
            "models": fake_models(["a", "b", "slow"], reply=Recorder(answer), max_attempts=1),
            "pipeline": {"rounds": ["initial", "synthesis"], "straggler_grace_s": 0.01},
        }
    )
    for n in range(3):
        result = orch.ask(f"question {n}", timeout=5.0)
        assert result.status == "ok", result.error
        assert result.synthesizer in ("a", "b")
    assert orch.metrics.quality("slow").samples == 0
