"""Straggler-tolerant rounds: once the quorum is in, the rest get a grace period."""

from __future__ import annotations

import asyncio
import threading

from helpers import WAIT, Recorder, fake_models

from messages.errors import ProviderUnavailable

HANG = 600_000  # ms: a model that would never answer in time


def three(slow_ms: float, **pipeline: object) -> dict:
    return {
        "models": [
            *fake_models(["fast-1", "fast-2"], reply="Canberra", latency_ms=1),
            *fake_models(["slow"], reply="Canberra", latency_ms=slow_ms),
        ],
        "pipeline": {"synthesizer": "fast-1", **pipeline},
    }


def test_a_slow_model_is_cut_once_the_majority_answered(start_orch) -> None:
    """One model at 4 s and two at 1 ms: every round used to wait for the slow one, so a
    3-round job took 8+ s. With the majority in, it waits only the grace."""
    orch = start_orch(three(4000, straggler_grace_s=0.05))
    result = orch.ask("Capital of Australia?", timeout=3.0)  # 8 s without the cut
    assert result.status == "ok", result.error
    for rnd in result.rounds[:2]:
        replies = {r.model: r for r in rnd.replies}
        assert replies["fast-1"].ok and replies["fast-2"].ok
        assert replies["slow"].status == "skipped"
        assert replies["slow"].error.code == "straggler"


def test_a_straggler_is_cancelled_not_left_running(start_orch) -> None:
    cancelled = threading.Event()

    async def slow(req):
        if req.participant != "slow":
            return "fine"
        try:
            await asyncio.sleep(HANG / 1000)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    orch = start_orch(
        {
            "models": fake_models(["a", "b", "slow"], reply=Recorder(slow)),
            "pipeline": {"rounds": ["initial"], "straggler_grace_s": 0.01},
        }
    )
    result = orch.ask("q", timeout=WAIT)
    assert result.status == "ok"
    assert cancelled.wait(WAIT)  # the provider call itself was cancelled
    assert orch.status()["models"][2]["inflight"] == 0


def test_quorum_zero_waits_for_every_reply(start_orch) -> None:
    orch = start_orch(three(50, quorum=0, straggler_grace_s=0.0, rounds=["initial"]))
    result = orch.ask("q", timeout=WAIT)
    assert all(r.ok for r in result.rounds[0].replies)


def test_no_cut_before_the_quorum_of_ok_replies(start_orch) -> None:
    """Failed replies do not count towards the quorum: with one ok and one failed, the
    third (slow but fine) model is still waited for."""

    async def answer(req):
        if req.participant == "broken":
            raise ProviderUnavailable("down")
        if req.participant == "slow":
            await asyncio.sleep(0.05)
        return "fine"

    orch = start_orch(
        {
            "models": fake_models(["ok", "broken", "slow"], reply=answer, max_attempts=1),
            "pipeline": {"rounds": ["initial"], "straggler_grace_s": 0.0},
        }
    )
    result = orch.ask("q", timeout=WAIT)
    replies = {r.model: r for r in result.rounds[0].replies}
    assert replies["slow"].ok


def test_zero_config_local_participants_wait_for_each_other() -> None:
    from actors.daemon.defaults import resolve_config

    config = resolve_config(None, {"HOME": "/nonexistent"})
    assert config.pipeline.quorum == 0
    assert config.pipeline.quorum_of(3) is None
