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


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelStats:
    calls_ok: int = 0
    calls_failed: int = 0
    inflight: int = 0
    success_rate: float = 1.0  # over the recent window; 1.0 with no history yet
    mean_latency_ms: float = math.inf  # over recent successes; inf with none yet


class _Window:
    __slots__ = ("calls_failed", "calls_ok", "inflight", "recent")

    def __init__(self, size: int) -> None:
        self.calls_ok = 0
        self.calls_failed = 0
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

    def record(self, model: str, *, ok: bool, latency_s: float) -> None:
        with self._lock:
            win = self._get(model)
            if ok:
                win.calls_ok += 1
            else:
                win.calls_failed += 1
            win.recent.append((ok, latency_s))

    def add_inflight(self, model: str, delta: int) -> None:
        with self._lock:
            win = self._get(model)
            win.inflight = max(0, win.inflight + delta)

    def stats(self, model: str) -> ModelStats:
        with self._lock:
            win = self._get(model)
            recent = list(win.recent)
            calls_ok, calls_failed, inflight = win.calls_ok, win.calls_failed, win.inflight
        rate = sum(ok for ok, _ in recent) / len(recent) if recent else 1.0
        latencies = [lat for ok, lat in recent if ok]
        mean = 1000 * sum(latencies) / len(latencies) if latencies else math.inf
        return ModelStats(
            calls_ok=calls_ok,
            calls_failed=calls_failed,
            inflight=inflight,
            success_rate=rate,
            mean_latency_ms=mean,
        )

    def rank(self, models: Iterable[str]) -> list[str]:
        """``models`` best first: success rate, then latency, then the given order."""
        names = list(models)
        keyed = []
        for index, name in enumerate(names):
            s = self.stats(name)
            keyed.append((-s.success_rate, s.mean_latency_ms, index, name))
        return [name for *_, name in sorted(keyed)]
