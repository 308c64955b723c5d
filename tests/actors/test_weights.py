"""Weighted votes (CONTRACT §16): each answer weighs its model's measured accuracy (per
dataset when the stage names one) or the confidence it states; the result shows the
weights. Grades come from evaluation jobs (their ``eval_grade`` metadata), live and
from the run store."""

from __future__ import annotations

import pytest
from helpers import WAIT, fake_models

from actors import weights
from actors.store import RunStore
from actors.strategies import vote
from actors.weights import Accuracy
from messages.results import JobResult, ModelReply, RoundResult

NAMES = ("alpha", "bravo", "charlie")
SAYS = {"alpha": "Lyon", "bravo": "Paris", "charlie": "Paris"}


def weighted(**vote_stage):
    return {"stages": [{"kind": "initial"}, {"kind": "vote", "weights": "accuracy", **vote_stage}]}


def start(start_orch, pipelines, says=SAYS):
    models = fake_models(NAMES, reply=lambda r: says[r.participant], max_attempts=1)
    return start_orch({"models": models, "pipelines": pipelines})


def grade(table: Accuracy, model: str, right: int, n: int, dataset: str = "geo") -> None:
    for i in range(n):
        table.record(dataset, model, f"q{i}", i < right)


def test_a_measured_minority_outweighs_an_unreliable_majority(start_orch) -> None:
    orch = start(start_orch, {"w": weighted()})
    grade(orch.metrics.accuracy, "alpha", 9, 10)
    grade(orch.metrics.accuracy, "bravo", 2, 10)
    grade(orch.metrics.accuracy, "charlie", 2, 10)
    result = orch.ask("Capital?", pipeline="w", timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.answer == "Lyon"
    assert result.confidence == pytest.approx(0.9 / 1.3, abs=1e-4)
    assert result.weights["by"] == "accuracy"
    assert result.weights["answers"]["alpha"] == {"weight": 0.9, "source": "measured", "n": 10}
    assert {v["answer"]: v["weight"] for v in result.votes} == {"lyon": 0.9, "paris": 0.4}
    assert result.to_dict()["weights"] == result.weights


def test_an_unmeasured_model_weighs_the_panels_mean(start_orch) -> None:
    orch = start(start_orch, {"w": weighted()})
    grade(orch.metrics.accuracy, "alpha", 8, 10)
    grade(orch.metrics.accuracy, "bravo", 2, 10)
    result = orch.ask("Capital?", pipeline="w", timeout=WAIT)
    assert result.weights["answers"]["charlie"] == {"weight": 0.5, "source": "panel mean"}
    assert result.answer == "Lyon"  # 0.8 against 0.2 + 0.5


def test_with_nothing_measured_every_answer_weighs_one(start_orch) -> None:
    orch = start(start_orch, {"w": weighted()})
    result = orch.ask("Capital?", pipeline="w", timeout=WAIT)
    assert result.answer == "Paris" and result.confidence == pytest.approx(2 / 3, abs=1e-4)
    assert {w["source"] for w in result.weights["answers"].values()} == {"unmeasured"}


def test_a_stage_naming_a_dataset_uses_that_datasets_accuracy(start_orch) -> None:
    orch = start(start_orch, {"w": weighted(dataset="geo"), "all": weighted()})
    table = orch.metrics.accuracy
    grade(table, "alpha", 10, 10, "geo")
    grade(table, "alpha", 0, 40, "maths")
    for model in ("bravo", "charlie"):
        grade(table, model, 3, 10, "geo")
        grade(table, model, 30, 40, "maths")
    assert orch.ask("Capital?", pipeline="w", timeout=WAIT).answer == "Lyon"  # 1.0 vs 0.6
    assert orch.ask("Capital?", pipeline="all", timeout=WAIT).answer == "Paris"  # 0.2 vs 1.32


def test_confidence_weights_read_what_each_answer_states(start_orch) -> None:
    says = {
        "alpha": "Lyon. Confidence: 95%",
        "bravo": "Paris (confidence 0.2)",
        "charlie": "Paris, confidence level: 30",
    }
    pipelines = {"c": {"stages": [{"kind": "initial"}, {"kind": "vote", "weights": "confidence"}]}}
    orch = start(start_orch, pipelines, says)
    result = orch.ask("Capital?", pipeline="c", timeout=WAIT)
    assert result.answer.startswith("Lyon")
    assert {k: w["weight"] for k, w in result.weights["answers"].items()} == {
        "alpha": 0.95,
        "bravo": 0.2,
        "charlie": 0.3,
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Paris. Confidence: 0.8", 0.8),
        ("Paris\nconfidence 80%", 0.8),
        ("Confidence level: 65", 0.65),
        ("My confidence is 1", 1.0),
        ("Paris", None),
        ("confidence: 250%", None),
    ],
)
def test_stated_confidence(text, value) -> None:
    assert weights.stated_confidence(text) == value


