"""The straggler cut (``[pipeline] quorum`` and ``straggler_grace_s``): once a round's
quorum of ok replies is in, the calls still out get a grace period; when it is over they
are cut, shown as ``skipped`` with the code ``straggler``, and the round closes without them.
The coordinator arms the timer and cancels the cut calls at their model actors."""

from __future__ import annotations

from typing import Any

from actors.jobs import Job
from messages.events import TimerFired
from messages.results import ErrorInfo, ModelReply


def watch(job: Job, io: Any, coordinator: Any) -> None:
    """Arm the grace timer once the round's quorum of ok replies is in (once a round)."""
    need = job.config.pipeline.quorum_of(job.round_calls)
    if job.straggler_timer is not None or need is None:
        return
    if sum(1 for r in job.replies if r.ok) >= need:
        job.straggler_timer = io.tell_later(
            job.config.pipeline.straggler_grace_s,
            coordinator,
            TimerFired(kind="straggler", key=job.job_id, generation=job.round_index),
        )


def cut(job: Job) -> list[str]:
    """The grace is over: every call still out is recorded (and streamed) as skipped;
    the models whose calls were cut, for the caller to cancel them there."""
    grace = job.config.pipeline.straggler_grace_s
    error = ErrorInfo(
        code="straggler", message=f"cut: no answer {grace:g}s after the round's quorum was in"
    )
    late = list(job.pending.values())
    job.pending.clear()
    for model in late:
        reply = ModelReply(model=model, status="skipped", error=error)
        job.record(reply)
        job.emit("reply", job.round_name, reply)
    return late
