"""Job: the coordinator's state for one running job (owned by its thread only)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka
import regex
from loguru import logger

from actors import answerchecks, strategies
from actors.config import Config, check_rounds
from actors.pipelines import NamedPipeline, Route, Stage, default_stages, next_after_gate
from actors.providers import provider_class
from actors.runtime import Timer, safe_tell
from actors.stages import STAGES, STRATEGIES, tools
from actors.strategies import Outcome
from messages.codec import has_surrogate
from messages.commands import Ask
from messages.errors import ConfigError, InvalidParams, OrchestratorError
from messages.events import CallDelta, JobEvent, JobEventType, SynthesisDelta
from messages.options import OPTIONS_BY_NAME
from messages.results import ErrorInfo, JobResult, ModelReply, ReplyStatus, RoundResult, Usage


@dataclass(slots=True, kw_only=True)
class Job:
    ask: Ask
    config: Config  # as the job started: a reload (SIGHUP) applies to the next jobs
    future: Any  # pykka.Future[JobResult]
    models: tuple[str, ...]
    stages: tuple[Stage, ...]  # the pipeline's plan
    strategy: str
    synthesizer: str | None  # None: auto
    started: float
    deadline: float
    rng: random.Random
    pipeline: NamedPipeline | None = None  # None: [pipeline], the default
    validate: Mapping[str, Any] | None = None  # checks beyond the schema (the pipeline's)
    stage: Stage = field(default_factory=lambda: Stage(kind="initial"))  # the one running
    route: Route = field(default_factory=Route)  # what runs next
    round_index: int = -1  # counts the stages started (a reply names the one it answers)
    pool: dict[str, str] = field(default_factory=dict)  # model -> its latest answer
    tooling: tools.ToolJob | None = None  # a tool job's state (actors.stages.tools)
    decided: Outcome | None = None  # the last deciding stage's answer (named pipelines)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    step: int | None = None  # the running stage's index in the plan (None: a fallback)
    answered_by: dict[str, Any] | None = None  # the step whose decision is the answer
    excluded: list[dict[str, Any]] = field(default_factory=list)  # outliers left out
    chain_queue: list[str] = field(default_factory=list)  # a chain's models still to go
    chain_last: str | None = None  # a chain's latest output (its next step revises it)
    pending: dict[str, str] = field(default_factory=dict)  # call_id -> model
    replies: list[ModelReply] = field(default_factory=list)  # of the current round
    completed: list[RoundResult] = field(default_factory=list)
    synthesized_by: str | None = None
    synthesis_reason: str | None = None  # why that synthesizer (SynthesisFinished.reason)
    streamed: list[str] = field(default_factory=list)  # the answer's pieces sent so far
    streamed_attempt: int = 0  # a passthrough call's attempt whose pieces went out
    hedge: dict[str, Any] | None = None
    delivered: bool = False  # its result has been handed to its caller
    deadline_timer: Timer | None = None
    straggler_timer: Timer | None = None  # armed once the round's quorum is in
    round_calls: int = 0  # calls sent in the current round
    # strategy options (see actors.outcome)
    pattern: str | None = None
    schema: Any = None
    early_exit: bool = False
    max_cost: float | None = None
    system: str = ""  # the system prompt of every stage
    seed: int | None = None  # deterministic jobs: the base of every call's seed
    seeded: frozenset[str] = frozenset()  # models whose provider honours a seed
    rank_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> label -> model
    ranking: dict[str, Any] | None = None
    synthesis_prompt: str = ""
    schema_attempts: int = 0
    tried: list[str] = field(default_factory=list)  # synthesizers asked so far

    @property
    def cost_so_far(self) -> float:
        done = sum(r.cost_usd for rnd in self.completed for r in rnd.replies)
        return done + sum(r.cost_usd for r in self.replies)

    @property
    def job_id(self) -> str:
        return self.ask.job_id

    @property
    def round_name(self) -> str:
        return self.stage.round_name

    @property
    def passthrough(self) -> bool:
        """One model, one initial round, nothing after it: that model's reply is the
        answer, so its call streams straight out (the daemon as a gateway to one model)."""
        if self.pipeline is not None or len(self.stages) != 1:
            return False
        only = self.stages[0]
        return only.kind == "initial" and len(self.stage_models(only)) == 1

    def stage_models(self, stage: Stage) -> tuple[str, ...]:
        """Who takes part in ``stage``: its own ``models``, else the job's."""
        return self.models if stage.models is None else stage.models

    def template(self, stage: Stage, name: str | None = None) -> str:
        """``stage``'s prompt template: its own, else ``[templates]``' for its kind."""
        if stage.template is not None and name is None:
            return stage.template
        return getattr(self.config.templates, name or STAGES[stage.kind].template or stage.kind)

    def next_stage(self) -> Stage | None:
        """Move on along the route: a queued fallback first, then the plan (None: done)."""
        if self.route.extra:
            self.stage = self.route.extra.pop(0)
            self.step = None
        elif self.route.at < len(self.stages):
            self.stage = self.stages[self.route.at]
            self.step = self.route.at
            self.route.at += 1
        else:
            return None
        self.round_index += 1
        return self.stage

    def system_for(self, role: str | None) -> str:
        """A model's system prompt: its role (``[[models]] system``) instead of the default,
        followed by the request's ``system`` when the request gives one."""
        if role and self.ask.system:
            return f"{role}\n\n{self.ask.system}"
        return role or self.system

    def sampling(self, model: str, sample: int = 0) -> tuple[float | None, int | None]:
        """(temperature, seed) for ``model``'s calls (None: the model's own). A
        deterministic job gives each model its own seed, derived from the job and its
        name, so an ensemble of one provider does not collapse into one answer; where the
        provider does not honour seeds, temperature 0 is the only way to repeat. Sample
        ``k > 0`` of a stage with ``samples`` gets a seed of its own (in any job), and the
        stage's ``temperature`` replaces the request's."""
        temperature = self.ask.temperature
        if self.stage.temperature is not None:
            temperature = self.stage.temperature
        base: Any = self.job_id if self.seed is None else self.seed
        extra = {"sample": sample} if sample else {}
        if self.seed is None and not sample:
            return temperature, None
        seed = strategies.stable_seed(strategies.cache_key(job=base, model=model, **extra))
        if self.seed is None or model in self.seeded:
            return temperature, seed
        return 0.0, seed

    def answering_step(self) -> dict[str, Any]:
        """Where the running stage is in the plan (the result's ``answered_by``)."""
        stage = self.stage
        where: dict[str, Any] = {"step": self.step, "kind": stage.kind}
        if self.step is None:
            where["fallback"] = True
        if STAGES[stage.kind].callers is not None:
            where["models"] = list(self.stage_models(stage))
        else:  # a vote: the models whose answers it counted
            where["models"] = list(dict.fromkeys(map(strategies.model_of, self.pool)))
        return where

    def record(self, reply: ModelReply) -> None:
        self.replies.append(reply)

    def answers(self) -> dict[str, str]:
        """Each model's latest answer, as the next stage sees it: the ok replies of the
        last ``initial`` or ``meta`` round (a meta reply contributes its improved answer,
        not its critique), updated by each ``chain`` step. Ranking and synthesis replies
        are not answers to vote on or show."""
        return dict(self.pool)

    def close_round(self) -> RoundResult:
        """The current round as a result, replies in the job's model order (a chain's
        and a synthesis's in the order they were made), and the answers it leaves."""
        spec = STAGES[self.stage.kind]
        order = {m: i for i, m in enumerate(self.models)}
        replies = sorted(self.replies, key=lambda r: order.get(r.model, len(order)))
        if spec.in_turn:
            replies = list(self.replies)
        result = RoundResult(name=self.round_name, replies=tuple(replies))
        self.completed.append(result)
        self.replies = []
        texts = [(r.model, r.text) for r in result.ok_replies if r.text is not None]
        if spec.pool is not None:
            self.pool = spec.pool(self.pool, texts)
        return result

    def escalate(self, confidence: float | None) -> None:
        """The running stage's gate fired: record it (the result's ``escalations``), log
        it, and route the pipeline on to the gate's fallback (``fail``: the caller ends it)."""
        stage = self.stage
        self.escalations.append(
            {
                "stage": stage.kind,
                "confidence": confidence,
                "threshold": stage.min_confidence,
                "to": stage.fallback,
            }
        )
        logger.info(
            "job {}: {} confidence {} below {:g}: on to {}",
            self.job_id,
            stage.kind,
            confidence,
            stage.min_confidence,
            stage.fallback,
        )
        if stage.fallback != "fail":
            self.route = next_after_gate(self.stages, self.route.at - 1, stage.fallback)

    def relay(self, message: SynthesisDelta | CallDelta) -> None:
        """A piece of the answer as a provider streams it: the synthesizer's, or a
        passthrough job's one call (a retry streams from the start: a reset first)."""
        if isinstance(message, SynthesisDelta):
            if self.stage.kind == "synthesis":
                if message.reset:
                    self.emit("reset", "synthesis")
                if message.text:
                    self.emit("delta", "synthesis", text=message.text)
        elif message.call_id in self.pending:
            if message.attempt != self.streamed_attempt:
                if self.streamed:
                    self.emit("reset", self.round_name)
                self.streamed_attempt = message.attempt
            self.emit("delta", self.round_name, text=message.text)

    def emit(
        self,
        type_: JobEventType,
        round_name: str,
        reply: ModelReply | None = None,
        text: str | None = None,
    ) -> None:
        listener, observers = self.ask.listener, self.ask.observers
        if listener is None and not observers:
            return
        if type_ == "delta" and text:
            self.streamed.append(text)
        elif type_ == "reset":
            self.streamed.clear()
        event = JobEvent(
            type=type_,
            job_id=self.job_id,
            round=round_name,
            round_index=self.round_index,
            reply=reply,
            text=text,
        )
        for listen in (*observers, *((listener,) if listener is not None else ())):
            try:
                listen(event)
            except Exception:  # a listener's bug must not break the job
                logger.exception("job {}: event listener failed", self.job_id)

    def result(
        self,
        *,
        status: Any,
        answer: str | None,
        synthesizer: str | None,
        elapsed_ms: float,
        error: ErrorInfo | None,
        **extra: Any,
    ) -> JobResult:
        rounds = list(self.completed)
        if status != "ok" and (self.pending or self.replies):
            reply_status: ReplyStatus = "timeout" if status == "timeout" else "skipped"
            for model in self.pending.values():
                self.replies.append(ModelReply(model=model, status=reply_status, error=error))
            self.pending.clear()
            rounds.append(self.close_round())
        replies = [r for rnd in rounds for r in rnd.replies]
        usage = sum((r.usage for r in replies if r.usage is not None), Usage())
        return JobResult(
            job_id=self.job_id,
            status=status,
            answer=answer,
            strategy=self.strategy,
            synthesizer=synthesizer,
            elapsed_ms=elapsed_ms,
            cost_usd=round(sum(r.cost_usd for r in replies), 10),
            usage=usage,
            rounds=tuple(rounds),
            error=error,
            pipeline=None if self.pipeline is None else self.pipeline.name,
            escalations=tuple(self.escalations),
            **extra,
        )


