"""Outliers (issue 23): a panelist whose answers are persistently far from all the others
is flagged in the agreement map, and ``meta``/``synthesis`` with ``exclude_outliers``
leave it out (recorded in the result); the history survives restarts (the run store)."""

from __future__ import annotations

import pytest
from helpers import WAIT, Recorder, fake_models

from actors import outliers
from actors.outliers import Panel
from actors.store import RunStore
from messages.results import JobResult

NAMES = ("alpha", "bravo", "charlie", "delta")


def clusters(*groups):
    return [{"answer": "x", "models": list(g)} for g in groups]


def delta_alone(panel: Panel, jobs: int = outliers.MIN_JOBS) -> None:
    for _ in range(jobs):
        panel.observe(clusters(("alpha", "bravo", "charlie"), ("delta",)))


def test_a_model_that_stands_alone_persistently_is_flagged() -> None:
    panel = Panel()
    delta_alone(panel)
    assert panel.flagged() == {"delta": 1.0}


def test_too_few_jobs_flag_nobody() -> None:
    panel = Panel()
    delta_alone(panel, outliers.MIN_JOBS - 1)
    assert panel.flagged() == {}


def test_a_panel_that_disagrees_about_everything_flags_nobody() -> None:
    panel = Panel()
    for _ in range(20):
        panel.observe(clusters(("alpha",), ("bravo",), ("charlie",), ("delta",)))
    assert panel.rates()["delta"] == (1.0, 20)
    assert panel.flagged() == {}


def test_a_job_with_two_models_says_nothing_and_samples_fold_into_their_model() -> None:
    panel = Panel()
    panel.observe(clusters(("alpha",), ("bravo",)))
    assert panel.rates() == {}
    found = outliers.alone(clusters(("alpha", "alpha#2"), ("bravo",), ("charlie", "bravo#2")))
    assert found == {"alpha": True, "bravo": False, "charlie": False}


def test_an_occasional_dissenter_is_not_an_outlier() -> None:
    panel = Panel()
    for i in range(30):
        alone = ("delta",) if i % 4 == 0 else ()
        rest = tuple(m for m in NAMES if m not in alone)
        panel.observe(clusters(rest, alone) if alone else clusters(rest))
    assert panel.flagged() == {}


def start(start_orch, pipelines, says):
    recorder = Recorder(lambda r: says(r))
    models = fake_models(NAMES, reply=recorder, max_attempts=1)
    orch = start_orch({"models": models, "pipelines": pipelines})
    return orch, recorder


def initial_answer(r):
    return "The moon is made of cheese" if r.participant == "delta" else "Rock"


def test_the_agreement_map_names_the_outliers_and_synthesis_leaves_them_out(
    start_orch,
) -> None:
    pipelines = {
        "s": {"stages": [{"kind": "initial"}, {"kind": "synthesis", "exclude_outliers": True}]}
    }

    def says(r):
        return initial_answer(r) if r.round_name == "initial" else "Rock"

    orch, recorder = start(start_orch, pipelines, says)
    delta_alone(orch.metrics.panel)
    result = orch.ask("What is the moon made of?", pipeline="s", synthesizer="delta", timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.agreement["outliers"] == ["delta"]
    [excluded] = result.excluded_outliers
    assert excluded == {
        "stage": "synthesis",
        "step": 1,
        "models": ["delta"],
        "rates": {"delta": 1.0},
    }
    [synthesis] = recorder.by_round("synthesis")
    assert "cheese" not in synthesis.prompt and synthesis.participant != "delta"
    assert result.to_dict()["excluded_outliers"] == [excluded]


def test_meta_with_exclude_outliers_neither_asks_nor_shows_the_outlier(start_orch) -> None:
    pipelines = {
        "m": {
            "stages": [
                {"kind": "initial"},
                {"kind": "meta", "exclude_outliers": True},
                {"kind": "vote"},
            ]
        }
    }

    def says(r):
        return initial_answer(r) if r.round_name == "initial" else "Improved answer: Rock"

    orch, recorder = start(start_orch, pipelines, says)
    delta_alone(orch.metrics.panel)
    result = orch.ask("What is the moon made of?", pipeline="m", timeout=WAIT)
    assert result.status == "ok", result.error
    meta = recorder.by_round("meta")
    assert sorted(r.participant for r in meta) == ["alpha", "bravo", "charlie"]
    assert all("cheese" not in r.prompt for r in meta)
    assert result.excluded_outliers[0]["models"] == ["delta"]


def test_without_exclude_outliers_the_outlier_stays_and_is_only_named(start_orch) -> None:
    pipelines = {"s": {"stages": [{"kind": "initial"}, {"kind": "synthesis"}]}}
    orch, recorder = start(start_orch, pipelines, initial_answer)
    delta_alone(orch.metrics.panel)
    result = orch.ask("q", pipeline="s", timeout=WAIT)
    assert result.agreement["outliers"] == ["delta"]
    assert result.excluded_outliers == ()
    assert "cheese" in recorder.by_round("synthesis")[0].prompt


def test_exclusion_never_leaves_fewer_than_two_models(start_orch) -> None:
    pipelines = {
        "s": {
            "stages": [
                {"kind": "initial", "models": ["alpha", "delta"]},
                {"kind": "synthesis", "exclude_outliers": True},
            ]
        }
    }
    orch, recorder = start(start_orch, pipelines, initial_answer)
    delta_alone(orch.metrics.panel)
    result = orch.ask("q", pipeline="s", timeout=WAIT)
    assert result.excluded_outliers == ()
    assert "cheese" in recorder.by_round("synthesis")[0].prompt


def test_jobs_teach_the_panel_and_a_restart_reads_it_back(start_orch, tmp_path) -> None:
    orch, _ = start(start_orch, {}, initial_answer)
    for _ in range(outliers.MIN_JOBS):
        orch.ask("q", rounds=["initial"], strategy="vote", timeout=WAIT)
    assert orch.metrics.panel.flagged() == {"delta": 1.0}
    store = RunStore(tmp_path / "runs.sqlite3")
    try:
        for i in range(outliers.MIN_JOBS):
            result = JobResult(
                job_id=f"j{i}",
                status="ok",
                agreement={"clusters": clusters(("alpha", "bravo", "charlie"), ("delta",))},
            )
            store.accept(result.job_id, "q", {}, {}).result(timeout=WAIT)
            store.finish(result).result(timeout=WAIT)
        history = store.submit(outliers.stored_clusters).result(timeout=WAIT)
    finally:
        store.close()
    panel = Panel()
    panel.load(history)
    assert panel.flagged() == {"delta": 1.0}


@pytest.mark.parametrize("exclude", [True, False])
def test_describe_shows_exclude_outliers(exclude) -> None:
    from actors.pipelines import Stage

    assert (
        "exclude_outliers" in Stage(kind="meta", exclude_outliers=exclude).describe()
    ) is exclude
