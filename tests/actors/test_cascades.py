"""Quality per dollar in the engine (CONTRACT §16): cascades (``fallback = "next"``),
samples inside a pipeline, and the escalation counts in the result, ``status`` and
``/metrics``; driven with scripted fake models."""

from __future__ import annotations

import pytest
from helpers import WAIT, Recorder, fake_models

from actors.config import config_from_dict
from messages.commands import Ask
from messages.errors import ConfigError

NAMES = ("alpha", "bravo", "charlie")
CASCADE = {
    "stages": [
        {"kind": "initial", "models": ["alpha", "bravo"]},
        {"kind": "vote", "min_confidence": 1.0, "fallback": "next"},
        {"kind": "initial"},
        {"kind": "vote"},
    ]
}


def start(start_orch, answer, pipelines, names=NAMES):
    recorder = Recorder(answer)
    config = {
        "models": fake_models(names, reply=recorder, max_attempts=1),
        "pipelines": pipelines,
    }
    return start_orch(config), recorder


def test_a_cascade_whose_cheap_pair_agrees_asks_nobody_else(start_orch) -> None:
    orch, recorder = start(start_orch, lambda r: "Paris", {"cascade": CASCADE})
    result = orch.ask("Capital of France?", pipeline="cascade", timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.answer == "Paris"
    assert sorted(r.participant for r in recorder.requests) == ["alpha", "bravo"]
    assert result.escalations == ()
    assert result.answered_by == {"step": 1, "kind": "vote", "models": ["alpha", "bravo"]}
    assert [r.name for r in result.rounds] == ["initial"]


def test_a_cascade_whose_cheap_pair_disagrees_goes_on_to_the_panel(start_orch) -> None:
    def answer(r):
        if r.participant == "alpha":
            return "Lyon"
        return "Paris"

    orch, recorder = start(start_orch, answer, {"cascade": CASCADE})
    result = orch.ask("Capital of France?", pipeline="cascade", timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.answer == "Paris"
    assert sorted(r.participant for r in recorder.requests) == [
        "alpha",
        "alpha",
        "bravo",
        "bravo",
        "charlie",
    ]
    [fired] = result.escalations
    assert fired["stage"] == "vote" and fired["to"] == "next" and fired["confidence"] == 0.5
    assert result.answered_by == {"step": 3, "kind": "vote", "models": list(NAMES)}
    assert result.confidence == pytest.approx(2 / 3)
    assert result.to_dict()["answered_by"]["step"] == 3
    # status and /metrics count it per pipeline
    orch.ask("Capital of France?", pipeline="cascade", timeout=WAIT)
    counts = orch.status()["escalations"]["cascade"]
    assert counts == {"jobs": 2, "escalated": 2, "by_stage": {"vote": 2}}
    text = orch.metrics.telemetry.exposition().decode()
    assert 'orchestrord_escalations_total{pipeline="cascade",stage="vote"} 2.0' in text


def test_status_counts_a_pipeline_whose_gate_never_fired(start_orch) -> None:
    orch, _ = start(start_orch, lambda r: "Paris", {"cascade": CASCADE})
    orch.ask("q", pipeline="cascade", timeout=WAIT)
    assert orch.status()["escalations"] == {"cascade": {"jobs": 1, "escalated": 0, "by_stage": {}}}


def test_samples_ask_each_model_k_times_with_distinct_seeds_and_each_counts_in_the_vote(
    start_orch,
) -> None:
    replies = iter(["Paris", "Paris", "Lyon"])

    def answer(r):
        return next(replies)

    pipelines = {
        "sc": {
            "stages": [
                {"kind": "initial", "models": ["alpha"], "samples": 3, "temperature": 0.7},
                {"kind": "vote"},
            ]
        }
    }
    orch, recorder = start(start_orch, answer, pipelines)
    result = orch.ask("Capital of France?", pipeline="sc", timeout=WAIT)
    assert result.status == "ok", result.error
    assert [r.participant for r in recorder.requests] == ["alpha"] * 3
    seeds = [r.seed for r in recorder.requests]
    assert len(set(seeds)) == 3 and None not in seeds[1:]
    assert {r.temperature for r in recorder.requests} == {0.7}
    assert result.answer == "Paris" and result.confidence == pytest.approx(2 / 3)
    groups = {v["answer"]: v["models"] for v in result.votes}
    assert sorted(groups["paris"] + groups["lyon"]) == ["alpha", "alpha#2", "alpha#3"]
    assert len(result.rounds[0].replies) == 3


def test_samples_of_a_deterministic_job_repeat_and_differ_from_each_other(start_orch) -> None:
    pipelines = {"sc": {"stages": [{"kind": "initial", "samples": 2}, {"kind": "vote"}]}}
    runs = []
    for _ in range(2):  # two orchestrators: the second does not answer from a cache
        orch, recorder = start(start_orch, lambda r: "Paris", pipelines)
        orch.ask("q", pipeline="sc", deterministic=True, timeout=WAIT)
        runs.append(sorted((r.participant, r.seed) for r in recorder.requests))
    assert runs[0] == runs[1]  # the same seeds again
    assert len({seed for _, seed in runs[0]}) == 6  # every call its own


def test_the_deterministic_cache_key_includes_samples_and_temperature() -> None:
    import actors

    def key(stage):
        pipelines = {"p": {"stages": [{"kind": "initial", **stage}, {"kind": "vote"}]}}
        config = config_from_dict({"models": fake_models(NAMES, reply="x"), "pipelines": pipelines})
        orch = actors.Orchestrator.__new__(actors.Orchestrator)
        orch.config = config
        ask = Ask(job_id="j", prompt="q", pipeline="p", deterministic=True)
        return orch.cache_key(ask)

    plain = key({})
    assert key({"samples": 3}) != plain
    assert key({"temperature": 0.5}) != plain
    assert key({}) == plain


def test_a_budget_check_prices_every_sample(start_orch) -> None:
    pipelines = {"sc": {"stages": [{"kind": "initial", "samples": 4}, {"kind": "vote"}]}}
    models = [
        {**m, "price_in_per_mtok": 1000.0, "price_out_per_mtok": 1000.0, "max_tokens": 100}
        for m in fake_models(NAMES, reply="x")
    ]
    orch = start_orch({"models": models, "pipelines": pipelines})
    # one call costs about $0.1 (100 output tokens at $1000 per million): 12 calls do not fit
    result = orch.ask("q", pipeline="sc", max_cost_usd=0.5, timeout=WAIT)
    assert result.status == "error" and result.error.code == "budget_exhausted"
    assert "would cost" in result.error.message


# --- configuration ------------------------------------------------------------------------


def config_error(stages) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(
            {"models": fake_models(NAMES, reply="x"), "pipelines": {"p": {"stages": stages}}}
        )
    return str(caught.value)


@pytest.mark.parametrize(
    ("stages", "key", "why"),
    [
        (
            [{"kind": "initial"}, {"kind": "vote", "min_confidence": 0.9, "fallback": "next"}],
            "stages[1].fallback",
            "there is none",
        ),
        ([{"kind": "initial"}, {"kind": "vote", "samples": 2}], "stages[1].samples", "only"),
        ([{"kind": "initial", "samples": 0}, {"kind": "vote"}], "stages[0].samples", "1 to 16"),
        ([{"kind": "initial", "samples": 17}, {"kind": "vote"}], "stages[0].samples", "1 to 16"),
        ([{"kind": "initial", "samples": 2.0}, {"kind": "vote"}], "stages[0].samples", "whole"),
        ([{"kind": "initial", "samples": True}, {"kind": "vote"}], "stages[0].samples", "whole"),
        ([{"kind": "initial", "temperature": 3}, {"kind": "vote"}], "temperature", "0 to 2"),
        ([{"kind": "initial", "temperature": "hot"}, {"kind": "vote"}], "temperature", "0 to 2"),
        (
            [{"kind": "initial"}, {"kind": "meta", "temperature": 1}, {"kind": "vote"}],
            "stages[1].temperature",
            "only",
        ),
        ([{"kind": "initial"}, {"kind": "vote", "weights": "votes"}], "weights", "accuracy"),
        ([{"kind": "initial"}, {"kind": "rank", "weights": "accuracy"}], "weights", "only"),
        ([{"kind": "initial"}, {"kind": "vote", "dataset": "geo"}], "dataset", "needs weights"),
        (
            [{"kind": "initial"}, {"kind": "vote", "weights": "accuracy", "dataset": ""}],
            "dataset",
            "dataset's name",
        ),
        ([{"kind": "initial"}, {"kind": "vote", "exclude_outliers": True}], "exclude", "only"),
        (
            [{"kind": "initial"}, {"kind": "synthesis", "exclude_outliers": "yes"}],
            "exclude_outliers",
            "true or false",
        ),
    ],
)
def test_bad_quality_settings_are_refused_naming_the_key(stages, key, why) -> None:
    message = config_error(stages)
    assert key in message and why in message


def test_a_gate_may_fall_back_to_next_and_describe_says_so() -> None:
    config = config_from_dict(
        {"models": fake_models(NAMES, reply="x"), "pipelines": {"cascade": CASCADE}}
    )
    gate = config.pipelines["cascade"].stages[1]
    assert gate.fallback == "next"
    assert "fallback=next" in config.pipelines["cascade"].describe()


def test_the_run_store_counts_escalations_per_pipeline(tmp_path) -> None:
    from actors import cascades
    from actors.store import RunStore
    from messages.results import JobResult

    fired = ({"stage": "vote", "confidence": 0.5, "threshold": 1.0, "to": "next"},)
    store = RunStore(tmp_path / "runs.sqlite3")
    try:
        for i, (pipeline, escalations) in enumerate(
            [("cascade", fired), ("cascade", ()), (None, ()), ("cascade", fired)]
        ):
            result = JobResult(
                job_id=f"j{i}", status="ok", pipeline=pipeline, escalations=escalations
            )
            store.accept(result.job_id, "q", {}, {}).result(timeout=WAIT)
            store.finish(result).result(timeout=WAIT)
        counts = store.submit(cascades.stored_counts).result(timeout=WAIT)
    finally:
        store.close()
    assert counts == {"cascade": {"jobs": 3, "escalated": 2, "by_stage": {"vote": 2}}}


def test_the_cache_key_of_a_request_running_the_default_pipeline_includes_its_stages() -> None:
    import actors

    def key(default_samples):
        stages = [{"kind": "initial", "samples": default_samples}, {"kind": "vote"}]
        config = config_from_dict(
            {
                "models": fake_models(NAMES, reply="x"),
                "pipelines": {"p": {"stages": stages}},
                "pipeline": {"default": "p"},
            }
        )
        orch = actors.Orchestrator.__new__(actors.Orchestrator)
        orch.config = config
        return orch.cache_key(Ask(job_id="j", prompt="q", deterministic=True))

    assert key(2) != key(3)  # the default's stages changed: a new answer, not a stale one