def check_options(ask: Ask) -> None:
    """Reject a job's options that cannot work (bad regex, bad schema, bad budget)."""
    if ask.answer_pattern is not None:
        try:
            strategies.compile_pattern(ask.answer_pattern)
        except (regex.error, ValueError, RecursionError) as exc:
            raise InvalidParams(f"answer_pattern is not a valid regex: {exc}") from None
    if ask.schema is not None:
        problem = answerchecks.check_schema(dict(ask.schema))
        if problem:
            raise InvalidParams(problem)
    if ask.max_cost_usd is not None:
        OPTIONS_BY_NAME["max_cost_usd"].validate(ask.max_cost_usd)  # the socket's own rule


def deliver(reply_to: Any, result: JobResult | OrchestratorError) -> None:
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


def build_job(config: Config, ask: Ask, future: Any, now: float) -> Job:
    """A validated ``Job`` for ``ask`` (InvalidParams naming what is wrong)."""
    pipeline = config.pipeline
    models = _models(config, ask)
    named = _named_pipeline(config, ask)
    rounds, strategy, stages = _plan(config, ask, named)
    check_options(ask)
    synthesizer = ask.synthesizer or pipeline.synthesizer
    if synthesizer != "auto" and synthesizer not in config.model_names:
        raise InvalidParams(
            f"unknown synthesizer {synthesizer!r}; known: {list(config.model_names)} or auto"
        )  # a role: it need not be one of the job's participants
    if ask.max_cost_usd is not None:
        callers = {*models, *([synthesizer] if synthesizer != "auto" else [])}
        callers.update(m for stage in stages for m in stage.models or ())
        _check_priced(config, callers)
    timeout = pipeline.job_timeout_s if ask.timeout_s is None else ask.timeout_s
    OPTIONS_BY_NAME["timeout_s"].validate(timeout)
    models = tuple(dict.fromkeys(models))
    tooling, models, stages = tools.plan(config, ask, models, stages)  # a tool job's own
    seed = _seed(ask, models, rounds, strategy) if ask.deterministic else None
    return Job(
        ask=ask,
        config=config,
        future=future,
        models=models,
        stages=stages,
        pipeline=named,
        tooling=tooling,
        validate=named.validate if named is not None else pipeline.validate,
        strategy=strategy,
        synthesizer=None if synthesizer == "auto" else synthesizer,
        started=now,
        deadline=now + timeout,
        rng=random.Random(seed),
        pattern=ask.answer_pattern,
        schema=None if ask.schema is None else dict(ask.schema),
        early_exit=ask.early_exit,
        max_cost=ask.max_cost_usd,
        system=config.templates.system if ask.system is None else ask.system,
        seed=seed,
        seeded=frozenset(  # only deterministic jobs seed their calls
            m.name for m in config.models if provider_class(m.provider).honours_seed
        )
        if seed is not None
        else frozenset(),
    )


