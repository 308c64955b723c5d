"""Shared rate limits on a real Redis: the scripts' rules, several holders of one key,
fallback when Redis goes away, and recovery when it comes back."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import WAIT, fake_models

from actors.config import LimitsConfig, config_from_dict
from actors.sharedlimits import SHARED_MARGIN_S, LimitsUnavailable, RedisLimits


def model(**limits: object):
    [m] = config_from_dict({"models": [{"name": "m", "provider": "fake", **limits}]}).models
    return m


def run(coro):
    return asyncio.run(coro)


def test_take_allows_the_burst_less_the_reserve_then_paces_at_the_rate(redis_server) -> None:
    """One request a second, a bucket of 5: four go at once; the fifth would leave less
    than the reserve (SHARED_MARGIN_S of refill) against arrival jitter, so it waits."""
    m = model(rpm=60, burst=5)

    async def scenario() -> list[float]:
        limits = RedisLimits(LimitsConfig(backend="redis", url=redis_server.url))
        try:
            return [await limits.take(m, 5, 1) for _ in range(5)]
        finally:
            await limits.aclose()

    waits = run(scenario())
    assert waits[:4] == [0, 0, 0, 0]
    assert 0 < waits[4] <= SHARED_MARGIN_S


def test_two_holders_of_one_limit_key_share_one_bucket(redis_server) -> None:
    """Two processes (two connections) with one limit_key draw from one bucket; another
    key has its own."""
    a = model(rpm=60, burst=5, limit_key="prod-key")
    other = model(rpm=60, burst=5, limit_key="other-key")

    async def scenario() -> list[float]:
        one = RedisLimits(LimitsConfig(backend="redis", url=redis_server.url))
        two = RedisLimits(LimitsConfig(backend="redis", url=redis_server.url))
        try:
            waits = []
            for holder in (one, two, one, two, two):  # the fifth finds the shared bucket low
                waits.append(await holder.take(a, 5, 1))
            waits.append(await one.take(other, 5, 1))  # another key, another bucket
            return waits
        finally:
            await one.aclose()
            await two.aclose()

    waits = run(scenario())
    assert waits[:4] == [0, 0, 0, 0] and waits[4] > 0 and waits[5] == 0


def test_tokens_are_refunded_and_a_pause_holds_everyone(redis_server) -> None:
    m = model(tpm=6000)
    r = model(rpm=600, burst=5, limit_key="r")

    async def scenario() -> tuple[float, float, float, float]:
        limits = RedisLimits(LimitsConfig(backend="redis", url=redis_server.url))
        try:
            assert await limits.take(m, 1, 5000) == 0  # most of the token bucket
            empty = await limits.take(m, 1, 995)  # 1000 left: below 995 + the reserve (10)
            await limits.refund(m, 3000)  # the call used 2000 of the 5000 charged
            refunded = await limits.take(m, 1, 995)
            await limits.pause(r, 2.0, 5)
            paused = await limits.take(r, 5, 1)
            return empty, refunded, paused, await limits.take(r, 5, 1)
        finally:
            await limits.aclose()

    empty, refunded, paused, still = run(scenario())
    assert empty > 0 and refunded == 0
    assert 1.9 < paused <= 2.0 and 1.9 < still <= 2.0  # Retry-After holds every holder


def test_an_unreachable_redis_says_so_and_is_tried_again_later(redis_server) -> None:
    m = model(rpm=60)
    redis_server.stop()

    async def scenario() -> None:
        limits = RedisLimits(LimitsConfig(backend="redis", url=redis_server.url))
        try:
            with pytest.raises(LimitsUnavailable):
                await limits.take(m, 1, 1)
            assert not limits.reachable and not limits.worth_trying()
            assert limits.status() == {
                "backend": "redis",
                "url": redis_server.url,
                "mode": "single",
                "reachable": False,
            }
        finally:
            await limits.aclose()

    run(scenario())


def test_a_password_never_shows_in_status() -> None:
    limits = RedisLimits(LimitsConfig(backend="redis", url="redis://:s3cret@db.internal:6379/0"))
    assert limits.url == "redis://***@db.internal:6379/0"


# --- through the actors ---------------------------------------------------------------------


def redis_config(server, **limits: object) -> dict:
    return {
        "models": fake_models(["m"], rpm=600, burst=2, max_attempts=1),
        "pipeline": {"rounds": ["initial"]},
        "limits": {"backend": "redis", "url": server.url, **limits},
    }


def test_jobs_run_on_shared_limits_fall_back_when_redis_dies_and_recover(
    start_orch, redis_server
) -> None:
    orch = start_orch(redis_config(redis_server, expected_instances=2))
    assert orch.ask("q", timeout=WAIT).status == "ok"
    assert orch.status()["limits"]["reachable"] is True
    redis_server.stop()
    fallback = orch.ask("q", timeout=WAIT)  # local buckets at rate / 2: still served
    assert fallback.status == "ok", fallback.error
    assert orch.status()["limits"]["reachable"] is False
    redis_server.start()
    deadline = time.monotonic() + WAIT
    while orch.status()["limits"]["reachable"] is False:  # tried again after RETRY_S
        assert time.monotonic() < deadline, "never went back to Redis"
        assert orch.ask("q", timeout=WAIT).status == "ok"


def test_on_unavailable_fail_refuses_calls_while_redis_is_down(start_orch, redis_server) -> None:
    orch = start_orch(redis_config(redis_server, on_unavailable="fail"))
    assert orch.ask("q", timeout=WAIT).status == "ok"
    redis_server.stop()
    first = orch.ask("q", timeout=WAIT)  # this call finds Redis gone
    second = orch.ask("q", timeout=WAIT)  # and this one is refused at once
    for result in (first, second):
        assert result.status == "error"
    [reply] = second.rounds[0].replies
    assert reply.error.code == "provider_unavailable"
    assert "shared rate limits are unreachable" in reply.error.message


def shared_key_config(server_url: str, redis_url: str | None) -> dict:
    """One model on the provider's one key, as every process configures it."""
    config: dict = {
        "models": [
            {
                "name": "gpt",
                "provider": "openai",
                "model": "m1",
                "base_url": server_url,
                "rpm": 600,
                "burst": 2,
                "limit_key": "openai-prod-key",
                "max_attempts": 1,
                "max_concurrency": 64,
            }
        ],
        "pipeline": {"rounds": ["initial"], "job_timeout_s": 60},
    }
    if redis_url is not None:
        config["limits"] = {"backend": "redis", "url": redis_url}
    return config


