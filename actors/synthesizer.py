"""SynthesizerActor: writes a job's final answer, falling back model by model.

The order: the configured synthesizer first (if any), then the job's other live
models ranked by recent success rate, then latency (``auto``). The first that
answers wins; the ``SynthesisFinished`` it sends back names it and carries the
failed attempts, so the result says who really synthesised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.config import TemplatesConfig
from actors.metrics import Metrics
from actors.runtime import safe_tell
from messages.commands import CancelJob, Complete, Synthesize, new_id
from messages.events import CallFinished, RosterChanged, RosterEntry, SynthesisFinished
from messages.results import ModelReply


@dataclass(slots=True)
class _Synthesis:
    msg: Synthesize
    order: list[str]
    failed: list[ModelReply] = field(default_factory=list)
    call_id: str = ""


class SynthesizerActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        templates: TemplatesConfig,
        metrics: Metrics,
        roster: tuple[RosterEntry, ...] = (),
    ) -> None:
        super().__init__()
        self.templates = templates
        self.metrics = metrics
        self.roster: dict[str, RosterEntry] = {e.name: e for e in roster}
        self.jobs: dict[str, _Synthesis] = {}

    def order(self, candidates: tuple[str, ...], preferred: str | None) -> list[str]:
        """Synthesizer candidates, best first: live ones whose circuit is closed (recent
        success rate, then latency, from the metrics the run store seeds)."""
        live = [m for m in candidates if (e := self.roster.get(m)) is not None and e.live]
        closed = [m for m in live if not self.metrics.stats(m).circuit_open]
        ranked = self.metrics.rank(closed or live)  # failing models only as a last resort
        if preferred in ranked:
            ranked.remove(preferred)
            ranked.insert(0, preferred)
        return ranked

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Synthesize):
            job = _Synthesis(message, self.order(message.candidates, message.preferred))
            self.jobs[message.job_id] = job
            self._try_next(job)
        elif isinstance(message, CallFinished):
            running = self.jobs.get(message.job_id)
            if running is not None and message.call_id == running.call_id:
                if message.reply.ok:
                    self._done(running, message.reply)
                else:
                    running.failed.append(message.reply)
                    self._try_next(running)
        elif isinstance(message, CancelJob):
            self.jobs.pop(message.job_id, None)
        elif isinstance(message, RosterChanged):
            self.roster = {e.name: e for e in message.roster}
        else:
            return super().on_receive(message)
        return None

    def _try_next(self, job: _Synthesis) -> None:
        while job.order:
            name = job.order.pop(0)
            entry = self.roster.get(name)
            if entry is None or not entry.live:
                continue
            job.call_id = new_id()
            sent = safe_tell(
                entry.ref,
                Complete(
                    call_id=job.call_id,
                    job_id=job.msg.job_id,
                    round_name="synthesis",
                    round_index=-1,
                    prompt=job.msg.prompt,
                    system=self.templates.system,
                    deadline=job.msg.deadline,
                    reply_to=self.actor_ref,
                    temperature=job.msg.temperature,
                    seed=job.msg.seed,
                ),
            )
            if sent:
                return
        self._done(job, None)

    def _done(self, job: _Synthesis, reply: ModelReply | None) -> None:
        self.jobs.pop(job.msg.job_id, None)
        safe_tell(
            job.msg.reply_to,
            SynthesisFinished(
                job_id=job.msg.job_id,
                reply=reply,
                synthesizer=None if reply is None else reply.model,
                failed=tuple(job.failed),
            ),
        )
