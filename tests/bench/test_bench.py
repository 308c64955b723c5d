"""The benchmark harness works: the server enforces limits, the peer runs, the report
renders. No timings are asserted here; `make bench` measures."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.peer import PeerOrchestrator
from bench.procs import BenchServerProcess
from bench.report import Results, render
from bench.scenarios import (
    MemoryResult,
    OverheadResult,
    RateLimitRun,
    ScalingPoint,
    StragglerRun,
    ThroughputPoint,
    ThroughputResult,
    ideal_wall_s,
    percentile,
)
from bench.tracing_cost import TracingCost


@pytest.fixture
def limited_server():
    server = BenchServerProcess(rpm=60, burst=2)
    yield server
    server.stop()


def post(server: BenchServerProcess, model: str) -> tuple[int, dict[str, str], dict]:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    req = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=body.encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.load(err)


def test_the_server_answers_in_openai_format_and_enforces_rpm_per_model(limited_server) -> None:
    statuses = [post(limited_server, "m1")[0] for _ in range(3)]
    assert statuses == [200, 200, 429]  # a bucket of 2, refilling at one a second
    status, headers, body = post(limited_server, "m1")
    assert status == 429 and float(headers["retry-after-ms"]) > 0
    assert int(headers["retry-after"]) >= 1
    status, _, body = post(limited_server, "m2")  # another model has its own bucket
    assert status == 200 and body["choices"][0]["message"]["content"].startswith("m2:")
    assert body["usage"]["completion_tokens"] > 0
    calls = limited_server.stats()
    assert [c[2] for c in calls] == [200, 200, 429, 429, 200]
    limited_server.reset()
    assert limited_server.stats() == []


def test_the_peer_runs_three_rounds_and_retries_429s(limited_server) -> None:
    async def run():
        peer = PeerOrchestrator(limited_server.base_url, ["a", "b"], max_tokens=8)
        try:
            return await peer.ask("what is 1+1?"), peer.retries
        finally:
            await peer.close()

    result, retries = asyncio.run(run())
    assert result.ok and result.answer and result.calls == 5
    served = [c for c in limited_server.stats() if c[2] == 200]
    assert len(served) == 5  # 2 initial + 2 meta + 1 synthesis
    assert retries >= 1  # model "a" needed a third call within its bucket of 2


def test_ideal_wall_time_and_percentiles() -> None:
    calls = [(0.0, "a", 200)] * 12 + [(0.0, "b", 200)] * 4 + [(0.0, "a", 429)] * 5
    assert ideal_wall_s(calls, rpm=60, burst=2) == pytest.approx(10.0)
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([1.0] * 99 + [100.0], 99) == 1.0


def test_the_report_renders_tables_and_plots(tmp_path: Path) -> None:
    calls = [(0.1 * i, f"m{i % 3 + 1}", 200 if i % 7 else 429) for i in range(40)]
    results = Results(
        command="python -m bench --quick",
        date="2026-11-22 00:00 UTC",
        duration_s=12,
        overhead=OverheadResult(
            latency_ms=100,
            concurrency=[1, 16],
            runs={
                "orchestrord (embedded)": {1: [(2.0, 3.0)], 16: [(10.0, 20.0)]},
                "orchestrord (socket)": {1: [(2.5, 3.5)], 16: [(11.0, 21.0)]},
                "peer (asyncio.gather + tenacity)": {1: [(2.2, 2.9)], 16: [(12.0, 25.0)]},
            },
        ),
        throughput=ThroughputResult(
            socket_fakes=[
                [ThroughputPoint(1, 300, 2.0, 35, 9), ThroughputPoint(16, 600, 1.5, 40, 9)]
            ],
            peak_rss_mb=40,
            idle_rss_mb=30,
            ready_s=0.3,
            versus={
                "orchestrord (embedded)": {1: [50.0]},
                "peer (asyncio.gather + tenacity)": {1: [49.0]},
            },
        ),
        rate_limits=[
            RateLimitRun("orchestrord", 10, 9.5, 40, 40, 0, 5, 9.8, calls),
            RateLimitRun("peer", 20, 9.5, 40, 40, 300, 8, 19, calls),
        ],
        scaling=[ScalingPoint(3, 3, 7.0, 1.4, 2.0)],
        memory=MemoryResult(inflight=1000, idle_rss_mb=40, loaded_rss_mb=60),
        stragglers=[
            StragglerRun("orchestrord", 16, 16, 0.8, 0.9, 100, 4000, 0.2),
            StragglerRun("peer", 16, 16, 8.1, 8.2, 100, 4000, 0.2),
        ],
        tracing=[
            TracingCost(
                "openai SDK over loopback HTTP",
                [12.0, 12.2],
                [13.0, 13.4],
                spans=2200,
                jobs=400,
                jobs_on=200,
            ),
            TracingCost("instant fakes (worst case)", [2.0], [3.0], spans=1100, jobs_on=100),
        ],
        notes=["- a note"],
    )
    path = render(results, tmp_path)
    text = path.read_text()
    for heading in (
        "## 1. Overhead",
        "## 2. Throughput",
        "## 3. Rate limits",
        "## 4. Scaling",
        "## 5. Memory",
        "## 6. Stragglers",
        "## Tracing cost (OpenTelemetry on and off)",
        "## Notes",
    ):
        assert heading in text
    assert "python -m bench --quick" in text and "cores" in text
    assert "| openai SDK over loopback HTTP | 12.10 | 13.20 | +9.1% | 11.0 |" in text
    assert "20.5 KB per in-flight job" in text and "❌ missed" in text and "✅ met" in text
    for png in ("overhead.png", "throughput.png", "ratelimits.png"):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")


def test_the_servers_gcra_allows_the_burst_then_the_rate() -> None:
    """The bench server limits with its own algorithm (GCRA), not orchestrord's bucket."""
    from bench.server import GCRA

    limit = GCRA(per_minute=60, capacity=2)  # one a second, two at once
    assert limit.check(100.0, 1) == 0
    limit.charge(100.0, 1)
    assert limit.check(100.0, 1) == 0
    limit.charge(100.0, 1)
    assert limit.check(100.0, 1) == pytest.approx(1.0)  # the third waits a second
    assert limit.check(101.0, 1) == 0
    tokens = GCRA(per_minute=600, capacity=600)  # a tpm budget
    assert tokens.check(0.0, 700) == pytest.approx(10.0)  # never fits in one go
