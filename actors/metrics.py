"""Per-model call metrics: counters and a rolling window of recent outcomes.

Written by model actors when a call ends, read by the synthesizer (``auto`` picks
the best recent success rate, then the lowest latency) and by ``status``. It
outlives actor restarts, so a model's history survives its crashes. A lock guards
a few integer updates: no caller ever waits on I/O here.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from messages.results import Usage

CIRCUIT_FAILURES = 3
HEDGE_MIN_SAMPLES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelStats:
    calls_ok: int = 0
    calls_failed: int = 0
    inflight: int = 0
    success_rate: float = 1.0  # over the recent window; 1.0 with no history yet
    mean_latency_ms: float = math.inf  # over recent successes; inf with none yet
    consecutive_failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0  # extra attempts (after retryable failures) this run
    p50_latency_ms: float | None = None  # over recent successes

    @property
    def circuit_open(self) -> bool:
        """Failing right now: the auto synthesizer skips it until it answers again."""
        return self.consecutive_failures >= CIRCUIT_FAILURES


class _Window:
    __slots__ = (
        "calls_failed",
        "calls_ok",
        "consecutive_failures",
        "cost_usd",
        "inflight",
        "input_tokens",
        "output_tokens",
        "recent",
        "retries",
    )

    def __init__(self, size: int) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0
        self.retries = 0
        self.calls_ok = 0
        self.calls_failed = 0
        self.consecutive_failures = 0
        self.inflight = 0
        self.recent: deque[tuple[bool, float]] = deque(maxlen=size)


class Metrics:
    def __init__(self, window: int = 50) -> None:
        self._size = window
        self._lock = threading.Lock()
        self._models: dict[str, _Window] = {}

    def _get(self, model: str) -> _Window:
        win = self._models.get(model)
        if win is None:
            win = self._models[model] = _Window(self._size)
        return win

    def record(
        self,
        model: str,
        *,
        ok: bool,
        latency_s: float,
        usage: Usage | None = None,
        cost_usd: float = 0.0,
        attempts: int = 1,
    ) -> None:
        with self._lock:
            win = self._get(model)
            win.retries += max(0, attempts - 1)
            win.cost_usd += cost_usd
            if usage is not None:
                win.input_tokens += usage.input_tokens
                win.output_tokens += usage.output_tokens
            if ok:
                win.calls_ok += 1
                win.consecutive_failures = 0
            else:
                win.calls_failed += 1
                win.consecutive_failures += 1
            win.recent.append((ok, latency_s))

    def load(self, history: list[tuple[str, bool, float]]) -> None:
        """Seed the recent windows with outcomes recorded before (oldest first); the
        counters of this run stay at zero."""
        with self._lock:
            for model, ok, latency_s in history:
                win = self._get(model)
                win.recent.append((ok, latency_s))
                win.consecutive_failures = 0 if ok else win.consecutive_failures + 1

    def add_inflight(self, model: str, delta: int) -> None:
        with self._lock:
            win = self._get(model)
            win.inflight = max(0, win.inflight + delta)

    def stats(self, model: str) -> ModelStats:
        with self._lock:
            win = self._get(model)
            recent = list(win.recent)
            calls_ok, calls_failed, inflight = win.calls_ok, win.calls_failed, win.inflight
            failing = win.consecutive_failures
            tokens = (win.input_tokens, win.output_tokens)
            cost, retries = round(win.cost_usd, 10), win.retries
        rate = sum(ok for ok, _ in recent) / len(recent) if recent else 1.0
        latencies = [lat for ok, lat in recent if ok]
        mean = 1000 * sum(latencies) / len(latencies) if latencies else math.inf
        p50 = 1000 * sorted(latencies)[len(latencies) // 2] if latencies else None
        return ModelStats(
            calls_ok=calls_ok,
            calls_failed=calls_failed,
            inflight=inflight,
            success_rate=rate,
            mean_latency_ms=mean,
            consecutive_failures=failing,
            p50_latency_ms=None if p50 is None else round(p50, 1),
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost_usd=cost,
            retries=retries,
        )

    def p95_latency_s(self, model: str, min_samples: int = HEDGE_MIN_SAMPLES) -> float | None:
        """The 95th percentile of recent successful calls' latency, or None with fewer
        than ``min_samples`` of them (too little history to call a call late)."""
        with self._lock:
            latencies = sorted(lat for ok, lat in self._get(model).recent if ok)
        if len(latencies) < min_samples:
            return None
        return latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)]

    def rank(self, models: Iterable[str]) -> list[str]:
        """``models`` best first: closed circuits before open ones, then success rate,
        then latency, then the given order."""
        names = list(models)
        keyed = []
        for index, name in enumerate(names):
            s = self.stats(name)
            keyed.append((s.circuit_open, -s.success_rate, s.mean_latency_ms, index, name))
        return [name for *_, name in sorted(keyed)]
