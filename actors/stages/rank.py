"""``rank``: peer review. Each model ranks the others' anonymous answers, never its own;
the rankings are read leniently and Borda-combined (confidence: the winner's normalised
margin). When nobody wrote a readable ranking, the most agreed answer comes first."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from actors import prompts, strategies
from actors.stages.base import StageSpec
from actors.strategies import Outcome
from messages.results import ErrorInfo, ModelReply

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.metrics import Metrics
    from actors.stages.base import Run
    from messages.results import RoundResult


def start(run: Run, job: Job) -> None:
    """One ranking call per live model, over the others' answers in its own order."""
    answers = list(job.answers().items())
    template = job.template(job.stage)
    for model in run.live(job, job.stage_models(job.stage)):
        order = [(m, text) for m, text in answers if m != model]  # never its own answer
        if len(order) < 2:
            continue  # nothing to rank
        job.rng.shuffle(order)
        prompt, labels = ranking_prompt(template, job, order)
        job.rank_labels[model] = labels
        run.send(job, model, "ranking", prompt)
    job.round_calls = len(job.pending)
    if not job.pending:
        run.finish_round(job)


def ranking_prompt(
    template: str, job: Job, answers: list[tuple[str, str]]
) -> tuple[str, dict[str, str]]:
    """A ranking prompt with the answers in this caller's order, and label -> model."""
    block, labels = strategies.labelled([text for _, text in answers])
    prompt = prompts.ranking_prompt(template, job.ask.prompt, block)
    return prompt, {lab: model for lab, (model, _) in zip(labels, answers, strict=True)}


def _read_ranking(job: Job, reply: ModelReply) -> tuple[ModelReply, list[str] | None]:
    """``reply``'s ranking as models, best first; an unreadable one becomes its error."""
    labels = job.rank_labels.get(reply.model, {})
    order = None
    if reply.ok and reply.text is not None:
        order = strategies.parse_ranking(reply.text, list(labels))
    if reply.ok and order is None:
        error = ErrorInfo(code="bad_ranking", message="no ranking could be read from the reply")
        reply = replace(reply, status="error", error=error)
    return reply, None if order is None else [labels[lab] for lab in order]


def tally(job: Job, rnd: RoundResult) -> RoundResult:
    """Read every ranking, Borda-combine them into ``job.ranking``, and return the round
    with the unreadable ones marked."""
    rankings: dict[str, list[str]] = {}
    replies: list[ModelReply] = []
    for reply in rnd.replies:
        reply, order = _read_ranking(job, reply)
        if order is not None:
            rankings[reply.model] = order
        replies.append(reply)
    answers = job.answers()
    if not rankings:  # nobody wrote a readable ranking: the most agreed answer, not a failure
        clusters = strategies.agreement_map(answers, None, job.pattern)["clusters"]
        order = [m for cluster in clusters for m in cluster["models"]]
        job.ranking = {
            "rankings": {},
            "scores": {},
            "order": order,
            "confidence": None,
            "fallback": "agreement",
        }
        return replace(rnd, replies=tuple(replies))
    points = strategies.borda(rankings, list(answers))
    job.ranking = {
        "rankings": rankings,
        "scores": points,
        "order": sorted(answers, key=lambda m: points[m], reverse=True),
        "confidence": strategies.borda_confidence(points),
    }
    return replace(rnd, replies=tuple(replies))


def read(job: Job, metrics: Metrics) -> Outcome:
    """The top-ranked answer."""
    ranking = job.ranking or {}
    order = ranking.get("order") or []
    return Outcome(
        answer=job.answers().get(order[0]) if order else None,
        confidence=ranking.get("confidence"),
        ranking=ranking or None,
    )


SPEC = StageSpec(
    kind="rank",
    start=start,
    read=read,
    strategy="rank",
    round_name="ranking",
    template="ranking",
    tally=tally,
    least=0,  # no readable ranking falls back to the most agreed answer
    gated=True,
    fallback=True,
)