def test_a_weighted_vote_ties_on_equal_weight_and_breaks_by_success() -> None:
    answers = {"a": "x", "b": "y"}
    out = vote(answers, None, {"a": 0.5, "b": 1.0}, {"a": 0.5, "b": 0.5})
    assert out is not None and out.answer == "y" and out.tie


def test_accuracy_falls_back_from_a_dataset_to_every_dataset() -> None:
    table = Accuracy()
    grade(table, "alpha", 3, 4, "maths")
    assert table.of("alpha", "geo") == 0.75
    assert table.of("alpha") == 0.75 and table.of("bravo") is None
    table.record("maths", "alpha", "q0", False)  # a newer grade of the same question
    assert table.measured("alpha") == (2, 4)


# --- grades from evaluation jobs ---------------------------------------------------------


def grade_meta(answers=("Paris",), grader="normalized", item="q1"):
    return {
        "eval": "digest",
        "eval_key": "k" * 24,
        weights.GRADE_KEY: {
            "dataset": "geo",
            "item": item,
            "grader": grader,
            "answers": list(answers),
        },
    }


def test_an_evaluation_job_of_one_model_is_graded_as_it_ends(start_orch) -> None:
    orch = start(start_orch, {})
    for item, model in (("q1", "bravo"), ("q2", "alpha")):
        orch.ask(
            "Capital?",
            models=[model],
            rounds=["initial"],
            metadata=grade_meta(item=item),
            timeout=WAIT,
        )
    assert orch.metrics.accuracy.measured("bravo", "geo") == (1, 1)
    assert orch.metrics.accuracy.measured("alpha", "geo") == (0, 1)
    orch.ask("Capital?", metadata=grade_meta(item="q3"), timeout=WAIT)  # a panel: no grade
    assert orch.metrics.accuracy.measured("charlie") == (0, 0)


def result_of(model: str, answer: str, job_id: str) -> JobResult:
    reply = ModelReply(model=model, status="ok", text=answer)
    return JobResult(
        job_id=job_id,
        status="ok",
        answer=answer,
        rounds=(RoundResult(name="initial", replies=(reply,)),),
    )


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ({}, "not an evaluation job"),
        ({weights.GRADE_KEY: "x"}, "not a table"),
        ({weights.GRADE_KEY: {"dataset": "geo"}}, "no grader"),
        ({weights.GRADE_KEY: {**grade_meta()[weights.GRADE_KEY], "grader": "nope"}}, "bad"),
    ],
)
def test_jobs_without_a_usable_grading_are_not_graded(metadata, why) -> None:
    table = Accuracy()
    weights.learn(table, metadata, result_of("alpha", "Paris", "j").to_dict())
    assert table.measured("alpha") == (0, 0), why


def test_a_daemon_reads_the_grades_back_from_the_run_store(tmp_path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    try:
        for i, (model, answer) in enumerate([("alpha", "Paris"), ("bravo", "Lyon")]):
            job = f"job{i}"
            meta = grade_meta(item=f"q{i}")
            store.accept(job, "Capital?", {}, meta).result(timeout=WAIT)
            store.finish(result_of(model, answer, job)).result(timeout=WAIT)
        store.accept("other", "x", {}, {}).result(timeout=WAIT)
        store.finish(result_of("alpha", "x", "other")).result(timeout=WAIT)
        grades = store.submit(weights.stored_grades).result(timeout=WAIT)
    finally:
        store.close()
    assert grades == [("geo", "alpha", "q0", True), ("geo", "bravo", "q1", False)]


def test_answers_of_equal_weight_are_counted_as_a_plain_vote_would() -> None:
    answers = {"a": "x", "b": "y", "c": "y"}  # every model measured at 0: weights all 0
    out = vote(answers, None, {"a": 1.0, "b": 0.5, "c": 0.5}, {"a": 0.0, "b": 0.0, "c": 0.0})
    assert out is not None and out.answer == "y" and out.confidence == 0.0 and not out.tie
