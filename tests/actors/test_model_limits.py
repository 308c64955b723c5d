"""A model actor under a provider's rate limits: pauses are bounded, a call that cannot
go before its deadline fails at once, and calls resume slowly after a 429."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from helpers import WAIT, fake_models

from actors.providers.base import MAX_RETRY_AFTER_S, bounded_pause, parse_retry_after
from messages.commands import GetStatus
from messages.errors import RateLimited


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3600"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "inf"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "1e400"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "2.5"}, 2.5),
    ],
)
def test_retry_after_is_bounded(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers) == seconds


def test_bounded_pause_caps_any_number() -> None:
    assert bounded_pause(math.inf) == MAX_RETRY_AFTER_S
    assert bounded_pause(None) is None


def test_a_paused_model_fails_later_calls_at_once_when_the_pause_outlasts_their_job(
    start_orch,
) -> None:
    """Retry-After: inf used to pause the model forever: every later job waited for its
    own timeout, though the other models answered in milliseconds."""
    first = [True]

    def answer(req):
        if req.participant == "limited" and first[0]:
            first[0] = False
            raise RateLimited("slow down", status=429, retry_after=math.inf)
        return f"{req.participant}: fine"

    orch = start_orch(
        {
            "models": fake_models(["fast", "limited"], reply=answer, max_attempts=1),
            "pipeline": {"rounds": ["initial"], "synthesizer": "fast"},
        }
    )
    one = orch.ask("q", timeout=WAIT)
    assert {r.model: r.error.code for r in one.rounds[0].replies if r.error} == {
        "limited": "rate_limited"
    }
    # The pause is capped at MAX_RETRY_AFTER_S (60 s); a 5 s job cannot wait that long.
    two = orch.ask("q", timeout=5)
    assert two.status == "ok", two.error
    replies = {r.model: r for r in two.rounds[0].replies}
    assert replies["fast"].ok
    assert replies["limited"].status == "error"
    assert replies["limited"].error.code == "rate_limited"
    assert "Retry-After" in replies["limited"].error.message


def test_after_a_429_queued_calls_resume_one_at_a_time_then_widen(start_orch) -> None:
    """No rpm configured, so no bucket paces the calls queued during the pause: the
    window drops to one call in flight and doubles with each success."""
    log: list[tuple[str, int]] = []
    state = {"n": 0}
    limited = threading.Event()

    async def answer(req):
        state["n"] += 1
        n = state["n"]
        if not limited.is_set():
            limited.set()
            raise RateLimited("slow down", status=429, retry_after=0.5)
        log.append(("start", n))
        await asyncio.sleep(0.01)
        log.append(("end", n))
        return "fine"

    orch = start_orch(
        {
            "models": fake_models(["m"], reply=answer, max_concurrency=8),
            "pipeline": {"rounds": ["initial"]},
        }
    )
    futures = [orch.submit("q0")]
    assert limited.wait(WAIT)
    # The provider has answered 429; wait until the actor has taken it in (it holds the
    # call for a retry), so that the next calls are queued behind the pause.
    [entry] = orch.supervisor.ask(GetStatus(), timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while entry.ref.ask(GetStatus(), timeout=WAIT)["retrying"] != 1:
        assert time.monotonic() < deadline, "the 429 never reached the model actor"
    futures += [orch.submit(f"q{i}") for i in range(1, 6)]  # queued during the pause
    results = [f.get(timeout=WAIT) for f in futures]
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    # One call alone (window 1), then two at once (window 2), then the rest.
    assert log[:2] == [("start", log[0][1]), ("end", log[0][1])]
    assert [kind for kind, _ in log[2:4]] == ["start", "start"]
