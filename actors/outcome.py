"""The job's answer and its result: one owner for what a job's stages add up to.

A named pipeline's answer is its last deciding stage's ``Outcome`` (see
``actors.stages``). ``[pipeline]``'s answer comes from its strategy over its rounds:

- ``synthesize``: the synthesizer's text (or, without a synthesis round, the best
  model's last answer); confidence = ``strategies.agreement`` of the last answers.
- ``vote``: plurality of the last answers (a trailing ``synthesis`` round is not run);
  confidence = the winner's share of ok replies.
- ``rank``: a ``ranking`` round after the last answering round, Borda-combined; the top
  answer, or with a trailing ``synthesis`` round, a synthesis of the top two.

Then the checks every answer passes (not empty, its schema and ``validate``), the
agreement map, and the quality samples the auto synthesizer learns from. Called on the
coordinator's thread; pure apart from the metrics and the job's event listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from actors import answerchecks, outliers, prompts, strategies, weights
from actors.providers.base import estimate_tokens
from actors.stages import tools, vote
from actors.strategies import Outcome
from messages.errors import OrchestratorError
from messages.results import ErrorInfo

if TYPE_CHECKING:
    from actors.config import Config
    from actors.jobs import Job
    from actors.metrics import Metrics
    from messages.results import JobResult

__all__ = ["Outcome", "best_answer", "log_finished", "outcome", "result", "round_cost"]


def best_answer(job: Job, metrics: Metrics) -> str | None:
    """The best-ranked model's answer so far (what a job cut short still returns)."""
    answers = job.answers()
    if not answers:
        return None
    return answers[metrics.rank(answers)[0]]


def outcome(job: Job, metrics: Metrics) -> Outcome:
    """The job's answer: a named pipeline's last deciding stage, else [pipeline]'s
    strategy over its rounds."""
    if job.pipeline is not None:
        if job.decided is None:  # cannot happen: a named pipeline ends on a deciding stage
            return Outcome(answer=best_answer(job, metrics))
        return job.decided
    if job.strategy == "vote":
        return vote.read(job, metrics) or Outcome(answer=None, votes=())
    answers = job.answers()
    last = job.completed[-1]
    answer = synthesizer = None
    if last.name == "synthesis":
        winner = next((r for r in reversed(last.replies) if r.ok), None)
        answer = prompts.clean_synthesis(winner.text) if winner and winner.text else None
        synthesizer = job.synthesized_by
    if job.strategy == "rank":
        ranking = job.ranking or {}
        top = ranking.get("order", [])
        if answer is None and top:
            answer = answers.get(top[0])
        confidence = ranking.get("confidence")
        return Outcome(
            answer=answer, confidence=confidence, synthesizer=synthesizer, ranking=ranking or None
        )
    if answer is None and answers:
        answer = answers[metrics.rank(answers)[0]]
    return Outcome(
        answer=answer,
        synthesizer=synthesizer,
        confidence=strategies.agreement(list(answers.values())),
    )


def result(
    job: Job,
    metrics: Metrics,
    status: str,
    error: OrchestratorError | None,
    *,
    elapsed_ms: float,
    answer: str | None = None,
    early_exit: bool = False,
) -> JobResult:
    """The job's result: its outcome, checks, agreement, partial rounds."""
    if job.tooling is not None:  # calls or text, and the record of the panel's vote
        return tools.result(job, status, error, elapsed_ms=elapsed_ms, answer=answer)
    extra: dict[str, Any] = {}
    out = None
    if status == "ok":
        out = outcome(job, metrics)
        answer = out.answer
        extra = {
            "confidence": 1.0 if early_exit else out.confidence,
            "votes": out.votes,
            "ranking": out.ranking,
            "early_exit": early_exit,
            "weights": out.weights,
            "answered_by": job.answered_by if job.pipeline is not None else None,
        }
        status, error = answerchecks.answer_status(answer, job.schema, job.validate, extra)
    synthesizer = out.synthesizer if out is not None else None
    if job.hedge is not None:
        extra["hedge"] = job.hedge
    if synthesizer is not None and job.synthesis_reason is not None:
        extra["synthesizer_reason"] = job.synthesis_reason
    extra["agreement"] = agreement(job, out if status == "ok" else None, answer)
    extra["agreement"]["outliers"] = outliers.among(metrics.panel, job.answers())
    if job.excluded:
        extra["excluded_outliers"] = tuple(job.excluded)
    if status == "ok":
        _record_quality(job, metrics, extra)
        metrics.panel.observe(extra["agreement"]["clusters"])
        _stream_answer(job, answer or "")
    built = job.result(
        status=status,
        answer=answer,
        synthesizer=synthesizer,
        elapsed_ms=elapsed_ms,
        error=None if error is None else ErrorInfo.of(error),
        **extra,
    )
    if job.ask.metadata and weights.GRADE_KEY in job.ask.metadata:  # an evaluation's job
        weights.learn(metrics.accuracy, job.ask.metadata, built.to_dict())
    return built


def agreement(job: Job, out: Outcome | None, answer: str | None) -> dict[str, Any]:
    """The agreement map against the final answer; after a vote, compared as the vote
    compared: the extracted answers (the whole ones when no reply held the pattern)."""
    answers = job.answers()
    if out is None:
        return strategies.agreement_map(answers, None, job.pattern)
    if out.winner is None:
        return strategies.agreement_map(answers, answer, job.pattern)
    pattern = None if out.compared_whole else job.pattern
    return strategies.agreement_map(answers, answer, pattern, final_key=out.winner)


def _stream_answer(job: Job, answer: str) -> None:
    """The deltas joined are the answer: when what streamed differs (no synthesis
    streamed, a label was taken off, a hedge or repair won), a reset and the answer."""
    if job.ask.listener is None or "".join(job.streamed) == answer:
        return
    if job.streamed:
        job.emit("reset", job.round_name)
    job.emit("delta", job.round_name, text=answer)


def _record_quality(job: Job, metrics: Metrics, extra: dict[str, Any]) -> None:
    """What this job says about each model's answers, for the auto synthesizer: its
    peers' rank score, else 1 if its answer agreed with the final one, 0 if not."""
    answers = job.answers()
    if len(answers) < 2:
        return  # one answer agrees with itself: no evidence
    scores = (extra.get("ranking") or {}).get("scores")
    if scores:
        for model, score in scores.items():
            metrics.record_quality(model, score)
        return
    dissenters = set(extra["agreement"]["dissenters"])
    for key in answers:  # a model's samples each count
        metrics.record_quality(strategies.model_of(key), 0.0 if key in dissenters else 1.0)


def round_cost(config: Config, job: Job, callers: Any) -> float:
    """A round's estimated cost before it starts: each caller's prices applied to the
    prompt context (question, previous answers, system prompt) and its ``max_tokens``."""
    context = job.ask.prompt + "".join(job.answers().values()) + config.templates.system
    total = 0.0
    for name in callers:
        model = config.model(name)
        total += model.cost_usd(estimate_tokens(context), model.max_tokens)
    return total


def log_finished(result: JobResult) -> None:
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
