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

import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pykka
from loguru import logger

from actors import outcome, prompts, strategies
from actors.config import Config
from actors.jobs import Job, build_job, deliver
from actors.metrics import Metrics
from actors.runtime import IOLoop, safe_tell
from messages.commands import (
    Ask,
    CancelJob,
    Complete,
    GetStatus,
    Reconfigure,
    Synthesize,
    new_id,
)
from messages.errors import (
    BudgetExhausted,
    InvalidParams,
    JobCancelled,
    JobTimeoutError,
    NoModelAvailable,
    OrchestratorError,
    RoundError,
    SchemaError,
    ShuttingDown,
)
from messages.events import (
    ActorFailed,
    CallFinished,
    CoreChanged,
    RosterChanged,
    RosterEntry,
    SynthesisFinished,
    TimerFired,
)
from messages.results import ErrorInfo, JobResult, ModelReply, RoundResult


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
            return {"inflight_jobs": len(self.jobs), "jobs_total": self.jobs_total}
        return super().on_receive(message)

    def on_stop(self) -> None:
        for job in list(self.jobs.values()):
            self._finish(job, "error", ShuttingDown("the orchestrator is stopping"))

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # A bug outside the per-job guards: answer every running job rather than let
        # its caller wait for a deadline that no longer has a timer.
        for job in list(self.jobs.values()):
            self._finish(job, "error", OrchestratorError(f"the coordinator crashed: {exc!r}"))
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
                self._finish(job, "error", OrchestratorError(f"internal error: {exc!r}"))

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
        job.deadline_timer = self.io.tell_later(
            job.deadline - self.clock(), self.actor_ref, TimerFired(kind="deadline", key=job.job_id)
        )
        self._guarded(job, self._start_round, job)
        return future

    def _new_job(self, ask: Ask, future: pykka.Future[JobResult]) -> Job:
        if ask.job_id in self.jobs:
            raise InvalidParams(f"job {ask.job_id} is already running")
        return build_job(self.config, ask, future, self.clock())

    # --- rounds ------------------------------------------------------------------------

    def _start_round(self, job: Job) -> None:
        name = job.rounds[job.round_index]
        if not self._within_budget(job, name):
            return
        job.emit("round_started", name)
        if name == "synthesis":
            self._start_synthesis(job)
            return
        if name == "ranking":
            self._start_ranking(job)
            return
        previous = list(job.answers().values())
        for model in job.models:
            entry = self.roster.get(model)
            if entry is None or not entry.live:
                job.record(
                    ModelReply(
                        model=model,
                        status="skipped",
                        error=ErrorInfo(code="no_model_available", message=_why_not(model, entry)),
                    )
                )
                continue
            prompt = prompts.render(
                job.config.templates,
                name,
                prompt=job.ask.prompt,
                answers=previous,
                round_number=job.round_index + 1,
                rng=job.rng,
            )
            self._send(job, entry, name, prompt)
        job.round_calls = len(job.pending)
        if not job.pending:
            self._finish_round(job)

    def _send(self, job: Job, entry: RosterEntry, round_name: str, prompt: str) -> None:
        call_id = new_id()
        temperature, seed = job.sampling(entry.name)
        job.pending[call_id] = entry.name
        sent = safe_tell(
            entry.ref,
            Complete(
                call_id=call_id,
                job_id=job.job_id,
                round_name=round_name,
                round_index=job.round_index,
                prompt=prompt,
                system=job.system_for(self.config.model(entry.name).system),
                deadline=job.deadline,
                reply_to=self.actor_ref,
                temperature=temperature,
                seed=seed,
                max_tokens=job.ask.max_tokens,
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

    def _live(self, job: Job) -> tuple[str, ...]:
        return tuple(m for m in job.models if (e := self.roster.get(m)) is not None and e.live)

    def _start_synthesis(self, job: Job) -> None:
        prompt = prompts.render(
            job.config.templates,
            "synthesis",
            prompt=job.ask.prompt,
            answers=outcome.synthesis_answers(job),
            round_number=job.round_index + 1,
            rng=job.rng,
        )
        if job.schema is not None:
            prompt += prompts.schema_instructions(job.schema)
        if job.config.pipeline.validate:
            prompt += prompts.validate_instructions(job.config.pipeline.validate)
        job.synthesis_prompt = prompt
        self._synthesize(job, prompt, self._synthesis_candidates(job), job.synthesizer)

    def _synthesis_candidates(self, job: Job) -> tuple[str, ...]:
        """The job's live models, and the chosen synthesizer even when it gave no answer
        of its own (a chairman): it is a role, not a participant."""
        chair = job.synthesizer
        live = self._live(job)
        if chair is not None and chair not in live:
            entry = self.roster.get(chair)
            if entry is not None and entry.live:
                return (chair, *live)
        return live

    def _synthesize(
        self, job: Job, prompt: str, candidates: tuple[str, ...], preferred: str | None
    ) -> None:
        if not candidates:
            self._finish(job, "error", NoModelAvailable("no live model can synthesise"))
            return
        message = Synthesize(
            job_id=job.job_id,
            prompt=prompt,
            candidates=candidates,
            preferred=preferred,
            deadline=job.deadline,
            reply_to=self.actor_ref,
            system=job.system,
            systems=MappingProxyType(
                {m: job.system_for(self.config.model(m).system) for m in candidates}
            ),
            max_tokens=job.ask.max_tokens,
            sampling=MappingProxyType({m: job.sampling(m) for m in candidates}),
            deterministic=job.seed is not None,
        )
        if not safe_tell(self.synthesizer, message):
            self.unsent[job.job_id] = message  # the synthesizer is being replaced

    def _start_ranking(self, job: Job) -> None:
        answers = list(job.answers().items())
        for model in self._live(job):
            order = [(m, text) for m, text in answers if m != model]  # never its own answer
            if len(order) < 2:
                continue  # nothing to rank
            job.rng.shuffle(order)
            prompt, labels = outcome.ranking_prompt(job.config.templates, job, order)
            job.rank_labels[model] = labels
            self._send(job, self.roster[model], "ranking", prompt)
        job.round_calls = len(job.pending)
        if not job.pending:
            self._finish_round(job)

    def _within_budget(self, job: Job, name: str) -> bool:
        """Start the round only if its estimated cost keeps the job within max_cost_usd."""
        if job.max_cost is None:
            return True
        synthesis = name == "synthesis"
        callers = self._synthesis_candidates(job)[:1] if synthesis else self._live(job)
        estimate = outcome.round_cost(self.config, job, callers)
        if job.cost_so_far + estimate <= job.max_cost:
            return True
        error = BudgetExhausted(
            f"round {name!r} would cost about ${estimate:.6f} after ${job.cost_so_far:.6f} "
            f"spent, over max_cost_usd ${job.max_cost:.6f}"
        )
        self._finish(job, "error", error, answer=outcome.best_answer(job, self.metrics))
        return False

    def _on_event(self, job: Job, msg: Any) -> None:
        if isinstance(msg, CallFinished):
            if msg.round_index == job.round_index and msg.call_id in job.pending:
                del job.pending[msg.call_id]
                job.record(msg.reply)
                job.emit("reply", job.round_name, msg.reply)
                if not job.pending:
                    self._finish_round(job)
                else:
                    self._watch_stragglers(job)
        elif isinstance(msg, SynthesisFinished):
            for reply in (*msg.failed, *([msg.reply] if msg.reply else [])):
                job.record(reply)
                job.emit("reply", "synthesis", reply)
            job.synthesized_by = msg.synthesizer
            if msg.hedge is not None:
                job.hedge = dict(msg.hedge)
            if msg.reply is not None and msg.synthesizer and not self._repair(job, msg):
                return
            self._finish_round(job)
        elif isinstance(msg, TimerFired) and msg.kind == "deadline":
            self._finish(job, "timeout", JobTimeoutError("the job's time ran out"))
        elif (
            isinstance(msg, TimerFired)
            and msg.kind == "straggler"
            and msg.generation == job.round_index
            and job.pending
        ):
            self._cut_stragglers(job)

    # --- stragglers ----------------------------------------------------------------------

    def _watch_stragglers(self, job: Job) -> None:
        """Once the round's quorum of ok replies is in, give the rest a grace period."""
        need = job.config.pipeline.quorum_of(job.round_calls)
        if job.straggler_timer is not None or need is None:
            return
        if sum(1 for r in job.replies if r.ok) >= need:
            job.straggler_timer = self.io.tell_later(
                job.config.pipeline.straggler_grace_s,
                self.actor_ref,
                TimerFired(kind="straggler", key=job.job_id, generation=job.round_index),
            )

    def _cut_stragglers(self, job: Job) -> None:
        """The grace is over: the calls still out are cancelled and shown as skipped."""
        grace = job.config.pipeline.straggler_grace_s
        error = ErrorInfo(
            code="straggler",
            message=f"cut: no answer {grace:g}s after the round's quorum was in",
        )
        late = list(job.pending.values())
        job.pending.clear()
        for model in late:
            reply = ModelReply(model=model, status="skipped", error=error)
            job.record(reply)
            job.emit("reply", job.round_name, reply)
            entry = self.roster.get(model)
            if entry is not None and entry.ref is not None:
                safe_tell(entry.ref, CancelJob(job_id=job.job_id))
        self._finish_round(job)

    def _repair(self, job: Job, msg: SynthesisFinished) -> bool:
        """With a schema: True if the answer is valid or repairs are used up; else ask for
        a repair (first the same synthesizer, with the errors, then the next best)."""
        assert msg.reply is not None and msg.synthesizer is not None
        if (job.schema is None and not job.config.pipeline.validate) or msg.reply.text is None:
            return True
        errors = strategies.answer_errors(msg.reply.text, job.schema, job.config.pipeline.validate)
        if not errors or job.schema_attempts >= 2:
            return True
        job.schema_attempts += 1
        job.tried.append(msg.synthesizer)
        if job.schema_attempts == 1:
            prompt = prompts.schema_repair(
                job.config.templates, job.synthesis_prompt, msg.reply.text, errors
            )
            self._synthesize(job, prompt, (msg.synthesizer,), msg.synthesizer)
        else:
            others = tuple(m for m in self._live(job) if m not in job.tried)
            if not others:
                return True
            self._synthesize(job, job.synthesis_prompt, others, None)
        return False

    def _finish_round(self, job: Job) -> None:
        if job.straggler_timer is not None:
            job.straggler_timer.cancel()
            job.straggler_timer = None
        result = job.close_round()
        if result.name == "ranking":
            result = job.completed[-1] = outcome.score_rankings(job, result)
        job.emit("round_finished", result.name)
        ok = len(result.ok_replies)
        if ok == 0 and result.replies and all(r.status == "skipped" for r in result.replies):
            why = "; ".join(r.error.message for r in result.replies if r.error is not None)
            self._finish(job, "error", NoModelAvailable(f"no model of the job can answer: {why}"))
        elif ok < job.config.pipeline.min_replies and result.name != "ranking":
            # (no readable ranking falls back to the most agreed answer: see outcome)
            self._finish(
                job,
                "error",
                RoundError(
                    f"round {result.name!r} got {ok} ok replies, fewer than "
                    f"min_replies={job.config.pipeline.min_replies}"
                ),
            )
        elif result.name == "initial" and job.early_exit and self._agreed(job, result):
            self._finish(job, "ok", None, early_exit=True)
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

    def _agreed(self, job: Job, result: RoundResult) -> bool:
        texts = [r.text or "" for r in result.replies]
        return all(r.ok for r in result.replies) and strategies.all_agree(texts, job.pattern)

    def _finish(
        self,
        job: Job,
        status: str,
        error: OrchestratorError | None,
        answer: str | None = None,
        early_exit: bool = False,
    ) -> None:
        self.jobs.pop(job.job_id, None)
        self.unsent.pop(job.job_id, None)
        for timer in (job.deadline_timer, job.straggler_timer):
            if timer is not None:
                timer.cancel()
        if job.pending or (job.rounds[job.round_index] == "synthesis" and status != "ok"):
            self._cancel_calls(job)
        try:
            result = self._result(job, status, error, answer, early_exit)
        except Exception as exc:  # a bug here must not cost the caller its answer
            logger.exception("job {}: building its result failed", job.job_id)
            failure = ErrorInfo.of(OrchestratorError(f"internal error: {exc!r}"))
            result = JobResult(
                job_id=job.job_id, status="error", strategy=job.strategy, error=failure
            )
        if result.status != "ok":
            logger.info("job {} ended {}: {}", job.job_id, result.status, result.error)
        self._deliver(job, result)

    def _result(
        self,
        job: Job,
        status: str,
        error: OrchestratorError | None,
        answer: str | None,
        early_exit: bool,
    ) -> JobResult:
        """The job's result: its outcome by strategy, checks, agreement, partial rounds."""
        extra: dict[str, Any] = {}
        synthesizer = None
        if status == "ok":
            out = outcome.outcome(job, self.metrics)
            answer, synthesizer = out.answer, out.synthesizer
            extra = {
                "confidence": 1.0 if early_exit else out.confidence,
                "votes": out.votes,
                "ranking": out.ranking,
                "early_exit": early_exit,
            }
            if not (answer or "").strip():
                status = "error"
                error = RoundError("no reply gave an answer (every answer was empty)")
            elif job.schema is not None or job.config.pipeline.validate:
                errors = strategies.answer_errors(
                    answer or "", job.schema, job.config.pipeline.validate
                )
                if errors:
                    status = "error"
                    error = SchemaError(f"the answer failed its checks: {errors[0]}")
                    extra["schema_errors"] = tuple(errors)
        if job.hedge is not None:
            extra["hedge"] = job.hedge
        extra["agreement"] = strategies.agreement_map(
            job.answers(), answer if status == "ok" else None, job.pattern
        )
        result = job.result(
            status=status,
            answer=answer,
            synthesizer=synthesizer,
            elapsed_ms=(self.clock() - job.started) * 1000,
            error=None if error is None else ErrorInfo.of(error),
            **extra,
        )
        return result

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