def _models(config: Config, ask: Ask) -> tuple[str, ...]:
    """The job's models (a valid prompt first), or InvalidParams naming unknown ones."""
    if not isinstance(ask.prompt, str) or not ask.prompt.strip():
        raise InvalidParams("prompt must be a non-empty string")
    if has_surrogate(ask.prompt):
        raise InvalidParams("prompt holds a lone UTF-16 surrogate (not valid Unicode text)")
    models = ask.models or config.model_names
    unknown = [m for m in models if m not in config.model_names]
    if unknown:
        raise InvalidParams(f"unknown model(s) {unknown}; known: {list(config.model_names)}")
    return tuple(models)


def _plan(
    config: Config, ask: Ask, named: NamedPipeline | None
) -> tuple[tuple[str, ...], str, tuple[Stage, ...]]:
    """(rounds, strategy, stages): a named pipeline's, else the request's or [pipeline]'s."""
    rounds = tuple(ask.rounds or config.pipeline.rounds)
    try:
        check_rounds("rounds", rounds)
    except ConfigError as exc:
        raise InvalidParams(exc.message) from None
    strategy = ask.strategy or config.pipeline.strategy
    if strategy not in STRATEGIES:
        raise InvalidParams(f"unknown strategy {strategy!r}; one of {list(STRATEGIES)}")
    if named is None:
        return rounds, strategy, default_stages(rounds, strategy)
    decider = STAGES[named.stages[-1].kind].strategy  # until a stage decides
    return rounds, decider or strategy, named.stages


