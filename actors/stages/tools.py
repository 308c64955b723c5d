"""Tool jobs: the panel proposes the next step, votes, and the synthesizer decides a split.

A job is a tool job when it offers ``tools`` (``tool_choice`` not ``none``) or its
conversation ends with a tool result. Its plan (``prepare``) replaces the pipeline's:

- ``propose`` (round ``initial``): every participant whose provider takes tools sees the
  conversation and the tools and answers with calls or text (a model without tool
  support is left out, and ``tools.left_out`` says so). As the round closes its replies
  are tallied (``actors.toolvote``): a majority of calls is the answer; a majority of
  text answers goes on to an ordinary ``synthesis`` of the text answers (no tools
  offered); no majority goes on to ``decide``.
- ``decide`` (round ``synthesis``): the synthesizer, given the same tools, sees every
  proposal (anonymised) and decides: its calls, or its text. A turn that ends with a
  tool result comes straight here, the conversation as it is, unless ``[http]
  tool_results = "ensemble"`` (then the panel proposes and votes as on any turn).

No ``meta`` round runs on a tool job: critique improves prose, and a call is right or
wrong; the vote, and the synthesizer on a split, are what the panel adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors import answerchecks, prompts, toolvote
from actors.prompts import clean_synthesis as clean
from actors.stagekinds import Stage
from actors.stages import synthesis
from actors.stages.base import StageSpec
from actors.strategies import Outcome
from messages.errors import NoModelAvailable, OrchestratorError, RoundError
from messages.results import ErrorInfo

if TYPE_CHECKING:
    from actors.config import Config
    from actors.jobs import Job
    from actors.stagekinds import StageKind
    from actors.stages.base import Run
    from messages.commands import Ask
    from messages.events import SynthesisFinished
    from messages.results import JobResult
    from messages.tools import ToolCall


@dataclass(slots=True, kw_only=True)
class ToolJob:
    """A tool job's state (``Job.tooling``), on the coordinator's thread."""

    choice: toolvote.Choice
    offers: bool  # tools go to the models (there are some, and tool_choice is not none)
    offered: frozenset[str]  # the functions' names
    parallel: bool
    left_out: tuple[dict[str, str], ...] = ()
    offering: bool = False  # the running stage's calls carry the tools
    tally: toolvote.Tally | None = None
    decision: toolvote.Decision | None = None
    calls: tuple[ToolCall, ...] | None = None  # the decided calls, with their ids


def is_tool_job(ask: Ask) -> bool:
    offers = bool(ask.tools) and (ask.tool_choice is None or ask.tool_choice.mode != "none")
    return offers or ask.ends_with_tool


def tool_results(config: Config) -> str:
    """Where a turn ending with a tool result goes: ``synthesizer`` or ``ensemble``."""
    return getattr(getattr(config, "http", None), "tool_results", "synthesizer")


def plan(
    config: Config, ask: Ask, models: tuple[str, ...], stages: tuple[Stage, ...]
) -> tuple[ToolJob | None, tuple[str, ...], tuple[Stage, ...]]:
    """A tool job's state, participants and stages (instead of the pipeline's); a job
    that is not a tool job keeps its ``models`` and ``stages``. NoModelAvailable when
    none of ``models`` takes tools."""
    if not is_tool_job(ask):
        return None, models, stages
    choice = toolvote.choice_of(ask.tool_choice)
    offers = bool(ask.tools) and choice.mode != "none"
    left_out = []
    if offers:
        for name in models:
            model = config.model(name)
            if not supports_tools(model):
                why = f"its provider ({model.provider}) does not take tools"
                left_out.append({"model": name, "reason": why})
        models = tuple(m for m in models if m not in {x["model"] for x in left_out})
        if not models:
            names = ", ".join(x["model"] for x in left_out)
            raise NoModelAvailable(f"no model of this job takes tools ({names}: none does)")
    alone = ask.ends_with_tool and tool_results(config) != "ensemble"
    state = ToolJob(
        choice=choice,
        offers=offers,
        offered=frozenset(t.name for t in ask.tools or ()),
        parallel=ask.parallel_tool_calls is not False,
        left_out=tuple(left_out),
    )
    return state, models, (_stage("decide" if alone else "propose"),)


def supports_tools(model: Any) -> bool:
    """Whether ``model``'s provider takes tools. The providers package is imported on use:
    it is heavy (the SDKs, their loggers), and the configuration (orchestrctl's too) loads
    this module through the stage registry, where no provider is needed."""
    from actors.providers import supports_tools as takes_tools

    return takes_tools(model)


def _stage(kind: StageKind) -> Stage:
    return Stage(kind=kind)


def offer(job: Job) -> dict[str, Any]:
    """The tool fields of the running stage's calls (``Complete``, ``Synthesize``)."""
    state = job.tooling
    if state is None or not state.offering or not state.offers:
        return {}
    return {
        "tools": job.ask.tools or (),
        "tool_choice": job.ask.tool_choice,
        "parallel_tool_calls": job.ask.parallel_tool_calls,
    }


def _state(job: Job) -> ToolJob:
    assert job.tooling is not None, "a tool stage runs on a tool job only"
    return job.tooling


# --- propose ------------------------------------------------------------------------------


def propose(run: Run, job: Job) -> None:
    """Every live participant at once, with the tools (the question as the initial
    template asks it; nothing after a tool result: the conversation is the call)."""
    _state(job).offering = True
    prompt = None
    if not job.ask.ends_with_tool:
        prompt = prompts.render(job.template(job.stage), prompt=job.ask.prompt)
    for model in job.stage_models(job.stage):
        if run.reachable(job, model):
            run.send(job, model, job.stage.round_name, prompt)
    job.round_calls = len(job.pending)
    if not job.pending:
        run.finish_round(job)


def tally(job: Job, rnd: Any) -> Any:
    """The closed round's proposals, counted; what comes next queued (see the module)."""
    state = _state(job)
    state.offering = False
    proposals = [
        toolvote.propose(
            r.model,
            r.tool_calls,
            r.text,
            offered=state.offered if state.offers else (),
            choice=state.choice,
            parallel=state.parallel,
        )
        for r in rnd.ok_replies
    ]
    state.tally = toolvote.tally(proposals)
    job.pool = {p.model: p.text or "" for p in proposals if p.key == toolvote.TEXT}
    decision = toolvote.by_vote(state.tally)
    if decision is None:
        job.route.extra.append(_stage("decide"))
    elif decision.is_call or decision.text is not None:
        settle(job, decision)
    else:  # the panel answers in text: a synthesis of the text answers writes it
        state.decision = decision
        job.strategy = "synthesize"
        job.route.extra.append(_stage("synthesis"))
    return rnd


def settle(job: Job, decision: toolvote.Decision) -> None:
    state = _state(job)
    state.decision = decision
    state.calls = decision.tool_calls()
    job.strategy = "synthesize" if decision.decided_by == "synthesizer" else "vote"


# --- decide -------------------------------------------------------------------------------


def decide(run: Run, job: Job) -> None:
    """The synthesizer decides, with the tools: every proposal in its prompt, or (a
    tool result, to the synthesizer alone) the conversation as it is."""
    state = _state(job)
    state.offering = True
    prompt = None
    if state.tally is not None:
        template = job.template(job.stage)
        prompt = toolvote.decision_prompt(
            job.ask.prompt, state.tally, state.choice, job.rng, template
        )
    preferred = synthesis.chair(job)
    candidates = synthesis.candidates(run, job, preferred)
    if state.offers:
        candidates = tuple(m for m in candidates if supports_tools(job.config.model(m)))
    if preferred not in candidates:
        preferred = None
    run.synthesize(job, prompt, candidates, preferred, synthesis.chair_reason(job))


def decided(run: Run, job: Job, msg: SynthesisFinished) -> None:
    """The synthesizer's decision: its calls or its text (RoundError: not usable)."""
    state = _state(job)
    state.offering = False
    for reply in (*msg.failed, *([msg.reply] if msg.reply else [])):
        job.record(reply)
        job.emit("reply", job.round_name, reply)
    job.synthesized_by = msg.synthesizer
    job.synthesis_reason = msg.reason
    if msg.hedge is not None:
        job.hedge = dict(msg.hedge)
    if msg.reply is not None and msg.synthesizer is not None:
        try:
            decision = toolvote.decide(
                msg.reply.tool_calls,
                msg.reply.text,
                synthesizer=msg.synthesizer,
                result=state.tally or toolvote.tally(()),
                offered=state.offered if state.offers else (),
                choice=state.choice if state.offers else toolvote.Choice("none"),
                parallel=state.parallel,
            )
        except RoundError as exc:
            run.finish(job, "error", exc)
            return
        settle(job, decision)
    run.finish_round(job)


# --- the result ---------------------------------------------------------------------------


def outcome(job: Job) -> Outcome:
    """The decided answer: calls (no text), the decided text, or the synthesis of the
    text answers; its confidence is the share of the panel that proposed it."""
    state = _state(job)
    decision = state.decision
    if decision is None:
        return Outcome(answer=None)
    if decision.is_call:  # (synthesized_by: None unless the synthesizer decided)
        return Outcome(answer=None, confidence=decision.confidence, synthesizer=job.synthesized_by)
    answer = decision.text
    if answer is None:
        winner = next((r for r in reversed(job.completed[-1].replies) if r.ok), None)
        answer = winner.text if winner is not None else None
    return Outcome(
        answer=None if answer is None else clean(answer),
        confidence=decision.confidence,
        synthesizer=job.synthesized_by,
    )


def agreement(job: Job) -> dict[str, Any]:
    """How far the panel agreed with the decision: ``score`` (the share that proposed
    it), ``dissenters`` (who proposed something else), ``clusters`` (the groups)."""
    state = _state(job)
    result, decision = state.tally, state.decision
    if result is None:
        return {"score": None, "dissenters": [], "clusters": []}
    key = None
    if decision is not None:
        key = toolvote.TEXT if decision.calls is None else toolvote.calls_key(decision.calls)
    clusters = [
        {
            "answer": "text" if g.calls is None else toolvote.describe(g.calls)[:200],
            "models": sorted(g.models),
        }
        for g in result.groups
    ]
    voters = [m for g in result.groups for m in g.models]
    agreeing = next((g.models for g in result.groups if g.key == key), ())
    return {
        "score": None if key is None else result.share(key),
        "dissenters": sorted(m for m in voters if m not in agreeing) if key else [],
        "clusters": clusters,
    }


def result(
    job: Job,
    status: str,
    error: OrchestratorError | None,
    *,
    elapsed_ms: float,
    answer: str | None = None,
) -> JobResult:
    """A tool job's result: the decided calls or text, the record of the vote."""
    state = _state(job)
    extra: dict[str, Any] = {}
    synthesizer = None
    if status == "ok":
        out = outcome(job)
        answer, synthesizer = out.answer, out.synthesizer
        extra["confidence"] = out.confidence
        if state.calls is not None:
            extra.update(tool_calls=state.calls, finish_reason="tool_calls")
        else:
            status, error = answerchecks.answer_status(answer, job.schema, job.validate, extra)
    if job.hedge is not None:
        extra["hedge"] = job.hedge
    if synthesizer is not None and job.synthesis_reason is not None:
        extra["synthesizer_reason"] = job.synthesis_reason
    extra["agreement"] = agreement(job)
    extra["tools"] = toolvote.record(
        state.tally, state.decision if status == "ok" else None, state.left_out
    )
    if status == "ok" and answer:
        _stream(job, answer)
    return job.result(
        status=status,
        answer=answer,
        synthesizer=synthesizer,
        elapsed_ms=elapsed_ms,
        error=None if error is None else ErrorInfo.of(error),
        **extra,
    )


def _stream(job: Job, answer: str) -> None:
    """The deltas joined are the answer (a decision's text is not streamed as written:
    it might have been calls)."""
    if job.ask.listener is None or "".join(job.streamed) == answer:
        return
    if job.streamed:
        job.emit("reset", job.round_name)
    job.emit("delta", job.round_name, text=answer)


PROPOSE = StageSpec(
    kind="propose",
    start=propose,
    tally=tally,
    round_name="initial",
    template="initial",
    least=None,
    internal=True,
)
DECIDE = StageSpec(
    kind="decide",
    start=decide,
    synthesized=decided,
    round_name="synthesis",
    template="tools",
    callers=synthesis.callers,
    in_turn=True,
    internal=True,
)
