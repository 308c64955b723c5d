"""Time to the first byte and to the first content token through the HTTP door
(``python -m bench.door``): what each kind of stream costs, measured from an openai SDK
client against a real daemon and the loopback OpenAI-compatible bench server.

Three models answer after ``first_ms`` and then write a word every ``token_ms``; m1
synthesizes. Per kind of request, one job at a time:

- ``model``: one model alone (``model="m1"``): its tokens stream live;
- ``ensemble``: the default pipeline: the answer is held until it is final (with a
  ``response_format`` it is held the same way, until it validated; the bench server's
  answers are not JSON, so that case is not run here);
- ``socket``: the same ensemble through the socket, whose deltas stream live: the first
  delta there is when a live HTTP stream would have shown its first token, so
  ``ensemble - socket`` is what holding costs in time to the first token;
- ``responses model`` / ``responses ensemble``: the same through ``POST /v1/responses``
  (the openai SDK's ``responses.create``: the first ``response.output_text.delta``);
- ``messages model`` / ``messages ensemble``: the same through ``POST /v1/messages`` (the
  anthropic SDK: the first ``content_block_delta`` with text).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.procs import BenchServerProcess, DaemonProcess, SocketClient
from bench.scenarios import _free_port, openai_models, percentile

KEY = "bench-door-key"


@dataclass
class DoorRun:
    kind: str
    first_byte_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)


async def _http(url: str, kind: str, jobs: int) -> DoorRun:
    from openai import AsyncOpenAI

    run = DoorRun(kind)
    model = "m1" if kind == "model" else "orchestrord"
    async with AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=120) as client:
        for i in range(jobs):
            started = time.perf_counter()
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"door {kind} {i}"}],
                stream=True,
            )
            first_byte = first_token = None
            async for chunk in stream:
                now = time.perf_counter()
                first_byte = first_byte or now
                if first_token is None and chunk.choices and chunk.choices[0].delta.content:
                    first_token = now
            if first_byte is not None and first_token is not None:
                run.first_byte_ms.append((first_byte - started) * 1000)
                run.first_token_ms.append((first_token - started) * 1000)
                run.total_ms.append((time.perf_counter() - started) * 1000)
    return run


async def _responses(url: str, kind: str, jobs: int) -> DoorRun:
    from openai import AsyncOpenAI

    run = DoorRun(f"responses {kind}")
    model = "m1" if kind == "model" else "orchestrord"
    async with AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=120) as client:
        for i in range(jobs):
            started = time.perf_counter()
            stream = await client.responses.create(
                model=model, input=f"door responses {kind} {i}", stream=True
            )
            marks = [None, None]
            async for event in stream:
                _mark(marks, event.type == "response.output_text.delta" and bool(event.delta))
            _record(run, started, marks)
    return run


async def _messages(url: str, kind: str, jobs: int) -> DoorRun:
    from anthropic import AsyncAnthropic

    run = DoorRun(f"messages {kind}")
    model = "m1" if kind == "model" else "orchestrord"
    root = url.removesuffix("/v1")
    async with AsyncAnthropic(base_url=root, api_key=KEY, max_retries=0, timeout=120) as client:
        for i in range(jobs):
            started = time.perf_counter()
            stream = await client.messages.create(
                model=model,
                max_tokens=256,
                messages=[{"role": "user", "content": f"door messages {kind} {i}"}],
                stream=True,
            )
            marks = [None, None]
            async for event in stream:
                text = getattr(getattr(event, "delta", None), "text", None)
                _mark(marks, event.type == "content_block_delta" and bool(text))
            _record(run, started, marks)
    return run


def _mark(marks: list[Any], is_token: bool) -> None:
    """The first event's time, and the first content token's."""
    now = time.perf_counter()
    marks[0] = marks[0] or now
    if is_token and marks[1] is None:
        marks[1] = now


def _record(run: DoorRun, started: float, marks: list[Any]) -> None:
    if marks[0] is not None and marks[1] is not None:
        run.first_byte_ms.append((marks[0] - started) * 1000)
        run.first_token_ms.append((marks[1] - started) * 1000)
        run.total_ms.append((time.perf_counter() - started) * 1000)


async def _socket(path: str, jobs: int) -> DoorRun:
    run = DoorRun("socket")
    client = await SocketClient.connect(path)
    marks: dict[str, float] = {}

    def on_event(params: dict[str, Any], at: float) -> None:
        if params.get("type") == "delta" and params.get("text"):
            marks.setdefault("delta", at)

    client.on_event = on_event
    try:
        for i in range(jobs):
            marks.clear()
            started = time.perf_counter()
            reply = await client.request("ask", {"prompt": f"door socket {i}", "stream": True})
            if reply.get("result", {}).get("status") == "ok" and "delta" in marks:
                run.first_token_ms.append((marks["delta"] - started) * 1000)
                run.total_ms.append((time.perf_counter() - started) * 1000)
    finally:
        await client.close()
    return run


def door_ttft(first_ms: float = 100, token_ms: float = 10, jobs: int = 10) -> list[DoorRun]:
    server = BenchServerProcess(latency_ms=first_ms, token_ms=token_ms)
    port = _free_port()
    config = {
        "models": openai_models(server.base_url),
        "pipeline": {"synthesizer": "m1", "job_timeout_s": 120},
        "http": {"listen": f"127.0.0.1:{port}", "api_key_env": "BENCH_HTTP_KEY"},
    }
    daemon = DaemonProcess(config, env={"OPENAI_API_KEY": "bench", "BENCH_HTTP_KEY": KEY})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        daemon.start()
        runs = [asyncio.run(_http(url, kind, jobs)) for kind in ("model", "ensemble")]
        runs.append(asyncio.run(_socket(daemon.socket_path, jobs)))
        for door in (_responses, _messages):
            runs += [asyncio.run(door(url, kind, jobs)) for kind in ("model", "ensemble")]
        return runs
    finally:
        daemon.cleanup()
        server.stop()


def table(runs: list[DoorRun]) -> str:
    lines = [
        "| stream | jobs | first byte p50 ms | first token p50 ms | p90 | whole answer p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        byte = f"{percentile(run.first_byte_ms, 50):.1f}" if run.first_byte_ms else "-"
        token = run.first_token_ms
        lines.append(
            f"| {run.kind} | {len(token)} | {byte} | {percentile(token, 50):.0f} "
            f"| {percentile(token, 90):.0f} | {percentile(run.total_ms, 50):.0f} |"
        )
    by = {r.kind: r for r in runs}
    held = statistics.median(by["ensemble"].first_token_ms)
    live = statistics.median(by["socket"].first_token_ms)
    lines.append(f"\nHolding the ensemble's answer costs {held - live:.0f} ms to the first token.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--first-ms", type=float, default=100)
    parser.add_argument("--token-ms", type=float, default=10)
    args = parser.parse_args()
    print(table(door_ttft(args.first_ms, args.token_ms, args.jobs)))


if __name__ == "__main__":
    main()
