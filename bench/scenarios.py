"""The benchmark scenarios. Each returns plain data for ``bench.report``.

orchestrord and the peer are measured in the same run, alternating, over several
repetitions; every number is measured here, on this machine, at run time.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

import actors
from bench.peer import PeerOrchestrator
from bench.procs import BenchServerProcess, DaemonProcess, RedisProcess, SocketClient
from messages.commands import Ask

MODELS = ["m1", "m2", "m3"]
ROUNDS = 3
MAX_TOKENS = 64


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def openai_models(base_url: str, **limits: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": m,
            "provider": "openai",
            "model": m,
            "base_url": base_url,
            "max_tokens": MAX_TOKENS,
            "max_concurrency": 512,
            **limits,
        }
        for m in MODELS
    ]


def fake_models(n: int = 3, **options: Any) -> list[dict[str, Any]]:
    return [
        {"name": f"f{i + 1}", "provider": "fake", "max_concurrency": 4096, **options}
        for i in range(n)
    ]


@contextmanager
def quiet_logs() -> Any:
    from loguru import logger

    logger.disable("actors")
    try:
        yield
    finally:
        logger.enable("actors")


# --- how each system runs a batch of concurrent jobs --------------------------------------


def embedded_batch(orch: actors.Orchestrator, prompts: list[str]) -> list[tuple[bool, float]]:
    """Submit every prompt at once; per job (ok, latency_s) from submit to result."""
    done = threading.Event()
    out: list[tuple[bool, float]] = []
    lock = threading.Lock()
    started = time.perf_counter()

    def finished(result: Any) -> None:
        with lock:
            out.append((getattr(result, "ok", False), time.perf_counter() - started))
            if len(out) == len(prompts):
                done.set()

    for prompt in prompts:
        orch.start_job(Ask(prompt=prompt, reply_to=finished))
    if not done.wait(600):
        raise RuntimeError("embedded batch did not finish")
    return out


async def socket_batch(clients: list[SocketClient], prompts: list[str]) -> list[tuple[bool, float]]:
    async def one(client: SocketClient, prompt: str) -> tuple[bool, float]:
        started = time.perf_counter()
        reply = await client.request("ask", {"prompt": prompt})
        return "result" in reply, time.perf_counter() - started

    jobs = [one(clients[i % len(clients)], p) for i, p in enumerate(prompts)]
    return list(await asyncio.gather(*jobs))


async def peer_batch(peer: PeerOrchestrator, prompts: list[str]) -> list[tuple[bool, float]]:
    results = await asyncio.gather(*(peer.ask(p) for p in prompts))
    return [(r.ok, r.latency_s) for r in results]


def prompts_for(n: int, tag: str) -> list[str]:
    return [f"Question {tag}-{i}: what is {i} + {i}?" for i in range(n)]


# --- 1. overhead ---------------------------------------------------------------------------


@dataclass
class OverheadResult:
    latency_ms: float
    concurrency: list[int]
    # system -> concurrency -> list over repetitions of (p50, p99) overhead in ms
    runs: dict[str, dict[int, list[tuple[float, float]]]] = field(default_factory=dict)


def overhead(
    latency_ms: float = 100.0,
    concurrency: tuple[int, ...] = (1, 16, 64),
    repetitions: int = 3,
    jobs: int = 24,
) -> OverheadResult:
    """Job latency minus the critical path (rounds x L), per system and concurrency."""
    server = BenchServerProcess(latency_ms=latency_ms)
    config = {"models": openai_models(server.base_url), "pipeline": {"synthesizer": "m1"}}
    daemon = DaemonProcess(config, args=["--log-level", "WARNING"]).start()
    result = OverheadResult(latency_ms=latency_ms, concurrency=list(concurrency))
    critical = ROUNDS * latency_ms / 1000
    try:
        with quiet_logs(), actors.start(config, environ={"OPENAI_API_KEY": "bench"}) as orch:
            asyncio.run(
                _overhead_runs(
                    orch, daemon, server, result, critical, concurrency, repetitions, jobs
                )
            )
    finally:
        daemon.cleanup()
        server.stop()
    return result


async def _overhead_runs(
    orch: actors.Orchestrator,
    daemon: DaemonProcess,
    server: BenchServerProcess,
    result: OverheadResult,
    critical: float,
    concurrency: tuple[int, ...],
    repetitions: int,
    jobs: int,
) -> None:
    peer = PeerOrchestrator(server.base_url, MODELS, max_tokens=MAX_TOKENS)
    clients = [await SocketClient.connect(daemon.socket_path) for _ in range(max(concurrency))]
    loop = asyncio.get_running_loop()
    systems: dict[str, Callable[[list[str]], Any]] = {
        "orchestrord (embedded)": lambda ps: loop.run_in_executor(None, embedded_batch, orch, ps),
        "orchestrord (socket)": lambda ps: socket_batch(clients, ps),
        "peer (asyncio.gather + tenacity)": lambda ps: peer_batch(peer, ps),
    }
    for run in systems.values():  # warm connections and caches; not measured
        await run(prompts_for(8, "warm"))
    for rep in range(repetitions):
        order = list(systems.items())
        order = order[rep % len(order) :] + order[: rep % len(order)]  # alternate who goes first
        for name, run in order:
            for c in concurrency:
                latencies: list[float] = []
                while len(latencies) < max(jobs, c):
                    batch = await run(prompts_for(c, f"{rep}-{c}"))
                    latencies += [lat for ok, lat in batch if ok]
                over = [(lat - critical) * 1000 for lat in latencies]
                entry = result.runs.setdefault(name, {}).setdefault(c, [])
                entry.append((percentile(over, 50), percentile(over, 99)))
    for client in clients:
        await client.close()
    await peer.close()


# --- 2. throughput -------------------------------------------------------------------------


@dataclass
class ThroughputPoint:
    concurrency: int
    jobs_per_s: float
    cpu_ms_per_job: float
    rss_mb: float
    threads: int


@dataclass
class ThroughputResult:
    socket_fakes: list[list[ThroughputPoint]] = field(default_factory=list)  # per repetition
    peak_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    ready_s: float = 0.0
    versus: dict[str, dict[int, list[float]]] = field(default_factory=dict)


async def _closed_loop(clients: list[SocketClient], seconds: float) -> int:
    stop = time.perf_counter() + seconds
    count = 0

    async def worker(client: SocketClient) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            reply = await client.request("ask", {"prompt": "q"})
            if "result" not in reply:
                raise RuntimeError(f"job failed: {reply}")
            count += 1

    await asyncio.gather(*(worker(c) for c in clients))
    return count


def throughput(
    levels: tuple[int, ...] = (1, 4, 16, 64, 128, 256), seconds: float = 2.0, repetitions: int = 3
) -> ThroughputResult:
    """Jobs per second through the socket with instant fakes, until it stops rising."""
    result = ThroughputResult()
    for _ in range(repetitions):
        started = time.perf_counter()
        daemon = DaemonProcess(
            {"models": fake_models(), "daemon": {"max_inflight_jobs": 4096}},
            args=["--log-level", "WARNING"],
        ).start()
        result.ready_s = max(result.ready_s, time.perf_counter() - started)
        proc = psutil.Process(daemon.pid)
        result.idle_rss_mb = max(result.idle_rss_mb, proc.memory_info().rss / 2**20)
        try:
            points = asyncio.run(_throughput_levels(daemon, proc, levels, seconds))
        finally:
            daemon.cleanup()
        result.socket_fakes.append(points)
        result.peak_rss_mb = max([result.peak_rss_mb, *(p.rss_mb for p in points)])
    result.versus = throughput_versus()
    return result


async def _throughput_levels(
    daemon: DaemonProcess, proc: psutil.Process, levels: tuple[int, ...], seconds: float
) -> list[ThroughputPoint]:
    points: list[ThroughputPoint] = []
    clients = [await SocketClient.connect(daemon.socket_path) for _ in range(max(levels))]
    await _closed_loop(clients[:8], 0.5)  # warm-up
    flat = 0
    for c in levels:
        cpu0 = sum(proc.cpu_times()[:2])
        t0 = time.perf_counter()
        jobs = await _closed_loop(clients[:c], seconds)
        elapsed = time.perf_counter() - t0
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        points.append(
            ThroughputPoint(
                c,
                jobs / elapsed,
                1000 * cpu / jobs,
                proc.memory_info().rss / 2**20,
                proc.num_threads(),
            )
        )
        if len(points) > 1 and points[-1].jobs_per_s < 1.05 * max(
            p.jobs_per_s for p in points[:-1]
        ):
            flat += 1
            if flat >= 2:
                break  # it stopped rising
        else:
            flat = 0
    for client in clients:
        await client.close()
    return points


def throughput_versus(
    levels: tuple[int, ...] = (1, 16, 64), seconds: float = 1.5
) -> dict[str, dict[int, list[float]]]:
    """orchestrord (embedded) and the peer against the same zero-latency server: jobs/s."""
    server = BenchServerProcess(latency_ms=0)
    out: dict[str, dict[int, list[float]]] = {}
    config = {"models": openai_models(server.base_url), "pipeline": {"synthesizer": "m1"}}
    try:
        with quiet_logs(), actors.start(config, environ={"OPENAI_API_KEY": "bench"}) as orch:
            for c in levels:
                rates = {
                    "orchestrord (embedded)": _embedded_rate(orch, c, seconds),
                    "peer (asyncio.gather + tenacity)": asyncio.run(
                        _peer_rate(server.base_url, c, seconds)
                    ),
                }
                for name, rate in rates.items():
                    out.setdefault(name, {}).setdefault(c, []).append(rate)
    finally:
        server.stop()
    return out


def _embedded_rate(orch: actors.Orchestrator, c: int, seconds: float) -> float:
    jobs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        jobs += sum(ok for ok, _ in embedded_batch(orch, prompts_for(c, "t")))
    return jobs / (time.perf_counter() - t0)


async def _peer_rate(base_url: str, c: int, seconds: float) -> float:
    peer = PeerOrchestrator(base_url, MODELS, max_tokens=MAX_TOKENS)
    jobs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        jobs += sum(ok for ok, _ in await peer_batch(peer, prompts_for(c, "t")))
    rate = jobs / (time.perf_counter() - t0)
    await peer.close()
    return rate


# --- 3. rate limits ------------------------------------------------------------------------


@dataclass
class RateLimitRun:
    system: str
    wall_s: float
    ideal_s: float
    ok_jobs: int
    jobs: int
    http_429: int
    p50_s: float
    p99_s: float
    calls: list[tuple[float, str, int]]

    @property
    def goodput_per_min(self) -> float:
        return 60 * self.ok_jobs / self.wall_s


def ideal_wall_s(calls: list[tuple[float, str, int]], rpm: float, burst: float) -> float:
    """The least time the server's buckets allow for the calls that succeeded."""
    per_model: dict[str, int] = {}
    for _, model, status in calls:
        if status == 200:
            per_model[model] = per_model.get(model, 0) + 1
    return max((n - burst) / (rpm / 60) for n in per_model.values()) if per_model else 0.0


