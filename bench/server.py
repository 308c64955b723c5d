"""A loopback OpenAI-compatible server for benchmarks.

``POST /v1/chat/completions`` answers after ``latency_ms`` (or a model's own, with
``--model-latency``); per model (the request's ``model`` field) it enforces requests and
tokens per minute with its own GCRA (burst ``burst`` requests / ``tpm`` tokens, not
orchestrord's token bucket) and answers 429 with ``Retry-After`` and ``retry-after-ms``
past them. ``GET /stats`` returns every call as ``[t, model, status]``
(t in seconds since the last reset); ``POST /reset`` clears them and refills buckets.

A small asyncio HTTP/1.1 server (keep-alive, Content-Length bodies), so a few hundred
concurrent calls cost no threads. Run it as ``python -m bench.server --port N ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Limits:
    latency_ms: float = 0.0
    rpm: float | None = None
    burst: float = 2.0
    tpm: float | None = None
    answer_words: int = 12
    token_ms: float = 0.0  # between one word and the next: a stream's pace after its first
    model_latency_ms: dict[str, float] = field(default_factory=dict)  # per-model override


@dataclass
class Stream:
    """A streamed completion as OpenAI sends it: server-sent ``chat.completion.chunk``
    events in a chunked body, the first after ``first_ms``, then one every ``token_ms``,
    then a usage chunk (``stream_options.include_usage``) and ``[DONE]``."""

    model: str
    first_ms: float
    token_ms: float
    pieces: list[str]
    usage: dict[str, int]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "bench", "object": "chat.completion.chunk", "created": 0,
                "model": self.model, "choices": [choice]}  # fmt: skip

    async def write(self, writer: asyncio.StreamWriter) -> None:
        head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        writer.write((head + "transfer-encoding: chunked\r\n\r\n").encode())

        async def send(event: Any) -> None:
            data = f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()

        await asyncio.sleep(self.first_ms / 1000)
        for i, piece in enumerate(self.pieces):
            if i and self.token_ms:
                await asyncio.sleep(self.token_ms / 1000)
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            await send(self._chunk(delta))
        await send(self._chunk({}, "stop"))
        await send({**self._chunk({}), "choices": [], "usage": self.usage})
        await send("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()


class GCRA:
    """The generic cell rate algorithm (as API gateways, redis-cell and Stripe use it),
    written here independently of orchestrord's limiter so that "zero 429s" measures
    orchestrord against a different implementation of the provider's contract.

    Each unit of work pushes a theoretical arrival time (TAT) ``interval`` seconds into the
    future; a request is refused while the TAT it would leave lies more than
    ``capacity * interval`` ahead of now. No levels, no refills: only TAT."""

    def __init__(self, per_minute: float, capacity: float) -> None:
        self.interval = 60.0 / per_minute
        self.tolerance = capacity * self.interval
        self.tat = 0.0

    def check(self, now: float, cost: float) -> float:
        """Seconds until ``cost`` units would be allowed (0: allowed now; not charged)."""
        new_tat = max(self.tat, now) + cost * self.interval
        return max(0.0, new_tat - self.tolerance - now)

    def charge(self, now: float, cost: float) -> None:
        self.tat = max(self.tat, now) + cost * self.interval


@dataclass
class ModelState:
    requests: GCRA | None
    tokens: GCRA | None


@dataclass
class BenchServer:
    limits: Limits
    started: float = field(default_factory=time.monotonic)
    calls: list[tuple[float, str, int]] = field(default_factory=list)
    models: dict[str, ModelState] = field(default_factory=dict)

    def reset(self) -> None:
        self.started = time.monotonic()
        self.calls.clear()
        self.models.clear()

    def _state(self, model: str) -> ModelState:
        state = self.models.get(model)
        if state is None:
            lim = self.limits
            state = self.models[model] = ModelState(
                requests=GCRA(lim.rpm, lim.burst) if lim.rpm else None,
                tokens=GCRA(lim.tpm, lim.tpm) if lim.tpm else None,
            )
        return state

    def admit(self, model: str, tokens: int) -> float:
        """0 if the call may go now (and charge it), else seconds until it could."""
        now = time.monotonic()
        state = self._state(model)
        limits = [(state.requests, 1), (state.tokens, tokens)]
        wait = max((g.check(now, cost) for g, cost in limits if g is not None), default=0.0)
        if wait == 0:
            for g, cost in limits:
                if g is not None:
                    g.charge(now, cost)
        return wait

    async def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        model = str(body.get("model", "m"))
        prompt = "".join(str(m.get("content", "")) for m in body.get("messages", []))
        prompt_tokens = len(prompt) // 4 + 1
        completion_tokens = self.limits.answer_words
        wait = self.admit(model, prompt_tokens + completion_tokens)
        t = time.monotonic() - self.started
        if wait > 0:
            self.calls.append((t, model, 429))
            headers = {"retry-after": str(math.ceil(wait)), "retry-after-ms": f"{wait * 1000:.0f}"}
            return 429, headers, {"error": {"message": "rate limited", "type": "requests"}}
        self.calls.append((t, model, 200))
        latency_ms = self.limits.model_latency_ms.get(model, self.limits.latency_ms)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if body.get("stream") is True:  # latency_ms is then the time to the first token
            pieces = [f"{model}:", *(f" w{i}" for i in range(completion_tokens))]
            return 200, {}, Stream(model, latency_ms, self.limits.token_ms, pieces, usage)
        pace = latency_ms + self.limits.token_ms * completion_tokens
        if pace:
            await asyncio.sleep(pace / 1000)
        words = " ".join(f"w{i}" for i in range(completion_tokens))
        return (
            200,
            {},
            {
                "id": "bench",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"{model}: {words}"},
                    }
                ],
                "usage": usage,
            },
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                method, path, _ = request_line.decode().split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                raw = await reader.readexactly(length) if length else b""
                status, headers, payload = await self.route(method, path, raw)
                if isinstance(payload, Stream):
                    await payload.write(writer)
                    continue
                data = json.dumps(payload).encode()
                head = [
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
                    "content-type: application/json",
                    f"content-length: {len(data)}",
                    *(f"{k}: {v}" for k, v in headers.items()),
                ]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def route(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and path.endswith("/chat/completions"):
            return await self.chat(json.loads(raw))
        if method == "GET" and path == "/stats":
            return 200, {}, {"calls": self.calls}
        if method == "POST" and path == "/reset":
            self.reset()
            return 200, {}, {"reset": True}
        return 404, {}, {"error": {"message": f"no route {method} {path}"}}


async def serve(port: int, limits: Limits, ready: asyncio.Event | None = None) -> None:
    server = BenchServer(limits)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=1024)
    print(f"listening on {srv.sockets[0].getsockname()[1]}", flush=True)
    if ready is not None:
        ready.set()
    async with srv:
        await srv.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rpm", type=float)
    parser.add_argument("--burst", type=float, default=2.0)
    parser.add_argument("--tpm", type=float)
    parser.add_argument("--token-ms", type=float, default=0.0, help="a stream's pace")
    parser.add_argument(
        "--model-latency",
        action="append",
        default=[],
        metavar="MODEL=MS",
        help="a slower (or faster) model: its own latency (repeatable)",
    )
    args = parser.parse_args()
    per_model = {k: float(v) for k, _, v in (x.partition("=") for x in args.model_latency)}
    limits = Limits(
        latency_ms=args.latency_ms,
        rpm=args.rpm,
        burst=args.burst,
        tpm=args.tpm,
        token_ms=args.token_ms,
        model_latency_ms=per_model,
    )
    asyncio.run(serve(args.port, limits))


if __name__ == "__main__":
    main()