def _check_priced(config: Config, callers: set[str]) -> None:
    """A budget can be kept only when every model that may be called has a price."""
    unpriced = [m.name for m in config.models if m.name in callers and not m.priced]
    if unpriced:
        raise InvalidParams(
            f"max_cost_usd cannot be kept: no price is known for {unpriced}; set "
            "price_in_per_mtok and price_out_per_mtok for them"
        )


def _seed(ask: Ask, models: tuple[str, ...], rounds: tuple[str, ...], strategy: str) -> int:
    """A deterministic job's base seed: from everything that can change its result."""
    return strategies.stable_seed(
        strategies.cache_key(
            prompt=ask.prompt,
            models=models,
            rounds=rounds,
            strategy=strategy,
            **({"pipeline": ask.pipeline} if ask.pipeline else {}),
        )
    )


def pipeline_name(config: Config, ask: Ask) -> str | None:
    """The named pipeline a request runs: its own, else ``[pipeline] default`` when it
    names no rounds or strategy either (None: ``[pipeline]``'s rounds and strategy)."""
    if ask.pipeline is not None or ask.rounds is not None or ask.strategy is not None:
        return ask.pipeline
    return config.pipeline.default


def _named_pipeline(config: Config, ask: Ask) -> NamedPipeline | None:
    """The request's named pipeline (None: the default), or InvalidParams saying why not."""
    if ask.pipeline is None:
        default = pipeline_name(config, ask)
        return None if default is None else config.pipelines.get(default)
    named = config.pipelines.get(ask.pipeline)
    if named is None:
        known = list(config.pipelines) or "none are configured ([pipelines.NAME])"
        raise InvalidParams(f"unknown pipeline {ask.pipeline!r}; known: {known}")
    if ask.rounds is not None or ask.strategy is not None:
        raise InvalidParams(
            "a named pipeline sets its own stages: give pipeline, or rounds and strategy"
        )
    return named