def test_two_daemons_and_an_embedding_share_one_limit_with_zero_429s(redis_server) -> None:
    """Each process used to keep its own buckets: three processes on one key sent three
    times the allowed rate, and the provider answered 429."""
    from daemon_helpers import DaemonProcess, connect

    import actors
    from bench.procs import BenchServerProcess

    provider = BenchServerProcess(rpm=600, burst=2)  # 10 a second, enforced by its own GCRA
    daemons: list[DaemonProcess] = []
    try:
        config = shared_key_config(provider.base_url, redis_server.url)
        daemons = [DaemonProcess(config).start() for _ in range(2)]
        per_process = 8
        with actors.start(config, environ={}) as orch:
            clients = [connect(d) for d in daemons]
            sent = [
                [c.send("ask", {"prompt": f"q{i}"}) for i in range(per_process)] for c in clients
            ]
            futures = [orch.submit(f"e{i}") for i in range(per_process)]
            embedded = [f.get(timeout=WAIT) for f in futures]
            answered = [c.response(i) for c, ids in zip(clients, sent, strict=True) for i in ids]
            for c in clients:
                c.close()
            status = orch.status()["limits"]
        assert all(r.status == "ok" for r in embedded), [r.error for r in embedded]
        assert all("result" in a and a["result"]["status"] == "ok" for a in answered), answered
        calls = provider.stats()
        assert len(calls) == 3 * per_process
        assert [c for c in calls if c[2] == 429] == []  # the one shared limit held
        assert status == {
            "backend": "redis",
            "url": redis_server.url,
            "mode": "single",
            "reachable": True,
        }
    finally:
        for d in daemons:
            d.stop()
        provider.stop()
