"""One failing model never takes the others (or the job) down."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from helpers import WAIT, Recorder, fake_models

from actors.providers import make_provider
from messages.commands import GetStatus
from messages.errors import ProviderUnavailable

FAST_SUPERVISION = {"backoff_min_s": 0.01, "backoff_max_s": 0.05, "start_timeout_s": 5}


class Crash(RuntimeError):
    """A bug inside an adapter: crashes the model actor."""


def scripted(behaviours: dict[str, object]) -> Recorder:
    crashed = threading.Event()

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    def answer(req):
        what = behaviours.get(req.participant)
        if what == "error":
            raise ProviderUnavailable("upstream is down", status=503)
        if what == "hang":
            return hang()
        if what == "crash_once" and not crashed.is_set():
            crashed.set()
            raise Crash("adapter bug")
        return f"{req.participant}: fine"

    return Recorder(answer)


def test_erroring_hanging_and_crashing_models_do_not_stop_the_job(start_orch, watch_roster) -> None:
    recorder = scripted({"err": "error", "slow": "hang", "boom": "crash_once"})
    orch = start_orch(
        {
            "models": fake_models(
                ["good", "err", "slow", "boom"], reply=recorder, timeout_s=1.0, max_attempts=1
            ),
            "pipeline": {"synthesizer": "good"},
            "supervision": FAST_SUPERVISION,
        }
    )
    watcher = watch_roster(orch)
    result = orch.ask("q")
    assert result.status == "ok", result.error
    assert result.answer == "good: fine"
    initial = {r.model: r for r in result.rounds[0].replies}
    assert initial["good"].ok
    assert initial["err"].status == "error" and initial["err"].error.code == "provider_unavailable"
    assert initial["slow"].status == "timeout" and initial["slow"].error.code == "timeout"
    assert initial["boom"].status == "error" and initial["boom"].error.code == "actor_crashed"

    # The crashed actor is restarted (a new ref) and serves the next job.
    roster = watcher.wait_for(lambda r: r["boom"].state == "up" and r["boom"].restarts == 1)
    assert roster["boom"].generation == 2
    again = orch.ask("q", models=["good", "boom"])
    assert again.status == "ok"
    assert all(r.ok for rnd in again.rounds for r in rnd.replies)
    assert orch.status()["models"][3]["restarts"] == 1


def test_retryable_errors_are_retried_within_the_attempts(start_orch) -> None:
    attempts: list[str] = []

    def flaky(req):
        attempts.append(req.call_id)
        if attempts.count(req.call_id) < 3:
            raise ProviderUnavailable("try again", status=502)
        return "finally"

    orch = start_orch(
        {
            "models": fake_models(["a"], reply=flaky, max_attempts=3),
            "supervision": {"backoff_min_s": 0.001, "backoff_max_s": 0.01},
        }
    )
    result = orch.ask("q", rounds=["initial"])
    assert result.answer == "finally"
    assert result.rounds[0].replies[0].attempts == 3
    assert len(attempts) == 3


def test_a_round_with_too_few_ok_replies_fails_the_job_with_the_partial_result(start_orch) -> None:
    recorder = scripted({"b": "error", "c": "error"})
    orch = start_orch(
        {
            "models": fake_models(["a", "b", "c"], reply=recorder, max_attempts=1),
            "pipeline": {"min_replies": 2},
        }
    )
    result = orch.ask("q")
    assert result.status == "error"
    assert result.error.code == "round_failed"
    assert [r.name for r in result.rounds] == ["initial"]
    assert len(recorder.requests) == 3  # no further round started


def test_a_job_past_its_deadline_times_out_with_its_partial_result(start_orch) -> None:
    recorder = scripted({"slow": "hang"})
    orch = start_orch({"models": fake_models(["fast", "slow"], reply=recorder)})
    result = orch.ask("q", timeout=2.0)
    assert result.status == "timeout"
    assert result.error.code == "job_timeout"
    replies = {r.model: r for r in result.rounds[0].replies}
    assert replies["fast"].ok and replies["slow"].status == "timeout"


def test_a_restart_storm_ends_in_down_and_rounds_skip_the_model(start_orch, watch_roster) -> None:
    starts: list[str] = []

    def factory(config, environ):
        if config.name == "broken":
            starts.append(config.name)
            raise Crash("cannot even start")
        return make_provider(config, environ)

    orch = start_orch(
        {
            "models": fake_models(["ok", "broken"]),
            "supervision": {**FAST_SUPERVISION, "max_restarts": 3},
        },
        provider_factory=factory,
    )
    watcher = watch_roster(orch)
    roster = watcher.wait_for(lambda r: r["broken"].state == "down")
    assert roster["broken"].restarts == 3
    assert len(starts) == 4  # the first start and three restarts, then no more
    result = orch.ask("q")
    assert result.status == "ok"
    broken = [r for rnd in result.rounds for r in rnd.replies if r.model == "broken"]
    assert broken and all(r.status == "skipped" for r in broken)
    assert {m["name"]: m["state"] for m in orch.status()["models"]} == {
        "ok": "up",
        "broken": "down",
    }


def test_a_job_whose_every_model_is_down_reports_no_model_available(
    start_orch, watch_roster
) -> None:
    def factory(config, environ):
        raise Crash("nothing works")

    orch = start_orch(
        {"models": fake_models(["x"]), "supervision": {**FAST_SUPERVISION, "max_restarts": 0}},
        provider_factory=factory,
    )
    watch_roster(orch).wait_for(lambda r: r["x"].state == "down")
    result = orch.ask("q")
    assert result.status == "error" and result.error.code == "no_model_available"


def test_cancel_ends_a_running_job(start_orch) -> None:
    recorder = scripted({"slow": "hang"})
    orch = start_orch({"models": fake_models(["slow"], reply=recorder)})
    started = threading.Event()
    job_id = "job-to-cancel"
    future = orch.submit("q", job_id=job_id, listener=lambda e: started.set())
    assert started.wait(WAIT)
    assert orch.cancel(job_id) is True
    result = future.get(timeout=WAIT)
    assert result.status == "cancelled" and result.error.code == "cancelled"
    assert orch.cancel(job_id) is False


def test_a_crashed_coordinator_answers_its_running_jobs(start_orch) -> None:
    from messages.events import CallFinished
    from messages.results import ModelReply

    recorder = scripted({"slow": "hang"})
    orch = start_orch({"models": fake_models(["slow"], reply=recorder)})
    started = threading.Event()
    future = orch.submit("q", listener=lambda e: started.set())
    assert started.wait(WAIT)
    # A bug outside the per-job guards: an event whose job id cannot even be looked up.
    broken = CallFinished(
        call_id="x",
        job_id=[],
        round_index=0,  # type: ignore[arg-type]
        reply=ModelReply(model="slow", status="ok"),
    )
    orch.coordinator.tell(broken)
    result = future.get(timeout=WAIT)
    assert result.status == "error" and "coordinator crashed" in result.error.message


def test_a_crashed_model_is_skipped_in_the_next_round_not_called_again(start_orch) -> None:
    """Its actor is dead before it answers ``actor_crashed``; the next round must not send
    it a second call that only comes back as a second ``actor_crashed``."""
    recorder = scripted({"boom": "crash_once"})
    orch = start_orch(
        {
            "models": fake_models(["good", "boom"], reply=recorder, max_attempts=1),
            "pipeline": {"synthesizer": "good", "rounds": ["initial", "meta", "synthesis"]},
            "supervision": {"backoff_min_s": 30, "backoff_max_s": 30},  # stays restarting
        }
    )
    result = orch.ask("q")
    assert result.status == "ok", result.error
    crashed = [
        r
        for rnd in result.rounds
        for r in rnd.replies
        if r.error and r.error.code == "actor_crashed"
    ]
    assert len(crashed) == 1
    meta = {r.model: r for r in result.rounds[1].replies}
    assert meta["boom"].status == "skipped" and "restarting" in meta["boom"].error.message
    assert [r.participant for r in recorder.by_round("meta")] == ["good"]


@pytest.mark.parametrize("escape", [SystemExit(3), KeyboardInterrupt()])
def test_a_provider_raising_systemexit_restarts_its_actor_and_leaves_the_io_loop_running(
    start_orch, watch_roster, escape: BaseException
) -> None:
    raised = threading.Event()

    def answer(req):
        if req.participant == "bad" and not raised.is_set():
            raised.set()
            raise escape
        return f"{req.participant}: fine"

    orch = start_orch(
        {
            "models": fake_models(["good", "bad"], reply=answer, max_attempts=1),
            "pipeline": {"synthesizer": "good", "rounds": ["initial"]},
            "supervision": FAST_SUPERVISION,
        }
    )
    watcher = watch_roster(orch)
    result = orch.ask("q", timeout=WAIT)
    replies = {r.model: r for r in result.rounds[0].replies}
    assert replies["good"].ok
    assert replies["bad"].error.code == "actor_crashed"
    assert type(escape).__name__ in replies["bad"].error.message
    assert orch.io.running  # the shared I/O thread is alive
    watcher.wait_for(lambda r: r["bad"].state == "up" and r["bad"].generation == 2)
    again = orch.ask("q", timeout=WAIT)
    assert all(r.ok for r in again.rounds[0].replies)


def test_a_crashed_coordinator_is_replaced_and_serves_the_next_job(start_orch) -> None:
    from messages.events import RosterChanged

    orch = start_orch({"models": fake_models(["a", "b"]), "supervision": FAST_SUPERVISION})
    first = orch.coordinator
    first.tell(RosterChanged(roster=None))  # type: ignore[arg-type]  # a bug outside the guards
    first.actor_stopped.wait(WAIT)
    status = orch.supervisor.ask(GetStatus(), timeout=WAIT)  # noqa: F841  # mailbox in order
    result = _ask_until_accepted(orch)
    assert result.status == "ok"
    assert orch.coordinator is not first
    assert orch.status()["jobs_total"] == 1  # a fresh coordinator


def test_a_crashed_synthesizer_fails_its_jobs_at_once_and_is_replaced(start_orch) -> None:
    from messages.events import RosterChanged

    synthesizing = threading.Event()

    async def answer(req):
        if req.participant == "slow" and req.round_name == "synthesis":
            synthesizing.set()
            await asyncio.Event().wait()  # never answers
        return f"{req.participant}: fine"

    orch = start_orch(
        {
            "models": fake_models(["fast", "slow"], reply=answer),
            "pipeline": {"rounds": ["initial", "synthesis"], "synthesizer": "slow"},
            "supervision": FAST_SUPERVISION,
        }
    )
    future = orch.submit("q", timeout=600)
    assert synthesizing.wait(WAIT)
    first = orch.synthesizer
    first.tell(RosterChanged(roster=None))  # type: ignore[arg-type]  # a bug: crash it
    result = future.get(timeout=WAIT)  # at once, not after 600 s
    assert result.status == "error" and result.error.code == "round_failed"
    assert result.rounds[0].replies[0].ok  # the partial result is kept
    again = _ask_until_accepted(orch, synthesizer="fast")
    assert again.status == "ok" and again.synthesizer == "fast"
    assert orch.synthesizer is not first


def _ask_until_accepted(orch, **options):
    """The first job after a core crash may meet the restart window (refused as
    overloaded, retry_after_s); a client retries. Bounded by WAIT."""
    from messages.errors import OverloadedError

    deadline = time.monotonic() + WAIT
    while True:
        try:
            return orch.ask("q", timeout=WAIT, **options)
        except OverloadedError:
            assert time.monotonic() < deadline, "the core actor was never replaced"
            orch.supervisor.ask(GetStatus(), timeout=WAIT)  # let the restart timer land


def test_a_bug_while_building_a_result_still_answers_the_job(start_orch, monkeypatch) -> None:
    """The job is taken off the coordinator's table before its result is built: a bug there
    used to leave its caller waiting for good (found when a benchmark hung)."""
    from actors import strategies

    def broken(*args, **kwargs):
        raise KeyError("a bug in the agreement map")

    monkeypatch.setattr(strategies, "agreement_map", broken)
    orch = start_orch({"models": fake_models(["a"]), "pipeline": {"rounds": ["initial"]}})
    result = orch.ask("q", timeout=WAIT)
    assert result.status == "error" and "agreement map" in result.error.message
    monkeypatch.undo()
    assert orch.ask("q", timeout=WAIT).status == "ok"  # the coordinator lives on
