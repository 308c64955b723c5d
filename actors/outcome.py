"""What a job's rounds add up to, per strategy: the answer, its confidence, votes,
ranking, and whether it satisfies the job's schema. Called by the coordinator on its
own thread; pure apart from reading the metrics.

- ``synthesize``: the synthesizer's text (or, without a synthesis round, the best
  model's last answer); confidence = ``strategies.agreement`` of the last answering round.
- ``vote``: plurality of the last answering round (a trailing ``synthesis`` round is not
  run); confidence = the winner's share of ok replies.
- ``rank``: a ``ranking`` round after the last answering round, Borda-combined; the top
  answer, or with a trailing ``synthesis`` round, a synthesis of the top two.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actors import prompts, strategies
from actors.config import Config
from actors.jobs import Job
from actors.metrics import Metrics
from actors.pipelines import Outcome
from actors.providers.base import estimate_tokens
from messages.results import ErrorInfo, ModelReply, RoundResult

TOP_K = 2  # rank + synthesis: the synthesizer sees the best two answers


def best_answer(job: Job, metrics: Metrics) -> str | None:
    """The best-ranked model's answer so far (what a job cut short still returns)."""
    answers = job.answers()
    if not answers:
        return None
    return answers[metrics.rank(answers)[0]]


def success_rates(metrics: Metrics, models: Any) -> dict[str, float]:
    return {m: metrics.stats(m).success_rate for m in models}


def outcome(job: Job, metrics: Metrics) -> Outcome:
    answers = job.answers()
    if job.strategy == "vote":
        result = strategies.vote(answers, job.pattern, success_rates(metrics, answers))
        if result is None:
            return Outcome(answer=None, votes=())
        return Outcome(answer=result.answer, confidence=result.confidence, votes=result.votes)
    last = job.completed[-1]
    if last.name == "synthesis":
        winner = next((r for r in reversed(last.replies) if r.ok), None)
        answer = prompts.clean_synthesis(winner.text) if winner and winner.text else None
        synthesizer = job.synthesized_by
    else:
        answer, synthesizer = None, None
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


# --- rank -------------------------------------------------------------------------------


def ranking_prompt(
    template: str, job: Job, answers: list[tuple[str, str]]
) -> tuple[str, dict[str, str]]:
    """A ranking prompt with the answers in this caller's order, and label -> model."""
    block, labels = strategies.labelled([text for _, text in answers])
    prompt = prompts.ranking_prompt(template, job.ask.prompt, block)
    return prompt, {lab: model for lab, (model, _) in zip(labels, answers, strict=True)}


def score_rankings(job: Job, rnd: RoundResult) -> RoundResult:
    """Parse every ranking reply (an unparseable one becomes that model's error), Borda-
    combine them into ``job.ranking``, and return the round with the errors marked."""
    rankings: dict[str, list[str]] = {}
    replies: list[ModelReply] = []
    for reply in rnd.replies:
        labels = job.rank_labels.get(reply.model, {})
        order = None
        if reply.ok and reply.text is not None:
            order = strategies.parse_ranking(reply.text, list(labels))
        if reply.ok and order is None:
            reply = replace(
                reply,
                status="error",
                error=ErrorInfo(
                    code="bad_ranking", message="no ranking could be read from the reply"
                ),
            )
        if order is not None:
            rankings[reply.model] = [labels[lab] for lab in order]
        replies.append(reply)
    answers = job.answers()
    candidates = list(answers)
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
    points = strategies.borda(rankings, candidates)
    order = sorted(candidates, key=lambda m: points[m], reverse=True)
    job.ranking = {
        "rankings": rankings,
        "scores": points,
        "order": order,
        "confidence": strategies.borda_confidence(points),
    }
    return replace(rnd, replies=tuple(replies))


def synthesis_answers(job: Job) -> list[str]:
    """What the synthesizer sees: the last answers, or with ``rank`` the top two."""
    answers = job.answers()
    if job.ranking:  # after a rank stage
        return [answers[m] for m in job.ranking["order"][:TOP_K] if m in answers]
    return list(answers.values())


def round_cost(config: Config, job: Job, callers: Any) -> float:
    """A round's estimated cost before it starts: each caller's prices applied to the
    prompt context (question, previous answers, system prompt) and its ``max_tokens``."""
    context = job.ask.prompt + "".join(job.answers().values()) + config.templates.system
    total = 0.0
    for name in callers:
        model = config.model(name)
        total += model.cost_usd(estimate_tokens(context), model.max_tokens)
    return total
