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
from actors.pipelines import DECIDING, STRATEGY_OF, Outcome, Stage, next_after_gate
from actors.prompts import clean_synthesis as clean
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
    CallDelta,
    CallFinished,
    CoreChanged,
    RosterChanged,
    RosterEntry,
    SynthesisDelta,
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
        if isinstance(message, SynthesisDelta):
            job = self.jobs.get(message.job_id)
            if job is not None and job.stage.kind == "synthesis":
                if message.reset:
                    job.emit("reset", "synthesis")
                if message.text:
                    job.emit("delta", "synthesis", text=message.text)
            return None
        if isinstance(message, CallDelta):  # a passthrough job's one call, as it streams
            job = self.jobs.get(message.job_id)
            if job is not None and message.call_id in job.pending:
                if message.attempt != job.streamed_attempt:  # a retry streams from the start
                    if job.streamed:
                        job.emit("reset", job.round_name)
                    job.streamed_attempt = message.attempt
                job.emit("delta", job.round_name, text=message.text)
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
        self.metrics.job_started()
        job.deadline_timer = self.io.tell_later(
            job.deadline - self.clock(), self.actor_ref, TimerFired(kind="deadline", key=job.job_id)
        )
        self._guarded(job, self._advance, job)
        return future

    def _new_job(self, ask: Ask, future: pykka.Future[JobResult]) -> Job:
        if ask.job_id in self.jobs:
            raise InvalidParams(f"job {ask.job_id} is already running")
        return build_job(self.config, ask, future, self.clock())

    # --- stages ------------------------------------------------------------------------

    def _advance(self, job: Job) -> None:
        """Start the job's next stage (see actors.pipelines), or finish the job."""
        stage = job.next_stage()
        if stage is None:
            self._finish(job, "ok", None)
            return
        if not self._within_budget(job, stage):
            return
        job.emit("round_started", stage.round_name)
        start = {
            "synthesis": self._start_synthesis,
            "rank": self._start_ranking,
            "vote": self._run_vote,
            "chain": self._start_chain,
        }.get(stage.kind, self._start_broadcast)
        start(job)

    def _start_broadcast(self, job: Job) -> None:
        """``initial`` or ``meta``: every live model of the stage at once."""
        stage = job.stage
        previous = list(job.answers().values())
        for model in job.stage_models(stage):
            entry = self._entry_or_skip(job, model)
            if entry is None:
                continue
            prompt = prompts.render(
                job.template(stage),
                prompt=job.ask.prompt,
                answers=previous,
                round_number=job.round_index + 1,
                rng=job.rng,
            )
            self._send(job, entry, stage.round_name, prompt)
        job.round_calls = len(job.pending)
        if not job.pending:
            self._finish_round(job)

    def _entry_or_skip(self, job: Job, model: str) -> RosterEntry | None:
        """``model``'s live roster entry, or None with a skipped reply saying why."""
        entry = self.roster.get(model)
        if entry is not None and entry.live:
            return entry
        job.record(
            ModelReply(
                model=model,
                status="skipped",
                error=ErrorInfo(code="no_model_available", message=_why_not(model, entry)),
            )
        )
        return None

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
                system=self._system(job, entry.name),
                deadline=job.deadline,
                reply_to=self.actor_ref,
                temperature=temperature,
                seed=seed,
                max_tokens=job.ask.max_tokens,
                history=job.ask.history,
                stream=job.ask.listener is not None and job.passthrough,
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

    def _system(self, job: Job, model: str) -> str:
        """``model``'s system prompt in the running stage: the stage's role, else the
        model's own, with the request's ``system`` after it."""
        return job.system_for(job.stage.system or job.config.model(model).system)

    def _live(self, job: Job, models: tuple[str, ...] | None = None) -> tuple[str, ...]:
        return tuple(
            m
            for m in (job.models if models is None else models)
            if (e := self.roster.get(m)) is not None and e.live
        )

    # chain: one model at a time, each revising the previous output

    def _start_chain(self, job: Job) -> None:
        job.chain_queue = list(job.stage_models(job.stage))
        decided = job.decided.answer if job.decided is not None else None
        job.chain_last = decided or self._most_agreed(job)
        self._chain_step(job)

    def _chain_step(self, job: Job) -> None:
        """Send the chain's next step (a failed or skipped model passes the previous
        output on), or close the stage when every model has had its turn."""
        stage = job.stage
        while job.chain_queue:
            entry = self._entry_or_skip(job, job.chain_queue.pop(0))
            if entry is None:
                continue
            if job.chain_last is None:  # nothing before it: the first model drafts
                prompt = prompts.render(job.template(stage, "initial"), prompt=job.ask.prompt)
            else:
                prompt = job.template(stage).format(
                    prompt=job.ask.prompt, answer=job.chain_last, round=job.round_index + 1
                )
            self._send(job, entry, stage.round_name, prompt)
            if job.pending:
                return
        self._finish_round(job)

    @staticmethod
    def _most_agreed(job: Job) -> str | None:
        """The answer most models agree with (the first of the largest cluster)."""
        answers = job.answers()
        if not answers:
            return None
        clusters = strategies.agreement_map(answers, None, job.pattern)["clusters"]
        return answers[clusters[0]["models"][0]]

    # vote: no call

    def _run_vote(self, job: Job) -> None:
        answers = job.answers()
        result = strategies.vote(answers, job.pattern, outcome.success_rates(self.metrics, answers))
        job.emit("round_finished", "vote")
        if result is None:
            self._finish(job, "error", RoundError("the vote found no readable answer"))
            return
        self._decide(
            job, Outcome(answer=result.answer, confidence=result.confidence, votes=result.votes)
        )

    # synthesis

    def _start_synthesis(self, job: Job) -> None:
        prompt = prompts.render(
            job.template(job.stage),
            prompt=job.ask.prompt,
            answers=outcome.synthesis_answers(job),
            round_number=job.round_index + 1,
            rng=job.rng,
            numbered=True,
        )
        if job.schema is not None:
            prompt += prompts.schema_instructions(job.schema)
        if job.validate:
            prompt += prompts.validate_instructions(job.validate)
        job.synthesis_prompt = prompt
        if job.streamed:  # an earlier synthesis (a gate's fallback) streamed: void now
            job.emit("reset", "synthesis")
        chair = self._chair(job)
        self._synthesize(job, prompt, self._synthesis_candidates(job, chair), chair)

    @staticmethod
    def _chair(job: Job) -> str | None:
        """Who should write the synthesis: the request's synthesizer, else the stage's
        model, else [pipeline]'s synthesizer (None: the best by recent record)."""
        if job.ask.synthesizer is None and job.stage.models:
            return job.stage.models[0]
        return job.synthesizer

    def _synthesis_candidates(self, job: Job, chair: str | None) -> tuple[str, ...]:
        """The job's live models, and the chair and the stage's models even when they
        gave no answer of their own: a synthesizer is a role, not a participant."""
        extra = (*([chair] if chair else ()), *(job.stage.models or ()))
        live = self._live(job)
        roles = tuple(m for m in dict.fromkeys(extra) if m not in live)
        return (*self._live(job, roles), *live)

    @staticmethod
    def _chair_reason(job: Job) -> str:
        """Why the chair comes first (see ``_chair``)."""
        if job.ask.synthesizer is not None:
            return "the request's synthesizer"
        if job.stage.models:
            return "the pipeline stage's model"
        return "[pipeline] synthesizer"

    def _synthesize(
        self,
        job: Job,
        prompt: str,
        candidates: tuple[str, ...],
        preferred: str | None,
        why: str | None = None,
    ) -> None:
        if not candidates:
            self._finish(job, "error", NoModelAvailable("no live model can synthesise"))
            return
        message = Synthesize(
            job_id=job.job_id,
            prompt=prompt,
            candidates=candidates,
            preferred=preferred,
            preferred_reason=why or self._chair_reason(job),
            deadline=job.deadline,
            reply_to=self.actor_ref,
            system=job.system,
            systems=MappingProxyType({m: self._system(job, m) for m in candidates}),
            max_tokens=job.ask.max_tokens,
            sampling=MappingProxyType({m: job.sampling(m) for m in candidates}),
            deterministic=job.seed is not None,
            history=job.ask.history,
            stream=job.ask.listener is not None,
        )
        if not safe_tell(self.synthesizer, message):
            self.unsent[job.job_id] = message  # the synthesizer is being replaced

    # rank: peer review, nobody ranks their own answer

    def _start_ranking(self, job: Job) -> None:
        answers = list(job.answers().items())
        template = job.template(job.stage)
        for model in self._live(job, job.stage_models(job.stage)):
            order = [(m, text) for m, text in answers if m != model]  # never its own answer
            if len(order) < 2:
                continue  # nothing to rank
            job.rng.shuffle(order)
            prompt, labels = outcome.ranking_prompt(template, job, order)
            job.rank_labels[model] = labels
            self._send(job, self.roster[model], "ranking", prompt)
        job.round_calls = len(job.pending)
        if not job.pending:
            self._finish_round(job)

    def _within_budget(self, job: Job, stage: Stage) -> bool:
        """Start the stage only if its estimated cost keeps the job within max_cost_usd."""
        if job.max_cost is None or stage.kind == "vote":
            return True
        name = stage.round_name
        if stage.kind == "synthesis":
            callers = self._synthesis_candidates(job, self._chair(job))[:1]
        else:
            callers = self._live(job, job.stage_models(stage))
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
                if job.stage.kind == "chain":
                    if msg.reply.ok and msg.reply.text is not None:
                        job.chain_last = prompts.improved_answer(msg.reply.text)
                    self._chain_step(job)
                elif not job.pending:
                    self._finish_round(job)
                else:
                    self._watch_stragglers(job)
        elif isinstance(msg, SynthesisFinished):
            for reply in (*msg.failed, *([msg.reply] if msg.reply else [])):
                job.record(reply)
                job.emit("reply", "synthesis", reply)
            job.synthesized_by = msg.synthesizer
            job.synthesis_reason = msg.reason
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
        if (job.schema is None and not job.validate) or msg.reply.text is None:
            return True
        errors = strategies.answer_errors(clean(msg.reply.text), job.schema, job.validate)
        if not errors or job.schema_attempts >= 2:
            return True
        job.schema_attempts += 1
        job.tried.append(msg.synthesizer)
        if job.streamed:  # the repaired answer streams from the start (a reset first)
            job.emit("reset", "synthesis")
        if job.schema_attempts == 1:
            prompt = prompts.schema_repair(
                job.config.templates, job.synthesis_prompt, msg.reply.text, errors
            )
            why = f"repairing its own answer ({msg.reason})" if msg.reason else None
            self._synthesize(job, prompt, (msg.synthesizer,), msg.synthesizer, why)
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
        kind = job.stage.kind
        if kind == "rank":
            result = job.completed[-1] = outcome.score_rankings(job, result)
        job.emit("round_finished", result.name)
        ok = len(result.ok_replies)
        least = job.config.pipeline.min_replies if kind in ("initial", "meta") else 1
        if ok == 0 and result.replies and all(r.status == "skipped" for r in result.replies):
            why = "; ".join(r.error.message for r in result.replies if r.error is not None)
            self._finish(job, "error", NoModelAvailable(f"no model of the job can answer: {why}"))
        elif ok < least and kind != "rank":
            # (no readable ranking falls back to the most agreed answer: see outcome)
            self._finish(
                job,
                "error",
                RoundError(
                    f"round {result.name!r} got {ok} ok replies, fewer than "
                    + (f"min_replies={least}" if kind in ("initial", "meta") else "one")
                ),
            )
        elif (
            job.round_index == 0
            and kind == "initial"
            and job.early_exit
            and self._agreed(job, result)
        ):
            if job.pipeline is not None:
                job.decided = Outcome(answer=outcome.best_answer(job, self.metrics))
            self._finish(job, "ok", None, early_exit=True)
        elif job.pipeline is not None and kind in DECIDING:
            self._decide(job, self._stage_outcome(job, result))
        else:
            self._advance(job)

    def _stage_outcome(self, job: Job, result: RoundResult) -> Outcome:
        """What a named pipeline's chain, rank or synthesis stage decided."""
        kind = job.stage.kind
        if kind == "chain":
            return Outcome(answer=job.chain_last)
        if kind == "rank":
            ranking = job.ranking or {}
            order = ranking.get("order") or []
            answers = job.answers()
            return Outcome(
                answer=answers.get(order[0]) if order else None,
                confidence=ranking.get("confidence"),
                ranking=ranking or None,
            )
        winner = next((r for r in reversed(result.replies) if r.ok), None)
        return Outcome(
            answer=None if winner is None or winner.text is None else clean(winner.text),
            synthesizer=job.synthesized_by,
            confidence=strategies.agreement(outcome.synthesis_answers(job)),
        )

    def _decide(self, job: Job, decided: Outcome) -> None:
        """A deciding stage's answer; at a gate, below ``min_confidence``, escalate."""
        stage = job.stage
        job.decided = decided
        job.strategy = STRATEGY_OF[stage.kind]
        if stage.min_confidence is not None:
            confidence = decided.confidence
            if confidence is not None and confidence >= stage.min_confidence:
                self._finish(job, "ok", None)  # confident: the stages after it are skipped
                return
            job.escalations.append(
                {
                    "stage": stage.kind,
                    "confidence": confidence,
                    "threshold": stage.min_confidence,
                    "to": stage.fallback,
                }
            )
            logger.info(
                "job {}: {} confidence {} below {:g}: on to {}",
                job.job_id,
                stage.kind,
                confidence,
                stage.min_confidence,
                stage.fallback,
            )
            if stage.fallback == "fail":
                error = RoundError(
                    f"the {stage.kind} stage's confidence {confidence} is below its "
                    f"min_confidence {stage.min_confidence:g}"
                )
                self._finish(job, "error", error, answer=decided.answer)
                return
            job.route = next_after_gate(job.stages, job.route.at - 1, stage.fallback)
        self._advance(job)

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
        if job.pending or (job.stage.kind == "synthesis" and status != "ok"):
            self._cancel_calls(job)
        try:
            result = self._result(job, status, error, answer, early_exit)
        except Exception as exc:  # a bug here must not cost the caller its answer
            logger.exception("job {}: building its result failed", job.job_id)
            failure = ErrorInfo.of(OrchestratorError(f"internal error: {exc!r}"))
            result = JobResult(
                job_id=job.job_id, status="error", strategy=job.strategy, error=failure
            )
        _log_finished(result)
        self.metrics.job_finished(result.status, result.strategy, (r.name for r in result.rounds))
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
        synthesizer, out = None, None
        if status == "ok":
            out = self._outcome(job)
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
            elif job.schema is not None or job.validate:
                errors = strategies.answer_errors(answer or "", job.schema, job.validate)
                if errors:
                    status = "error"
                    error = SchemaError(f"the answer failed its checks: {errors[0]}")
                    extra["schema_errors"] = tuple(errors)
        if job.hedge is not None:
            extra["hedge"] = job.hedge
        if synthesizer is not None and job.synthesis_reason is not None:
            extra["synthesizer_reason"] = job.synthesis_reason
        extra["agreement"] = _agreement(job, out if status == "ok" else None, answer)
        if status == "ok":
            self._record_quality(job, extra)
            self._stream_answer(job, answer or "")
        result = job.result(
            status=status,
            answer=answer,
            synthesizer=synthesizer,
            elapsed_ms=(self.clock() - job.started) * 1000,
            error=None if error is None else ErrorInfo.of(error),
            **extra,
        )
        return result

    @staticmethod
    def _stream_answer(job: Job, answer: str) -> None:
        """The deltas joined are the answer: when what streamed differs (no synthesis
        streamed, a label was taken off, a hedge or repair won), a reset and the answer."""
        if job.ask.listener is None or "".join(job.streamed) == answer:
            return
        if job.streamed:
            job.emit("reset", job.round_name)
        job.emit("delta", job.round_name, text=answer)

    def _record_quality(self, job: Job, extra: dict[str, Any]) -> None:
        """What this job says about each model's answers, for the auto synthesizer: its
        peers' rank score, else 1 if its answer agreed with the final one, 0 if not."""
        answers = job.answers()
        if len(answers) < 2:
            return  # one answer agrees with itself: no evidence
        scores = (extra.get("ranking") or {}).get("scores")
        if scores:
            for model, score in scores.items():
                self.metrics.record_quality(model, score)
            return
        dissenters = set(extra["agreement"]["dissenters"])
        for model in answers:
            self.metrics.record_quality(model, 0.0 if model in dissenters else 1.0)

    def _outcome(self, job: Job) -> Outcome:
        """The job's answer: a named pipeline's last deciding stage, else [pipeline]'s
        strategy over its rounds."""
        if job.pipeline is None:
            return outcome.outcome(job, self.metrics)
        if job.decided is None:  # cannot happen: a named pipeline ends on a deciding stage
            return Outcome(answer=outcome.best_answer(job, self.metrics))
        return job.decided

    def _deliver(self, job: Job, result: JobResult) -> None:
        job.delivered = True
        job.future.set(result)
        deliver(job.ask.reply_to, result)

    def _cancel_calls(self, job: Job) -> None:
        for entry in self.roster.values():
            if entry.ref is not None:
                safe_tell(entry.ref, CancelJob(job_id=job.job_id))
        safe_tell(self.synthesizer, CancelJob(job_id=job.job_id))


