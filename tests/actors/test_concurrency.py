"""Many jobs at once, and actors that never block.

No timings are asserted: overlap is proved with barriers (if the runtime serialised
jobs or calls, the barrier could never fill and the test would time out).
"""

from __future__ import annotations

import asyncio
import threading

from helpers import WAIT, fake_models

from messages.commands import GetStatus

JOBS = 200
MODELS = ("a", "b", "c")


class Barrier:
    """A fake reply: the initial calls wait until ``size`` of them are in flight at once."""

    def __init__(self, size: int, latency_s: float = 0.05) -> None:
        self.size = size
        self.latency_s = latency_s
        self.arrived = 0
        self.peak_reached = threading.Event()
        self._open: asyncio.Event | None = None

    async def _reply(self, req) -> str:
        if self._open is None:
            self._open = asyncio.Event()
        if req.round_name == "initial":
            self.arrived += 1  # runs on the I/O loop thread only: no lock needed
            if self.arrived == self.size:
                self.peak_reached.set()
                self._open.set()
            await self._open.wait()
        await asyncio.sleep(self.latency_s)
        return f"{req.participant} done"

    def __call__(self, req):
        return self._reply(req)


def test_200_jobs_run_at_once_with_a_bounded_thread_count(start_orch) -> None:
    barrier = Barrier(size=JOBS * len(MODELS))
    orch = start_orch({"models": fake_models(MODELS, reply=barrier, max_concurrency=1000)})
    threads_before = threading.active_count()
    futures = [orch.submit(f"question {i}") for i in range(JOBS)]
    assert barrier.peak_reached.wait(WAIT), f"only {barrier.arrived} calls ever overlapped"
    threads_during = threading.active_count()
    results = [f.get(timeout=WAIT) for f in futures]
    assert all(r.status == "ok" for r in results)
    assert len({r.job_id for r in results}) == JOBS
    # Threads do not grow with jobs: 600 calls in flight used no new thread.
    assert threads_during <= threads_before
    assert orch.status()["jobs_total"] == JOBS


class Gate:
    """A fake reply that holds every call until ``release`` (counts arrivals)."""

    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []
        self.arrivals = threading.Semaphore(0)

    async def _reply(self, req) -> str:
        event = asyncio.Event()
        self.events.append(event)
        self.arrivals.release()
        await event.wait()
        return "unstuck"

    def __call__(self, req):
        return self._reply(req)

    def wait_arrivals(self, n: int) -> None:
        for _ in range(n):
            assert self.arrivals.acquire(timeout=WAIT), "a call never reached the provider"

    def release(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon_threadsafe(lambda: [e.set() for e in self.events])


def test_a_model_stuck_on_calls_still_queues_and_reports_status(start_orch) -> None:
    gate = Gate()
    orch = start_orch({"models": fake_models(["slow"], reply=gate, max_concurrency=2)})
    first = orch.submit("one", rounds=["initial"])
    second = orch.submit("two", rounds=["initial"])
    gate.wait_arrivals(2)
    third = orch.submit("three", rounds=["initial"])
    ref = orch.supervisor.ask(GetStatus(), timeout=WAIT)[0].ref
    for _ in range(10_000):  # each ask is answered while both calls hang
        status = ref.ask(GetStatus(), timeout=WAIT)
        if status["queued"]:
            break
    assert status == {"name": "slow", "provider": "fake", "inflight": 2, "queued": 1, "retrying": 0}
    assert orch.status()["models"][0]["inflight"] == 2
    gate.release(orch.io.loop)
    assert first.get(timeout=WAIT).answer == "unstuck"
    assert second.get(timeout=WAIT).answer == "unstuck"
    gate.wait_arrivals(1)  # the queued call started when a slot freed
    gate.release(orch.io.loop)
    assert third.get(timeout=WAIT).answer == "unstuck"


def test_calls_beyond_the_request_bucket_are_queued_then_served(start_orch) -> None:
    orch = start_orch({"models": fake_models(["limited"], rpm=600, burst=1)})
    futures = [orch.submit(f"q{i}", rounds=["initial"]) for i in range(5)]
    results = [f.get(timeout=WAIT) for f in futures]
    assert all(r.status == "ok" for r in results)
    assert orch.status()["models"][0]["calls_ok"] == 5