def rate_limits(
    rpm: float = 600, burst: float = 2, jobs: int = 40, repetitions: int = 2, latency_ms: float = 20
) -> list[RateLimitRun]:
    """Every model limited; a batch of jobs at once; orchestrord (limits configured) vs peer."""
    server = BenchServerProcess(latency_ms=latency_ms, rpm=rpm, burst=burst)
    config = {
        "models": openai_models(server.base_url, rpm=rpm, burst=burst),
        "pipeline": {"synthesizer": "m1", "job_timeout_s": 900},
    }
    runs: list[RateLimitRun] = []
    try:
        with quiet_logs(), actors.start(config, environ={"OPENAI_API_KEY": "bench"}) as orch:
            for rep in range(repetitions):
                order = ["orchestrord", "peer"] if rep % 2 == 0 else ["peer", "orchestrord"]
                for system in order:
                    server.reset()
                    t0 = time.perf_counter()
                    prompts = prompts_for(jobs, f"rl{rep}")
                    if system == "orchestrord":
                        batch = embedded_batch(orch, prompts)
                    else:
                        batch = asyncio.run(_peer_once(server.base_url, prompts))
                    wall = time.perf_counter() - t0
                    calls = server.stats()
                    latencies = [lat for ok, lat in batch if ok]
                    runs.append(
                        RateLimitRun(
                            system=system,
                            wall_s=wall,
                            ideal_s=ideal_wall_s(calls, rpm, burst),
                            ok_jobs=len(latencies),
                            jobs=jobs,
                            http_429=sum(1 for c in calls if c[2] == 429),
                            p50_s=percentile(latencies, 50),
                            p99_s=percentile(latencies, 99),
                            calls=calls,
                        )
                    )
    finally:
        server.stop()
    return runs


