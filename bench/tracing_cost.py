"""Scenario: what OpenTelemetry traces cost the daemon, in CPU per job.

The same daemon runs a closed loop of jobs through its socket twice per repetition,
alternately: once with traces off, once exporting every span over OTLP/HTTP to a loopback
collector that counts and discards them. The daemon's own CPU seconds (user + system) over
the jobs it finished give ms per job. Two workloads: three openai-provider models talking
real HTTP to the instant loopback bench server (what a deployment pays per call), and
three instant fake models (no provider work at all: the worst case, where a span's cost
is compared with almost nothing). The target: tracing on adds at most 15%.
"""

from __future__ import annotations

import asyncio
import http.server
import statistics
import threading
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.procs import BenchServerProcess, DaemonProcess, SocketClient
from bench.scenarios import _closed_loop

TARGET_PCT = 15.0


@dataclass
class TracingCost:
    workload: str
    off_ms: list[float] = field(default_factory=list)  # CPU ms per job, one per repetition
    on_ms: list[float] = field(default_factory=list)
    spans: int = 0  # spans the collector received in the "on" runs
    jobs: int = 0
    jobs_on: int = 0

    @property
    def overhead_pct(self) -> float:
        off, on = statistics.median(self.off_ms), statistics.median(self.on_ms)
        return 100.0 * (on - off) / off


class _Sink(http.server.BaseHTTPRequestHandler):
    """Counts the spans of each OTLP/HTTP export, then forgets them."""

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        self.server.received += spans  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _collector() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.received = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def _loop(path: str, concurrency: int, seconds: float) -> int:
    clients = [await SocketClient.connect(path) for _ in range(concurrency)]
    try:
        return await _closed_loop(clients, seconds)
    finally:
        for client in clients:
            await client.close()


def _models(base_url: str | None) -> list[dict[str, Any]]:
    if base_url is None:
        return [{"name": f"m{i}", "provider": "fake", "reply": "ok"} for i in range(3)]
    return [
        {"name": f"m{i}", "provider": "openai", "model": f"m{i}", "base_url": base_url,
         "max_tokens": 64, "max_concurrency": 512}
        for i in range(3)
    ]  # fmt: skip


def _cpu_ms_per_job(
    models: list[dict[str, Any]], env: dict[str, str], concurrency: int, seconds: float
) -> tuple[float, int, int]:
    """(CPU ms per job, jobs measured, warm-up jobs) of one daemon's run."""
    env = {"OPENAI_API_KEY": "bench", **env}
    daemon = DaemonProcess(
        {"models": models, "daemon": {"max_inflight_jobs": 4096}},
        env=env,
        args=["--log-level", "WARNING"],
    ).start()
    try:
        proc = psutil.Process(daemon.pid)
        warm = asyncio.run(_loop(daemon.socket_path, concurrency, 0.5))
        cpu0 = sum(proc.cpu_times()[:2])
        jobs = asyncio.run(_loop(daemon.socket_path, concurrency, seconds))
        cpu = sum(proc.cpu_times()[:2]) - cpu0
    finally:
        daemon.cleanup()
    return 1000.0 * cpu / jobs, jobs, warm


def tracing_cost(
    repetitions: int = 3, concurrency: int = 16, seconds: float = 3.0
) -> list[TracingCost]:
    """CPU per job with traces off and on, alternating, for each workload."""
    collector = _collector()
    url = f"http://127.0.0.1:{collector.server_address[1]}"
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "orchestrord-bench"}
    server = BenchServerProcess(latency_ms=0)
    out = []
    try:
        for workload, models in (
            ("openai SDK over loopback HTTP", _models(server.base_url)),
            ("instant fakes (worst case)", _models(None)),
        ):
            result = TracingCost(workload=workload)
            collector.received = 0  # type: ignore[attr-defined]
            for _ in range(repetitions):
                off_ms, jobs, _ = _cpu_ms_per_job(models, {}, concurrency, seconds)
                on_ms, jobs_on, warm = _cpu_ms_per_job(models, on, concurrency, seconds)
                result.off_ms.append(off_ms)
                result.on_ms.append(on_ms)
                result.jobs += jobs + jobs_on
                result.jobs_on += jobs_on + warm  # every traced job sent its spans
            result.spans = collector.received  # type: ignore[attr-defined]
            out.append(result)
    finally:
        server.stop()
        collector.shutdown()
        collector.server_close()
    return out


def section(results: list[TracingCost]) -> list[str]:
    """The report's section for this scenario."""
    fmt = ", ".join
    lines = [
        "## Tracing cost (OpenTelemetry on and off)",
        "",
        "Daemon CPU (user + system) per job, three models, three rounds, 16 concurrent jobs "
        "through the socket; traces on export every span over OTLP/HTTP to a loopback "
        f"collector. Runs alternate off/on. Target: at most +{TARGET_PCT:.0f}%.",
        "",
        "| workload | off, ms/job | on, ms/job | added | spans a job | runs (off; on) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        off, on = statistics.median(r.off_ms), statistics.median(r.on_ms)
        runs = f"{fmt(f'{x:.2f}' for x in r.off_ms)}; {fmt(f'{x:.2f}' for x in r.on_ms)}"
        lines.append(
            f"| {r.workload} | {off:.2f} | {on:.2f} | {r.overhead_pct:+.1f}% | "
            f"{r.spans / max(1, r.jobs_on):.1f} | {runs} |"
        )
    return [*lines, ""]
