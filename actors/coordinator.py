"""CoordinatorActor: runs jobs' rounds; many jobs at once, none waited on.

For each round it sends one ``Complete`` per live model (``reply_to`` = itself) and
gathers the ``CallFinished`` replies as they arrive, against one deadline per job
(a timer). Nothing waits inside its mailbox, so a thousand jobs in flight cost a
thousand small state objects, not threads. The ``synthesis`` round is handed to the
SynthesizerActor, which answers ``SynthesisFinished``.

A round with fewer than ``min_replies`` ok replies ends the job with its partial
result (``round_failed``); a failed or timed-out model is marked in its reply and
the job goes on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from actors import prompts
from actors.config import Config, check_rounds
from actors.jobs import Job
from actors.metrics import Metrics
from actors.runtime import IOLoop, safe_tell
from messages.commands import Ask, CancelJob, Complete, GetStatus, Synthesize, new_id
from messages.errors import (
    ConfigError,
    InvalidParams,
    JobCancelled,
    JobTimeoutError,
    NoModelAvailable,
    OrchestratorError,
    RoundError,
    ShuttingDown,
)
from messages.events import (
    CallFinished,
    RosterChanged,
    RosterEntry,
    SynthesisFinished,
    TimerFired,
)
from messages.results import ErrorInfo, JobResult, ModelReply


class CoordinatorActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        config: Config,
        io: IOLoop,
        metrics: Metrics,
        synthesizer: Any,
        roster: tuple[RosterEntry, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.config = config
        self.io = io
        self.metrics = metrics
        self.synthesizer = synthesizer
        self.clock = clock
        self.roster: dict[str, RosterEntry] = {e.name: e for e in roster}
        self.jobs: dict[str, Job] = {}
        self.jobs_total = 0

    # --- messages ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ask):
            return self._accept(message)
        if isinstance(message, CallFinished | SynthesisFinished | TimerFired):
            job = self.jobs.get(
                message.job_id if not isinstance(message, TimerFired) else message.key
            )
            if job is not None:
                self._guarded(job, self._on_event, job, message)
            return None
        if isinstance(message, RosterChanged):
            self.roster = {e.name: e for e in message.roster}
            return None
        if isinstance(message, CancelJob):
            return self._cancel(message.job_id)
        if isinstance(message, GetStatus):
            return {"inflight_jobs": len(self.jobs), "jobs_total": self.jobs_total}
        return super().on_receive(message)

    def on_stop(self) -> None:
        for job in list(self.jobs.values()):
            self._finish(job, "error", ShuttingDown("the orchestrator is stopping"))

    def _guarded(self, job: Job, fn: Callable[..., None], *args: Any) -> None:
        """A bug while handling one job fails that job, not the actor and its other jobs."""
        try:
            fn(*args)
        except Exception as exc:
            logger.exception("job {}: internal error", job.job_id)
            if job.job_id in self.jobs:
                self._finish(job, "error", OrchestratorError(f"internal error: {exc!r}"))

    # --- accepting ---------------------------------------------------------------------

    def _accept(self, ask: Ask) -> pykka.Future[JobResult]:
        future: pykka.Future[JobResult] = pykka.ThreadingFuture()
        try:
            job = self._new_job(ask, future)
        except OrchestratorError as exc:
            future.set_exception(exc_info=(type(exc), exc, None))
            _deliver_error(ask.reply_to, exc)
            return future
        self.jobs[job.job_id] = job
        self.jobs_total += 1
        job.deadline_timer = self.io.tell_later(
            job.deadline - self.clock(), self.actor_ref, TimerFired(kind="deadline", key=job.job_id)
        )
        self._guarded(job, self._start_round, job)
        return future

    def _new_job(self, ask: Ask, future: pykka.Future[JobResult]) -> Job:
        if not isinstance(ask.prompt, str) or not ask.prompt.strip():
            raise InvalidParams("prompt must be a non-empty string")
        if ask.job_id in self.jobs:
            raise InvalidParams(f"job {ask.job_id} is already running")
        pipeline = self.config.pipeline
        models = ask.models or self.config.model_names
        unknown = [m for m in models if m not in self.config.model_names]
        if unknown:
            raise InvalidParams(
                f"unknown model(s) {unknown}; known: {list(self.config.model_names)}"
            )
        rounds = ask.rounds or pipeline.rounds
        try:
            check_rounds("rounds", tuple(rounds))
        except ConfigError as exc:
            raise InvalidParams(exc.message) from None
        strategy = ask.strategy or pipeline.strategy
        if strategy != "synthesize":
            raise InvalidParams(f"unknown strategy {strategy!r}")
        synthesizer = ask.synthesizer or pipeline.synthesizer
        if synthesizer != "auto" and synthesizer not in models:
            raise InvalidParams(f"synthesizer {synthesizer!r} is not one of the job's models")
        timeout = pipeline.job_timeout_s if ask.timeout_s is None else ask.timeout_s
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidParams("timeout_s must be a positive number")
        now = self.clock()
        return Job(
            ask=ask,
            future=future,
            models=tuple(dict.fromkeys(models)),
            rounds=tuple(rounds),
            strategy=strategy,
            synthesizer=None if synthesizer == "auto" else synthesizer,
            started=now,
            deadline=now + timeout,
            rng=random.Random(),
        )

    # --- rounds ------------------------------------------------------------------------

    def _start_round(self, job: Job) -> None:
        name = job.rounds[job.round_index]
        job.emit("round_started", name)
        if name == "synthesis":
            self._start_synthesis(job)
            return
        previous = job.last_answers()
        for model in job.models:
            entry = self.roster.get(model)
            if entry is None or not entry.live:
                state = "down" if entry is None else entry.state
                job.record(
                    ModelReply(
                        model=model,
                        status="skipped",
                        error=ErrorInfo(code="no_model_available", message=f"{model} is {state}"),
                    )
                )
                continue
            prompt = prompts.render(
                self.config.templates,
                name,
                prompt=job.ask.prompt,
                answers=previous,
                round_number=job.round_index + 1,
                rng=job.rng,
            )
            self._send(job, entry, name, prompt)
        if not job.pending:
            self._finish_round(job)

    def _send(self, job: Job, entry: RosterEntry, round_name: str, prompt: str) -> None:
        call_id = new_id()
        job.pending[call_id] = entry.name
        sent = safe_tell(
            entry.ref,
            Complete(
                call_id=call_id,
                job_id=job.job_id,
                round_name=round_name,
                round_index=job.round_index,
                prompt=prompt,
                system=self.config.templates.system,
                deadline=job.deadline,
                reply_to=self.actor_ref,
            ),
        )
        if not sent:
            del job.pending[call_id]
            job.record(
                ModelReply(
                    model=entry.name,
                    status="error",
                    prompt=prompt,
                    error=ErrorInfo(
                        code="actor_crashed", message=f"{entry.name}'s actor is not running"
                    ),
                )
            )

    def _start_synthesis(self, job: Job) -> None:
        answers = job.last_answers()
        prompt = prompts.render(
            self.config.templates,
            "synthesis",
            prompt=job.ask.prompt,
            answers=answers,
            round_number=job.round_index + 1,
            rng=job.rng,
        )
        live = tuple(m for m in job.models if (e := self.roster.get(m)) is not None and e.live)
        if not live:
            self._finish(job, "error", NoModelAvailable("no live model can synthesise"))
            return
        safe_tell(
            self.synthesizer,
            Synthesize(
                job_id=job.job_id,
                prompt=prompt,
                candidates=live,
                preferred=job.synthesizer,
                deadline=job.deadline,
                reply_to=self.actor_ref,
            ),
        )

    def _on_event(self, job: Job, msg: Any) -> None:
        if isinstance(msg, CallFinished):
            if msg.round_index == job.round_index and msg.call_id in job.pending:
                del job.pending[msg.call_id]
                job.record(msg.reply)
                job.emit("reply", job.round_name, msg.reply)
                if not job.pending:
                    self._finish_round(job)
        elif isinstance(msg, SynthesisFinished):
            for reply in (*msg.failed, *([msg.reply] if msg.reply else [])):
                job.record(reply)
                job.emit("reply", "synthesis", reply)
            job.synthesized_by = msg.synthesizer
            self._finish_round(job)
        elif isinstance(msg, TimerFired) and msg.kind == "deadline":
            self._finish(job, "timeout", JobTimeoutError("the job's time ran out"))

    def _finish_round(self, job: Job) -> None:
        result = job.close_round()
        job.emit("round_finished", result.name)
        ok = len(result.ok_replies)
        if ok == 0 and all(r.status == "skipped" for r in result.replies):
            self._finish(job, "error", NoModelAvailable("every model of the job is down"))
        elif ok < self.config.pipeline.min_replies:
            self._finish(
                job,
                "error",
                RoundError(
                    f"round {result.name!r} got {ok} ok replies, fewer than "
                    f"min_replies={self.config.pipeline.min_replies}"
                ),
            )
        elif job.round_index + 1 >= len(job.rounds):
            self._finish(job, "ok", None)
        else:
            job.round_index += 1
            self._start_round(job)

    # --- ending ------------------------------------------------------------------------

    def _cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None:
            return False
        self._finish(job, "cancelled", JobCancelled("cancelled by request"))
        return True

    def _finish(self, job: Job, status: str, error: OrchestratorError | None) -> None:
        self.jobs.pop(job.job_id, None)
        if job.deadline_timer is not None:
            job.deadline_timer.cancel()
        if job.pending or (job.rounds[job.round_index] == "synthesis" and status != "ok"):
            self._cancel_calls(job)
        answer, synthesizer = (None, None) if status != "ok" else self._answer(job)
        result = job.result(
            status=status,
            answer=answer,
            synthesizer=synthesizer,
            elapsed_ms=(self.clock() - job.started) * 1000,
            error=None if error is None else ErrorInfo.of(error),
        )
        if status != "ok":
            logger.info("job {} ended {}: {}", job.job_id, status, error)
        job.future.set(result)
        _deliver(job.ask.reply_to, result)

    def _cancel_calls(self, job: Job) -> None:
        for entry in self.roster.values():
            if entry.ref is not None:
                safe_tell(entry.ref, CancelJob(job_id=job.job_id))
        safe_tell(self.synthesizer, CancelJob(job_id=job.job_id))

    def _answer(self, job: Job) -> tuple[str | None, str | None]:
        """The synthesizer's text; without a synthesis round, the best model's last answer."""
        last = job.completed[-1]
        if last.name == "synthesis":
            winner = next((r for r in reversed(last.replies) if r.ok), None)
            return (winner.text if winner else None), job.synthesized_by
        by_model = {r.model: r for r in last.ok_replies}
        best = self.metrics.rank(by_model)[0]
        return by_model[best].text, None


def _deliver(reply_to: Any, result: JobResult | OrchestratorError) -> None:
    """Hand a job's outcome to ``reply_to``: an ActorRef (told), a pykka Future (set), or a
    callable (called on this thread; it must not block)."""
    if isinstance(reply_to, pykka.ActorRef):
        safe_tell(reply_to, result)
    elif isinstance(reply_to, pykka.Future):
        if isinstance(result, OrchestratorError):
            reply_to.set_exception(exc_info=(type(result), result, None))
        else:
            reply_to.set(result)
    elif callable(reply_to):
        try:
            reply_to(result)
        except Exception:
            logger.exception("a job's reply_to callback failed")


def _deliver_error(reply_to: Any, exc: OrchestratorError) -> None:
    _deliver(reply_to, exc)