def _log_finished(result: JobResult) -> None:
    """One INFO line per finished job (WARNING when it failed), with ``job_id``,
    ``status`` and ``strategy`` as fields of a JSON log record. The line is only written
    out (lazily) when the level lets it through: jobs are the hot path."""
    bound = logger.bind(job_id=result.job_id, status=result.status, strategy=result.strategy)
    lazy = bound.opt(lazy=True)
    (lazy.info if result.ok else lazy.warning)("{}", lambda: _job_summary(result))


def _job_summary(result: JobResult) -> str:
    """What a job cost, how long it took, and which calls failed and why."""
    replies = [r for rnd in result.rounds for r in rnd.replies]
    failed = [r for r in replies if r.status in ("error", "timeout")]
    calls = sum(1 for r in replies if r.status != "skipped")
    text = (
        f"job {result.job_id} {result.status} in {result.elapsed_ms:.0f} ms: {result.strategy}, "
        f"{calls} calls, {result.usage.total} tokens, ${result.cost_usd:.6f}"
    )
    if result.synthesizer:
        text += f", synthesized by {result.synthesizer}"
    if failed:
        text += "; failed: " + "; ".join(
            f"{r.model} {r.error.code if r.error else r.status}" for r in failed
        )
    if result.error is not None:
        text += f"; {result.error.code}: {result.error.message[:300]}"
    return text


def _agreement(job: Job, out: Outcome | None, answer: str | None) -> dict[str, Any]:
    """The agreement map against the final answer; after a vote, compared as the vote
    compared: the extracted answers (the whole ones when no reply held the pattern)."""
    if out is None:
        return strategies.agreement_map(job.answers(), None, job.pattern)
    winner = next((v for v in out.votes or () if v.get("winner")), None)
    if winner is None:
        return strategies.agreement_map(job.answers(), answer, job.pattern)
    pattern = None if winner.get("pattern_matched") is False else job.pattern
    return strategies.agreement_map(job.answers(), answer, pattern, final_key=winner["answer"])


def _why_not(model: str, entry: RosterEntry | None) -> str:
    """Why a round skips ``model``, as its reply says (and the client shows)."""
    if entry is None:
        return f"{model} is not running"
    state = "restarting" if entry.state == "up" else entry.state  # up but crashed: restarting
    return f"{model} is {state}" + (f": {entry.reason}" if entry.reason else "")
