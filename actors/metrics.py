"""Per-model call metrics: counters, a rolling window of recent outcomes, and answer
quality.

Written by model actors when a call ends and by the coordinator when a job ends (how
far each model's answer agreed with the final or winning one, or its peers' rank
score), read by the synthesizer (``auto`` picks the best answer quality, then the best
recent success rate, then the lowest latency) and by ``status``. It outlives actor
restarts, and the daemon seeds it from the run store. A lock guards a few updates: no
caller ever waits on I/O here.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actors.outliers import Panel
from actors.telemetry import Telemetry, provider_name
from actors.weights import Accuracy
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Quality:
    """How good a model's answers have been: ``score`` is the Laplace-smoothed mean of its
    recent quality samples (1 = agreed with the final answer or ranked first, 0 = a
    dissent or ranked last) and its evaluation results, 0.5 with no evidence at all."""

    score: float = 0.5
    samples: int = 0
    agreed: float = 0.0  # the sum of the samples
    eval_correct: int = 0
    eval_n: int = 0

    def describe(self) -> str:
        parts = []
        if self.samples:
            parts.append(f"{self.agreed:g} of {self.samples} recent answers agreed or ranked high")
        if self.eval_n:
            parts.append(f"evaluation {self.eval_correct}/{self.eval_n}")
        evidence = "; ".join(parts) if parts else "no evidence yet"
        return f"answer quality {self.score:.2f} ({evidence})"


class _Window:
    __slots__ = (
        "calls_failed",
        "calls_ok",
        "consecutive_failures",
        "cost_usd",
        "eval_correct",
        "eval_n",
        "inflight",
        "input_tokens",
        "output_tokens",
        "quality",
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
        self.quality: deque[float] = deque(maxlen=size)
        self.eval_correct = 0
        self.eval_n = 0


class Metrics:
    def __init__(self, window: int = 50) -> None:
        self._size = window
        self._lock = threading.Lock()
        self._models: dict[str, _Window] = {}
        self.telemetry = Telemetry()
        self._labels: dict[str, tuple[str, str, str, str]] = {}  # model -> GenAI labels
        self.accuracy = Accuracy()  # measured by evaluations (weighted votes)
        self.panel = Panel()  # who stands alone in the agreement maps (outliers)

    @property
    def registry(self) -> Any:
        return self.telemetry.registry

    def describe(self, models: Iterable[Any]) -> None:
        """The configured models (provider, model id) the GenAI labels name."""
        for m in models:
            self._labels[m.name] = ("chat", provider_name(m.provider, m.options), m.model, m.name)

    def _genai(self, model: str) -> tuple[str, str, str, str]:
        return self._labels.get(model, ("chat", "", "", model))

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
        error: str | None = None,
    ) -> None:
        t = self.telemetry
        labels = self._genai(model)
        t.child(t.duration, *labels, "" if ok else (error or "error")).observe(latency_s)
        t.child(t.calls, model, "ok" if ok else (error or "error")).inc()
        if usage is not None:
            t.child(t.tokens, *labels, "input").observe(usage.input_tokens)
            t.child(t.tokens, *labels, "output").observe(usage.output_tokens)
        if cost_usd:
            t.child(t.cost, model).inc(cost_usd)
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

    def record_quality(self, model: str, score: float) -> None:
        """One quality sample in [0, 1] for ``model`` (see ``Quality``)."""
        with self._lock:
            self._get(model).quality.append(min(1.0, max(0.0, float(score))))

    def load_quality(self, samples: list[tuple[str, float]]) -> None:
        """Seed the quality windows with samples recorded before (oldest first)."""
        for model, score in samples:
            self.record_quality(model, score)

    def record_eval(self, model: str, correct: int, n: int) -> None:
        """An evaluation's result for ``model`` alone: the latest replaces the last."""
        with self._lock:
            win = self._get(model)
            win.eval_correct, win.eval_n = int(correct), int(n)

    def quality(self, model: str) -> Quality:
        with self._lock:
            win = self._get(model)
            samples = list(win.quality)
            correct, n = win.eval_correct, win.eval_n
        agreed = sum(samples)
        score = (agreed + correct + 1) / (len(samples) + n + 2)
        return Quality(
            score=round(score, 4),
            samples=len(samples),
            agreed=round(agreed, 4),
            eval_correct=correct,
            eval_n=n,
        )

    def rate_limited(self, model: str) -> None:
        """A provider answered 429."""
        self.telemetry.child(self.telemetry.rate_limited, model).inc()

    def waited(self, model: str, seconds: float) -> None:
        """A call waited this long (its limits, the concurrency) before it started."""
        self.telemetry.child(self.telemetry.waits, model).observe(max(0.0, seconds))

    def job_started(self) -> None:
        self.telemetry.inflight_jobs.inc()

    def job_finished(
        self,
        status: str,
        strategy: str,
        rounds: Iterable[str],
        *,
        pipeline: str = "default",
        elapsed_s: float | None = None,
        escalations: Iterable[str] = (),
    ) -> None:
        """A job ended: its status, rounds, duration and the gates that escalated it."""
        t = self.telemetry
        t.inflight_jobs.dec()
        t.child(t.jobs, status, strategy).inc()
        for name in rounds:
            t.child(t.rounds, name).inc()
        if elapsed_s is not None:
            t.child(t.job_duration, pipeline, status).observe(max(0.0, elapsed_s))
        for stage in escalations:
            t.child(t.escalations, pipeline, stage).inc()

    def first_token(self, model: str, seconds: float) -> None:
        """A streamed call's first content token came this long after the call began."""
        t = self.telemetry
        t.child(t.first_token, *self._genai(model)).observe(max(0.0, seconds))

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request through a front door (``route`` is the template, not the path)."""
        t = self.telemetry
        t.child(t.http, method, route, str(status)).observe(max(0.0, seconds))

    def server_first_token(self, route: str, model: str, seconds: float) -> None:
        """A front door sent its first token this long after the request arrived."""
        t = self.telemetry
        t.child(t.server_ttft, "chat", model, route).observe(max(0.0, seconds))

    def add_inflight(self, model: str, delta: int) -> None:
        self.telemetry.child(self.telemetry.inflight_calls, model).inc(delta)
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
        """``models`` best first: closed circuits before open ones, models with a quality
        record before models without one (an unproven model's 0.5 is no evidence: a model
        always cut as a straggler must not outrank the ones that answered), then answer
        quality, then success rate, then latency, then the given order."""
        names = list(models)
        keyed = []
        for index, name in enumerate(names):
            s = self.stats(name)
            q = self.quality(name)
            unproven = not (q.samples or q.eval_n)
            speed = (-s.success_rate, s.mean_latency_ms)
            keyed.append((s.circuit_open, unproven, -q.score, *speed, index, name))
        return [name for *_, name in sorted(keyed)]

    def why(self, model: str) -> str:
        """Why ``rank`` put ``model`` where it is, in words (for a result's reason)."""
        s = self.stats(model)
        latency = "no latency yet" if s.p50_latency_ms is None else f"p50 {s.p50_latency_ms:g} ms"
        return f"{self.quality(model).describe()}; success {s.success_rate:.0%}, {latency}"
