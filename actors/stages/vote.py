"""``vote``: no call; a plurality over the current answers (with ``answer_pattern``, over
the parts it extracts). Confidence: the winner's share; ties go to the group whose models
have the best recent success rate. With ``weights`` (``"accuracy"`` or ``"confidence"``,
see ``actors.weights``) each answer counts its weight, and the result shows the weights."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from actors import strategies, weights
from actors.stages.base import StageSpec
from messages.errors import RoundError

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.metrics import Metrics
    from actors.stages.base import Run
    from actors.strategies import Outcome


def success_rates(metrics: Metrics, models: Any) -> dict[str, float]:
    return {m: metrics.stats(strategies.model_of(m)).success_rate for m in models}


def weighed(job: Job, metrics: Metrics, answers: dict[str, str]) -> dict[str, Any] | None:
    """A weighted vote stage's weights (None: every answer counts 1)."""
    stage = job.stage
    if stage.kind != "vote" or stage.weights is None:
        return None
    if stage.weights == "confidence":
        table = weights.confidence_weights(answers)
    else:
        table = weights.accuracy_weights(answers, metrics.accuracy, stage.dataset)
    return {"by": stage.weights, "dataset": stage.dataset, "answers": table}


def read(job: Job, metrics: Metrics) -> Outcome | None:
    """The vote over the job's answers (None: no answer could be read)."""
    answers = job.answers()
    weighing = weighed(job, metrics, answers)
    by = None if weighing is None else {k: w["weight"] for k, w in weighing["answers"].items()}
    decided = strategies.vote(answers, job.pattern, success_rates(metrics, answers), by)
    if decided is None or weighing is None:
        return decided
    return dataclasses.replace(decided, weights=weighing)


def start(run: Run, job: Job) -> None:
    """Count now: the stage ends as it starts."""
    decided = read(job, run.metrics)
    job.emit("round_finished", "vote")
    if decided is None:
        run.finish(job, "error", RoundError("the vote found no readable answer"))
        return
    run.decide(job, decided)


SPEC = StageSpec(kind="vote", start=start, read=read, strategy="vote", callers=None, gated=True)
