"""SynthesizerActor: writes a job's final answer, falling back model by model, hedging
a late one.

The order: the configured synthesizer first (if any), then the job's other live
models ranked by answer quality (how often their answers agreed with the final one or
ranked high, and their evaluation accuracy), then recent success rate, then latency
(``auto``). The first that answers wins; the ``SynthesisFinished`` it sends back names
it, says why it was chosen, and carries the failed attempts, so the result says who
really synthesised and why.

Hedging: when the synthesizer has not answered within twice its own recent p95 latency
(known after 5 successes; at least 1 s), the next candidate starts too (once per job).
The first answer wins, the other call is cancelled, and the result's ``hedge`` says who
was asked, when, and who won.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.config import TemplatesConfig
from actors.metrics import Metrics
from actors.runtime import IOLoop, Timer, safe_tell
from messages.commands import CancelJob, Complete, Reconfigure, Synthesize, new_id
from messages.events import (
    ActorFailed,
    CallDelta,
    CallFinished,
    RosterChanged,
    RosterEntry,
    SynthesisDelta,
    SynthesisFinished,
    TimerFired,
)
from messages.results import ErrorInfo, ModelReply

HEDGE_FACTOR = 2.0  # a synthesis is late past twice its model's recent p95 …
HEDGE_MIN_S = 1.0  # … and never before this


def hedge_after(p95_s: float) -> float:
    """When a synthesis counts as late. The p95 is over all of the model's calls, and a
    synthesis prompt is longer than most: hedging at the p95 itself started a second call
    for most jobs under load (measured: +50 % p50 at 16 concurrent jobs), adding the very
    load that made them late. Hedging is for stalls, not for ordinary spread."""
    return max(HEDGE_MIN_S, HEDGE_FACTOR * p95_s)


@dataclass(slots=True)
class _Synthesis:
    msg: Synthesize
    order: list[str]
    started: float
    failed: list[ModelReply] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)  # call_id -> model, in flight
    hedge: dict[str, Any] | None = None
    timer: Timer | None = None
    streaming: tuple[str, int] | None = None  # (call_id, attempt) whose pieces go out


class SynthesizerActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        templates: TemplatesConfig,
        metrics: Metrics,
        io: IOLoop | None = None,
        roster: tuple[RosterEntry, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        supervisor: Any = None,
        generation: int = 1,
    ) -> None:
        super().__init__()
        self.supervisor = supervisor
        self.generation = generation
        self.templates = templates
        self.metrics = metrics
        self.io = io
        self.clock = clock
        self.roster: dict[str, RosterEntry] = {e.name: e for e in roster}
        self.jobs: dict[str, _Synthesis] = {}

    def order(
        self, candidates: tuple[str, ...], preferred: str | None, deterministic: bool = False
    ) -> list[str]:
        """Synthesizer candidates, best first: live ones whose circuit is closed (recent
        success rate, then latency, from the metrics the run store seeds). A deterministic
        job keeps the given order: its answer must not depend on call history."""
        live = [m for m in candidates if (e := self.roster.get(m)) is not None and e.live]
        if deterministic:
            ranked = list(live)
        else:
            closed = [m for m in live if not self.metrics.stats(m).circuit_open]
            ranked = self.metrics.rank(closed or live)  # failing models as a last resort
        if preferred in ranked:
            ranked.remove(preferred)
            ranked.insert(0, preferred)
        return ranked

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Synthesize):
            order = self.order(message.candidates, message.preferred, message.deterministic)
            job = _Synthesis(message, order, self.clock())
            self.jobs[message.job_id] = job
            self._try_next(job)
        elif isinstance(message, CallFinished):
            running = self.jobs.get(message.job_id)
            if running is not None and message.call_id in running.calls:
                self._on_reply(running, message)
        elif isinstance(message, CallDelta):
            running = self.jobs.get(message.job_id)
            if running is not None and message.call_id in running.calls:
                self._on_delta(running, message)
        elif isinstance(message, TimerFired):
            running = self.jobs.get(message.key)
            if running is not None and message.kind == "hedge":
                self._hedge(running)
        elif isinstance(message, CancelJob):
            cancelled = self.jobs.pop(message.job_id, None)
            if cancelled is not None and cancelled.timer is not None:
                cancelled.timer.cancel()
        elif isinstance(message, RosterChanged):
            self.roster = {e.name: e for e in message.roster}
        elif isinstance(message, Reconfigure):
            self.templates = message.config.templates
        else:
            return super().on_receive(message)
        return None

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """A bug: every running synthesis ends without an answer (its job then fails with
        the partial result, not at its deadline), and a new synthesizer takes over."""
        for job in list(self.jobs.values()):
            self._done(job, None)
        if self.supervisor is not None:
            error = ErrorInfo(code="internal_error", message=repr(exc))
            safe_tell(
                self.supervisor,
                ActorFailed(name="synthesizer", generation=self.generation, error=error),
            )

    def _on_delta(self, job: _Synthesis, msg: CallDelta) -> None:
        """Pass one call's pieces on: the first call that streams, until it fails or
        retries; then the next one, after a reset (a hedge streaming alongside is not
        passed on: the coordinator sends the winner's whole text if it differs)."""
        key = (msg.call_id, msg.attempt)
        if job.streaming != key:
            current = job.streaming
            still_going = current is not None and current[0] in job.calls
            if still_going and current is not None and current[0] != msg.call_id:
                return  # another call is streaming already
            if current is not None:
                safe_tell(job.msg.reply_to, SynthesisDelta(job_id=job.msg.job_id, reset=True))
            job.streaming = key
        safe_tell(job.msg.reply_to, SynthesisDelta(job_id=job.msg.job_id, text=msg.text))

    def _on_reply(self, job: _Synthesis, msg: CallFinished) -> None:
        del job.calls[msg.call_id]
        if msg.reply.ok:
            self._done(job, msg.reply)
            return
        job.failed.append(msg.reply)
        if not job.calls:  # a hedge still running may yet answer
            self._try_next(job)

    def _send(self, job: _Synthesis) -> str | None:
        """Ask the next live candidate; its name, or None when none is left."""
        while job.order:
            name = job.order.pop(0)
            entry = self.roster.get(name)
            if entry is None or not entry.live:
                continue
            call_id = new_id()
            temperature, seed = job.msg.sampling.get(name, (None, None))
            sent = safe_tell(
                entry.ref,
                Complete(
                    call_id=call_id,
                    job_id=job.msg.job_id,
                    round_name="synthesis",
                    round_index=-1,
                    prompt=job.msg.prompt,
                    system=job.msg.systems.get(name)
                    or (self.templates.system if job.msg.system is None else job.msg.system),
                    deadline=job.msg.deadline,
                    reply_to=self.actor_ref,
                    temperature=temperature,
                    seed=seed,
                    max_tokens=job.msg.max_tokens,
                    history=job.msg.history,
                    stream=job.msg.stream,
                    sampling=job.msg.call_sampling,
                    tools=job.msg.tools,
                    tool_choice=job.msg.tool_choice,
                    parallel_tool_calls=job.msg.parallel_tool_calls,
                ),
            )
            if sent:
                job.calls[call_id] = name
                return name
        return None

    def _try_next(self, job: _Synthesis) -> None:
        name = self._send(job)
        if name is None:
            self._done(job, None)
            return
        p95 = self.metrics.p95_latency_s(name)
        if job.hedge is None and job.order and p95 is not None and self.io is not None:
            job.timer = self.io.tell_later(
                hedge_after(p95), self.actor_ref, TimerFired(kind="hedge", key=job.msg.job_id)
            )

    def _hedge(self, job: _Synthesis) -> None:
        """The synthesizer is later than its p95: start the next candidate as well."""
        job.timer = None
        if job.hedge is not None or len(job.calls) != 1:
            return
        [primary] = job.calls.values()
        backup = self._send(job)
        if backup is not None:
            after_ms = round((self.clock() - job.started) * 1000, 1)
            job.hedge = {"primary": primary, "backup": backup, "after_ms": after_ms}

    def _done(self, job: _Synthesis, reply: ModelReply | None) -> None:
        self.jobs.pop(job.msg.job_id, None)
        if job.timer is not None:
            job.timer.cancel()
        for model in set(job.calls.values()):  # the hedge that lost
            entry = self.roster.get(model)
            if entry is not None and entry.ref is not None:
                safe_tell(entry.ref, CancelJob(job_id=job.msg.job_id))
        if job.hedge is not None:
            job.hedge["winner"] = None if reply is None else reply.model
        reason = None if reply is None else self._reason(job, reply.model)
        safe_tell(
            job.msg.reply_to,
            SynthesisFinished(
                job_id=job.msg.job_id,
                reply=reply,
                synthesizer=None if reply is None else reply.model,
                failed=tuple(job.failed),
                hedge=job.hedge,
                reason=reason,
            ),
        )

    def _reason(self, job: _Synthesis, model: str) -> str:
        """Why ``model`` wrote the answer, in words (the result's ``synthesizer_reason``)."""
        msg = job.msg
        failed = list(dict.fromkeys(r.model for r in job.failed))
        prefix = f"after {', '.join(failed)} failed, " if failed else ""
        if job.hedge is not None and job.hedge.get("backup") == model:
            prefix += f"a hedge ({job.hedge['primary']} was late), "
        if model == msg.preferred:
            return prefix + msg.preferred_reason
        if msg.deterministic:
            return prefix + "a deterministic job: the first live candidate in the job's order"
        return prefix + "auto: " + self.metrics.why(model)
