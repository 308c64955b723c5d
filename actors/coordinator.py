"""CoordinatorActor: runs jobs' stages; many jobs at once, none waited on.

It owns the actor's side of a job: its mailbox, its timers (one deadline per job, a
straggler grace per round), the roster of live models, sending calls, cancelling,
finishing and delivering. What each stage kind sends and how its outcome is read lives
in ``actors.stages`` (the coordinator is the ``Run`` those functions act through), and
the job's answer and result in ``actors.outcome``.

For each round it sends one ``Complete`` per live model (``reply_to`` = itself) and
gathers the ``CallFinished`` replies as they arrive. Nothing waits inside its mailbox,
so a thousand jobs in flight cost a thousand small state objects, not threads. A
synthesis is handed to the SynthesizerActor, which answers ``SynthesisFinished``.

A round with fewer than ``min_replies`` ok replies ends the job with its partial
result (``round_failed``); a failed or timed-out model is marked in its reply and
the job goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from actors import calls, outcome, stragglers
from actors.cascades import Escalations
from actors.config import Config
from actors.jobs import Job, build_job, deliver
from actors.metrics import Metrics
from actors.pipelines import Stage
from actors.runtime import IOLoop, safe_tell
from actors.stages import STAGES, synthesis
from actors.stages.base import round_failure
from actors.strategies import Outcome
from messages.commands import (
    Ask,
    CancelJob,
    GetStatus,
    Reconfigure,
    Synthesize,
)
from messages.errors import (
    BudgetExhausted,
    InvalidParams,
    JobCancelled,
    JobTimeoutError,
    NoModelAvailable,
    OrchestratorError,
    RoundError,
    ShuttingDown,
)
from messages.events import (
    ActorFailed,
    CallDelta,
    CallFinished,
    CoreChanged,
    RosterChanged,
    RosterEntry,
    SynthesisDelta,
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
        supervisor: Any = None,
        generation: int = 1,
    ) -> None:
        super().__init__()
        self.config = config
        self.io = io
        self.metrics = metrics
        self.synthesizer = synthesizer
        self.supervisor = supervisor
        self.generation = generation
        self.clock = clock
        self.roster: dict[str, RosterEntry] = {e.name: e for e in roster}
        self.jobs: dict[str, Job] = {}
        self.jobs_total = 0
        self.unsent: dict[str, Synthesize] = {}  # job_id -> waiting for a new synthesizer
        self.escalations = Escalations()  # per pipeline, since this coordinator started

    # --- messages ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ask):
            return self._accept(message)
        if isinstance(message, SynthesisDelta | CallDelta):
            job = self.jobs.get(message.job_id)
            if job is not None:
                job.relay(message)
            return None
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
        if isinstance(message, Reconfigure):
            self.config = message.config  # the next jobs; running ones keep theirs
            return None
        if isinstance(message, CoreChanged):
            if message.name == "synthesizer":
                self.synthesizer = message.ref
                unsent, self.unsent = self.unsent, {}
                for job_id, synthesize in unsent.items():
                    if job_id in self.jobs:
                        safe_tell(self.synthesizer, synthesize)
            return None
        if isinstance(message, CancelJob):
            return self._cancel(message.job_id)
        if isinstance(message, GetStatus):
            escalations = self.escalations.status()
            return {"inflight_jobs": len(self.jobs), "jobs_total": self.jobs_total} | escalations
        return super().on_receive(message)

    def on_stop(self) -> None:
        for job in list(self.jobs.values()):
            self.finish(job, "error", ShuttingDown("the orchestrator is stopping"))

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # A bug outside the per-job guards: answer every running job rather than let
        # its caller wait for a deadline that no longer has a timer.
        for job in list(self.jobs.values()):
            self.finish(job, "error", OrchestratorError(f"the coordinator crashed: {exc!r}"))
        if self.supervisor is not None:  # a new coordinator takes over
            error = ErrorInfo(code="internal_error", message=repr(exc))
            safe_tell(
                self.supervisor,
                ActorFailed(name="coordinator", generation=self.generation, error=error),
            )

    def _guarded(self, job: Job, fn: Callable[..., None], *args: Any) -> None:
        """A bug while handling one job fails that job, not the actor and its other jobs."""
        try:
            fn(*args)
        except Exception as exc:
            logger.exception("job {}: internal error", job.job_id)
            if job.job_id in self.jobs:
                self.finish(job, "error", OrchestratorError(f"internal error: {exc!r}"))

    # --- accepting ---------------------------------------------------------------------

    def _accept(self, ask: Ask) -> pykka.Future[JobResult]:
        future: pykka.Future[JobResult] = pykka.ThreadingFuture()
        try:
            job = self._new_job(ask, future)
        except Exception as exc:  # a job that cannot start fails alone, never the actor
            if not isinstance(exc, OrchestratorError):
                logger.exception("job {}: could not start", ask.job_id)
                exc = OrchestratorError(f"internal error starting the job: {exc!r}")
            future.set_exception(exc_info=(type(exc), exc, None))
            deliver(ask.reply_to, exc)
            return future
        self.jobs[job.job_id] = job
        self.jobs_total += 1
        self.metrics.job_started()
        job.deadline_timer = self.io.tell_later(
            job.deadline - self.clock(), self.actor_ref, TimerFired(kind="deadline", key=job.job_id)
        )
        self._guarded(job, self.advance, job)
        return future

    def _new_job(self, ask: Ask, future: pykka.Future[JobResult]) -> Job:
        if ask.job_id in self.jobs:
            raise InvalidParams(f"job {ask.job_id} is already running")
        return build_job(self.config, ask, future, self.clock())

    # --- stages (what each kind sends and reads: actors.stages) --------------------------

    def advance(self, job: Job) -> None:
        """Start the job's next stage (see actors.pipelines), or finish the job."""
        stage = job.next_stage()
        if stage is None:
            self.finish(job, "ok", None)
            return
        if not self._within_budget(job, stage):
            return
        job.emit("round_started", stage.round_name)
        STAGES[stage.kind].start(self, job)

    def reachable(self, job: Job, model: str) -> bool:
        """Whether ``model`` is live; if not, a skipped reply says why."""
        entry = self.roster.get(model)
        if entry is not None and entry.live:
            return True
        error = ErrorInfo(code="no_model_available", message=_why_not(model, entry))
        job.record(ModelReply(model=model, status="skipped", error=error))
        return False

    def send(
        self, job: Job, model: str, round_name: str, prompt: str | None, sample: int = 0
    ) -> None:
        """One ``Complete`` to ``model``'s actor (a live one: see ``reachable``); ``sample``
        numbers a model's repeated calls in a stage with ``samples`` (each its own seed);
        a tool job's stage adds the tools (``tools.offer``)."""
        call = calls.complete(job, model, round_name, prompt, sample, self.actor_ref)
        job.pending[call.call_id] = model
        sent = safe_tell(self.roster[model].ref, call)
        if not sent:
            del job.pending[call.call_id]
            error = ErrorInfo(code="actor_crashed", message=f"{model}'s actor is not running")
            job.record(ModelReply(model=model, status="error", prompt=prompt, error=error))

    def live(self, job: Job, models: tuple[str, ...] | None = None) -> tuple[str, ...]:
        return tuple(
            m
            for m in (job.models if models is None else models)
            if (e := self.roster.get(m)) is not None and e.live
        )

    def synthesize(
        self,
        job: Job,
        prompt: str | None,
        candidates: tuple[str, ...],
        preferred: str | None,
        why: str,
    ) -> None:
        """Hand a synthesis to the SynthesizerActor (kept if it is being replaced)."""
        if not candidates:
            self.finish(job, "error", NoModelAvailable("no live model can synthesise"))
            return
        message = calls.synthesize(job, prompt, candidates, preferred, why, self.actor_ref)
        if not safe_tell(self.synthesizer, message):
            self.unsent[job.job_id] = message  # the synthesizer is being replaced

    def _within_budget(self, job: Job, stage: Stage) -> bool:
        """Start the stage only if its estimated cost keeps the job within max_cost_usd."""
        callers = STAGES[stage.kind].callers
        if job.max_cost is None or callers is None:
            return True
        estimate = outcome.round_cost(self.config, job, callers(self, job, stage))
        if job.cost_so_far + estimate <= job.max_cost:
            return True
        error = BudgetExhausted(
            f"round {stage.round_name!r} would cost about ${estimate:.6f} after "
            f"${job.cost_so_far:.6f} spent, over max_cost_usd ${job.max_cost:.6f}"
        )
        self.finish(job, "error", error, answer=outcome.best_answer(job, self.metrics))
        return False

    def _on_event(self, job: Job, msg: Any) -> None:
        if isinstance(msg, CallFinished):
            if msg.round_index == job.round_index and msg.call_id in job.pending:
                del job.pending[msg.call_id]
                job.record(msg.reply)
                job.emit("reply", job.round_name, msg.reply)
                STAGES[job.stage.kind].replied(self, job, msg)
        elif isinstance(msg, SynthesisFinished):
            (STAGES[job.stage.kind].synthesized or synthesis.finished)(self, job, msg)
        elif isinstance(msg, TimerFired) and msg.kind == "deadline":
            self.finish(job, "timeout", JobTimeoutError("the job's time ran out"))
        elif (
            isinstance(msg, TimerFired)
            and msg.kind == "straggler"
            and msg.generation == job.round_index
            and job.pending
        ):
            self._cut_stragglers(job)

    # --- stragglers ----------------------------------------------------------------------

    def watch_stragglers(self, job: Job) -> None:
        """Once the round's quorum of ok replies is in, give the rest a grace period."""
        stragglers.watch(job, self.io, self.actor_ref)

    def _cut_stragglers(self, job: Job) -> None:
        """The grace is over: the calls still out are cancelled and shown as skipped."""
        for model in stragglers.cut(job):
            entry = self.roster.get(model)
            if entry is not None and entry.ref is not None:
                safe_tell(entry.ref, CancelJob(job_id=job.job_id))
        self.finish_round(job)

    # --- rounds end ------------------------------------------------------------------------

    def finish_round(self, job: Job) -> None:
        """Close the round (a kind may read it first), then fail, exit early, decide, or
        go on to the next stage."""
        if job.straggler_timer is not None:
            job.straggler_timer.cancel()
            job.straggler_timer = None
        spec = STAGES[job.stage.kind]
        result = job.close_round()
        if spec.tally is not None:
            result = job.completed[-1] = spec.tally(job, result)
        job.emit("round_finished", result.name)
        failure = round_failure(job, spec, result)
        if failure is not None:
            self.finish(job, "error", failure)
        elif job.round_index == 0 and job.early_exit and spec.agreed(job, result):
            if job.pipeline is not None:
                job.decided = Outcome(answer=outcome.best_answer(job, self.metrics))
            self.finish(job, "ok", None, early_exit=True)
        elif job.pipeline is not None and spec.read is not None:
            decided = spec.read(job, self.metrics)
            if decided is None:
                self.finish(job, "error", RoundError(f"the {spec.kind} stage decided nothing"))
            else:
                self.decide(job, decided)
        else:
            self.advance(job)

    def decide(self, job: Job, decided: Outcome) -> None:
        """A deciding stage's answer; at a gate, below ``min_confidence``, escalate."""
        stage = job.stage
        job.decided = decided
        job.answered_by = job.answering_step()
        job.strategy = STAGES[stage.kind].strategy or job.strategy
        if stage.min_confidence is not None:
            confidence = decided.confidence
            if confidence is not None and confidence >= stage.min_confidence:
                self.finish(job, "ok", None)  # confident: the stages after it are skipped
                return
            job.escalate(confidence)
            if stage.fallback == "fail":
                error = RoundError(
                    f"the {stage.kind} stage's confidence {confidence} is below its "
                    f"min_confidence {stage.min_confidence:g}"
                )
                self.finish(job, "error", error, answer=decided.answer)
                return
        self.advance(job)

    # --- ending ------------------------------------------------------------------------

    def _cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None:
            return False
        self.finish(job, "cancelled", JobCancelled("cancelled by request"))
        return True

    def finish(
        self,
        job: Job,
        status: str,
        error: OrchestratorError | None,
        answer: str | None = None,
        early_exit: bool = False,
    ) -> None:
        """End the job: stop its timers and calls, build its result, deliver it."""
        self.jobs.pop(job.job_id, None)
        self.unsent.pop(job.job_id, None)
        for timer in (job.deadline_timer, job.straggler_timer):
            if timer is not None:
                timer.cancel()
        if job.pending or (job.round_name == "synthesis" and status != "ok"):
            self._cancel_calls(job)
        elapsed_ms = (self.clock() - job.started) * 1000
        try:
            result = outcome.result(
                job,
                self.metrics,
                status,
                error,
                elapsed_ms=elapsed_ms,
                answer=answer,
                early_exit=early_exit,
            )
        except Exception as exc:  # a bug here must not cost the caller its answer
            logger.exception("job {}: building its result failed", job.job_id)
            failure = ErrorInfo.of(OrchestratorError(f"internal error: {exc!r}"))
            result = JobResult(
                job_id=job.job_id, status="error", strategy=job.strategy, error=failure
            )
        outcome.log_finished(result)
        self.escalations.finished(self.metrics, result, elapsed_ms / 1000)
        self._deliver(job, result)

    def _deliver(self, job: Job, result: JobResult) -> None:
        job.delivered = True
        job.future.set(result)
        deliver(job.ask.reply_to, result)

    def _cancel_calls(self, job: Job) -> None:
        for entry in self.roster.values():
            if entry.ref is not None:
                safe_tell(entry.ref, CancelJob(job_id=job.job_id))
        safe_tell(self.synthesizer, CancelJob(job_id=job.job_id))


def _why_not(model: str, entry: RosterEntry | None) -> str:
    """Why a round skips ``model``, as its reply says (and the client shows)."""
    if entry is None:
        return f"{model} is not running"
    state = "restarting" if entry.state == "up" else entry.state  # up but crashed: restarting
    return f"{model} is {state}" + (f": {entry.reason}" if entry.reason else "")