async def _peer_once(base_url: str, prompts: list[str]) -> list[tuple[bool, float]]:
    peer = PeerOrchestrator(base_url, MODELS, max_tokens=MAX_TOKENS)
    try:
        return await peer_batch(peer, prompts)
    finally:
        await peer.close()


# --- 4. scaling ----------------------------------------------------------------------------


@dataclass
class ScalingPoint:
    models: int
    rounds: int
    calls_per_job: float
    cpu_ms_per_job: float
    latency_ms: float


def scaling(
    models: tuple[int, ...] = (1, 3, 5, 8),
    rounds: tuple[int, ...] = (2, 3, 4),
    jobs: int = 200,
    concurrency: int = 16,
) -> list[ScalingPoint]:
    """How a job's cost grows with models and rounds (embedded, instant fakes)."""
    points = []
    me = psutil.Process()
    for n in models:
        for r in rounds:
            plan = ["initial", *["meta"] * (r - 2), "synthesis"]
            config = {"models": fake_models(n), "pipeline": {"rounds": plan}}
            with quiet_logs(), actors.start(config, environ={}) as orch:
                embedded_batch(orch, prompts_for(concurrency, "warm"))
                before = orch.status()["models"]
                cpu0, latencies = sum(me.cpu_times()[:2]), []
                for _ in range(jobs // concurrency):
                    latencies += [
                        lat for _, lat in embedded_batch(orch, prompts_for(concurrency, "s"))
                    ]
                cpu = sum(me.cpu_times()[:2]) - cpu0
                after = orch.status()["models"]
            calls = sum(a["calls_ok"] - b["calls_ok"] for a, b in zip(after, before, strict=True))
            done = len(latencies)
            points.append(
                ScalingPoint(
                    n, r, calls / done, 1000 * cpu / done, 1000 * statistics.median(latencies)
                )
            )
    return points


# --- 5. memory -----------------------------------------------------------------------------


@dataclass
class MemoryResult:
    inflight: int
    idle_rss_mb: float
    loaded_rss_mb: float

    @property
    def kb_per_job(self) -> float:
        return (self.loaded_rss_mb - self.idle_rss_mb) * 1024 / self.inflight


def memory(inflight: int = 1000) -> MemoryResult:
    """RSS growth per in-flight job through the socket, with 1,000 jobs held in flight."""
    config = {
        "models": fake_models(latency_ms=600_000),
        "daemon": {"max_inflight_jobs": inflight * 2, "drain_s": 0.1},
    }
    daemon = DaemonProcess(config, args=["--log-level", "WARNING"]).start()
    proc = psutil.Process(daemon.pid)
    try:
        return asyncio.run(_memory_run(daemon, proc, inflight))
    finally:
        daemon.cleanup()


async def _memory_run(daemon: DaemonProcess, proc: psutil.Process, inflight: int) -> MemoryResult:
    """RSS at a base of 100 jobs in flight, then with ``inflight`` more: one-time
    allocations (pools, caches, connection buffers) fall in the base, not per job."""
    clients = [await SocketClient.connect(daemon.socket_path) for _ in range(20)]
    base = 100
    tasks: list[asyncio.Task[Any]] = []

    async def hold(total: int) -> float:
        while len(tasks) < total:
            i = len(tasks)
            tasks.append(asyncio.create_task(clients[i % 20].request("ask", {"prompt": f"m{i}"})))
        while (await clients[0].request("status"))["result"]["inflight_jobs"] < total:
            await asyncio.sleep(0.05)  # polling a benchmark's progress, not a test's sync
        return float(proc.memory_info().rss / 2**20)

    idle = await hold(base)
    loaded = await hold(base + inflight)
    for task in tasks:
        task.cancel()
    for client in clients:
        await client.close()
    return MemoryResult(inflight=inflight, idle_rss_mb=idle, loaded_rss_mb=loaded)


# --- 6. stragglers -------------------------------------------------------------------------


@dataclass
class StragglerRun:
    system: str
    jobs: int
    ok_jobs: int
    p50_s: float
    p99_s: float
    fast_ms: float
    slow_ms: float
    grace_s: float

    @property
    def critical_path_s(self) -> float:
        """Three rounds at the fast models' latency: the least a job can take."""
        return ROUNDS * self.fast_ms / 1000


def stragglers(
    fast_ms: float = 100,
    slow_ms: float = 4000,
    grace_s: float = 0.2,
    jobs: int = 16,
    repetitions: int = 2,
) -> list[StragglerRun]:
    """One model far slower than the other two (a tail, a cold start, an overloaded
    region). orchestrord with quorum 2 cuts it after the grace; the peer's gather waits.
    Both synthesise with a fast model (m1)."""
    server = BenchServerProcess(latency_ms=fast_ms, model_latency_ms={"m3": slow_ms})
    pipeline = {
        "synthesizer": "m1",
        "quorum": 2,
        "straggler_grace_s": grace_s,
        "job_timeout_s": 120,
    }
    config = {"models": openai_models(server.base_url), "pipeline": pipeline}
    runs: list[StragglerRun] = []
    try:
        with quiet_logs(), actors.start(config, environ={"OPENAI_API_KEY": "bench"}) as orch:
            for rep in range(repetitions):
                for system in ("orchestrord", "peer") if rep % 2 == 0 else ("peer", "orchestrord"):
                    prompts = prompts_for(jobs, f"st{rep}")
                    if system == "orchestrord":
                        batch = embedded_batch(orch, prompts)
                    else:
                        batch = asyncio.run(_peer_once(server.base_url, prompts))
                    latencies = [lat for ok, lat in batch if ok]
                    runs.append(
                        StragglerRun(
                            system=system,
                            jobs=jobs,
                            ok_jobs=len(latencies),
                            p50_s=percentile(latencies, 50),
                            p99_s=percentile(latencies, 99),
                            fast_ms=fast_ms,
                            slow_ms=slow_ms,
                            grace_s=grace_s,
                        )
                    )
    finally:
        server.stop()
    return runs


# --- 7. shared limits ----------------------------------------------------------------------


@dataclass
class SharedLimitsRun:
    backend: str
    jobs: int
    ok_jobs: int
    wall_s: float
    ideal_s: float
    http_429: int

    @property
    def goodput_per_min(self) -> float:
        return 60 * self.ok_jobs / self.wall_s


def shared_limits(
    rpm: float = 600, burst: float = 2, jobs_per_daemon: int = 20, latency_ms: float = 20
) -> list[SharedLimitsRun]:
    """Two daemons on one provider key, each configured with the key's limit: with local
    buckets (each believes it has the whole limit) and with Redis buckets (one limit)."""
    server = BenchServerProcess(latency_ms=latency_ms, rpm=rpm, burst=burst)
    redis = RedisProcess().start()
    runs: list[SharedLimitsRun] = []
    try:
        for backend in ("local", "redis"):
            server.reset()
            limits = {"backend": backend, "url": redis.url}
            model = {
                "name": "gpt",
                "provider": "openai",
                "model": "m1",
                "base_url": server.base_url,
                "rpm": rpm,
                "burst": burst,
                "limit_key": "one-key",
                "max_concurrency": 256,
            }
            config = {
                "models": [model],
                "pipeline": {"rounds": ["initial"], "job_timeout_s": 600},
                "limits": limits,
            }
            daemons = [DaemonProcess(config).start() for _ in range(2)]
            try:
                t0 = time.perf_counter()
                batch = asyncio.run(_two_daemon_batch(daemons, jobs_per_daemon))
                wall = time.perf_counter() - t0
            finally:
                for daemon in daemons:
                    daemon.stop()
            calls = server.stats()
            runs.append(
                SharedLimitsRun(
                    backend=backend,
                    jobs=2 * jobs_per_daemon,
                    ok_jobs=sum(ok for ok, _ in batch),
                    wall_s=wall,
                    ideal_s=ideal_wall_s(calls, rpm, burst),
                    http_429=sum(1 for c in calls if c[2] == 429),
                )
            )
    finally:
        redis.cleanup()
        server.stop()
    return runs


async def _two_daemon_batch(daemons: list[DaemonProcess], each: int) -> list[tuple[bool, float]]:
    clients = [await SocketClient.connect(d.socket_path) for d in daemons]
    try:
        batches = await asyncio.gather(
            *(socket_batch([c], prompts_for(each, f"d{i}")) for i, c in enumerate(clients))
        )
    finally:
        for client in clients:
            await client.close()
    return [item for batch in batches for item in batch]


# --- 8. time to the first token -----------------------------------------------------------


@dataclass
class TtftRun:
    """One door's streamed jobs: per job, the time to the synthesis round's start (the
    rounds before it), to the first delta of the final answer, and to the whole answer."""

    door: str
    first_ms: float
    token_ms: float
    direct_ttft_ms: float  # the synthesizer's own first token, asked directly, median
    before_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)

    @property
    def overhead_ms(self) -> list[float]:
        """What the first token costs beyond the rounds before the synthesis and the
        synthesizer's own first-token time: the target is at most 20 ms."""
        pairs = zip(self.ttft_ms, self.before_ms, strict=True)
        return [t - b - self.direct_ttft_ms for t, b in pairs]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _direct_ttft(base_url: str, n: int) -> float:
    """The synthesizer's own time to the first token: a streamed call straight to it."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    times = []
    try:
        for i in range(n):
            started = time.perf_counter()
            stream = await client.chat.completions.create(
                model="m1",
                messages=[{"role": "user", "content": f"direct {i}"}],
                stream=True,
                max_tokens=MAX_TOKENS,
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    times.append((time.perf_counter() - started) * 1000)
                    break
            await stream.close()
    finally:
        await client.close()
    return statistics.median(times)


async def _socket_ttft(path: str, run: TtftRun, jobs: int) -> None:
    client = await SocketClient.connect(path)
    marks: dict[str, float] = {}

    def on_event(params: dict[str, Any], at: float) -> None:
        if params.get("type") == "round_started" and params.get("round") == "synthesis":
            marks.setdefault("synthesis", at)
        elif params.get("type") == "delta" and params.get("text"):
            marks.setdefault("delta", at)

    client.on_event = on_event
    try:
        for i in range(jobs):
            marks.clear()
            started = time.perf_counter()
            reply = await client.request("ask", {"prompt": f"ttft socket {i}", "stream": True})
            done = time.perf_counter()
            if reply.get("result", {}).get("status") != "ok" or len(marks) < 2:
                continue
            run.before_ms.append((marks["synthesis"] - started) * 1000)
            run.ttft_ms.append((marks["delta"] - started) * 1000)
            run.total_ms.append((done - started) * 1000)
    finally:
        await client.close()


async def _http_ttft(url: str, key: str, run: TtftRun, jobs: int) -> None:
    """The OpenAI front door with the openai SDK streaming. A chunk carries no round
    events, so the rounds before the synthesis are the socket's median for the same jobs."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)
    try:
        for i in range(jobs):
            started = time.perf_counter()
            first = None
            stream = await client.chat.completions.create(
                model="orchestrord",
                messages=[{"role": "user", "content": f"ttft http {i}"}],
                stream=True,
            )
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter()
            if first is not None:
                run.ttft_ms.append((first - started) * 1000)
                run.total_ms.append((time.perf_counter() - started) * 1000)
    finally:
        await client.close()


