"""Hedged synthesis: a synthesizer later than its own p95 gets a backup; first wins."""

from __future__ import annotations

import asyncio
import threading

from helpers import WAIT, Recorder, fake_models


def test_a_late_synthesizer_is_hedged_and_the_first_answer_wins(start_orch) -> None:
    cancelled = threading.Event()

    async def answer(req):
        if req.participant == "primary" and req.round_name == "synthesis":
            try:
                await asyncio.sleep(WAIT * 10)  # far beyond its usual latency
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return f"{req.participant} in {req.round_name}"

    orch = start_orch(
        {
            "models": fake_models(["primary", "backup"], reply=Recorder(answer)),
            "pipeline": {"rounds": ["initial", "synthesis"], "synthesizer": "primary"},
        }
    )
    orch.metrics.load([("primary", True, 0.01)] * 20)  # its recent p95: 10 ms
    result = orch.ask("q", timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.synthesizer == "backup"
    assert result.answer == "backup in synthesis"
    assert result.hedge is not None
    assert result.hedge["primary"] == "primary"
    assert result.hedge["backup"] == "backup"
    assert result.hedge["winner"] == "backup"
    assert result.to_dict()["hedge"]["winner"] == "backup"
    assert cancelled.wait(WAIT)  # the losing call is cancelled, not left to run


def test_no_hedge_without_enough_history(start_orch) -> None:
    orch = start_orch(
        {
            "models": fake_models(["primary", "backup"], latency_ms=5),
            "pipeline": {"rounds": ["initial", "synthesis"], "synthesizer": "primary"},
        }
    )
    result = orch.ask("q", timeout=WAIT)
    assert result.synthesizer == "primary" and result.hedge is None


def test_a_hedge_that_fails_leaves_the_primary_to_answer(start_orch) -> None:
    from messages.errors import ProviderUnavailable

    release = threading.Event()

    async def answer(req):
        if req.round_name == "synthesis":
            if req.participant == "backup":
                release.set()
                raise ProviderUnavailable("backup is down")
            # Late; answers once the hedge has failed.
            await asyncio.get_running_loop().run_in_executor(None, release.wait, WAIT)
        return f"{req.participant} in {req.round_name}"

    orch = start_orch(
        {
            "models": fake_models(["primary", "backup"], reply=answer, max_attempts=1),
            "pipeline": {"rounds": ["initial", "synthesis"], "synthesizer": "primary"},
        }
    )
    orch.metrics.load([("primary", True, 0.001)] * 20)
    result = orch.ask("q", timeout=WAIT)
    assert result.status == "ok", result.error
    assert result.synthesizer == "primary"
    assert result.hedge["winner"] == "primary"
    assert result.hedge["backup"] == "backup"