def ttft(first_ms: float = 100, token_ms: float = 10, jobs: int = 20) -> list[TtftRun]:
    """Three models at ``first_ms`` to the first token, then a word every ``token_ms``;
    three rounds, m1 synthesizes. One job at a time, streamed through the socket and
    through the HTTP front door, measured from the client's side."""
    server = BenchServerProcess(latency_ms=first_ms, token_ms=token_ms)
    port = _free_port()
    config = {
        "models": openai_models(server.base_url),
        "pipeline": {"synthesizer": "m1", "job_timeout_s": 120},
        "http": {"listen": f"127.0.0.1:{port}", "api_key_env": "BENCH_HTTP_KEY"},
    }
    key = "bench-http-key"
    daemon = DaemonProcess(config, env={"OPENAI_API_KEY": "bench", "BENCH_HTTP_KEY": key})
    try:
        daemon.start()
        direct = asyncio.run(_direct_ttft(server.base_url, 10))
        sock = TtftRun(door="socket", first_ms=first_ms, token_ms=token_ms, direct_ttft_ms=direct)
        asyncio.run(_socket_ttft(daemon.socket_path, sock, jobs))
        http = TtftRun(door="http", first_ms=first_ms, token_ms=token_ms, direct_ttft_ms=direct)
        asyncio.run(_http_ttft(f"http://127.0.0.1:{port}/v1", key, http, jobs))
        before = statistics.median(sock.before_ms) if sock.before_ms else float("nan")
        http.before_ms = [before] * len(http.ttft_ms)
        return [sock, http]
    finally:
        daemon.cleanup()
        server.stop()
