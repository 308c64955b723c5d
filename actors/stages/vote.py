"""``vote``: no call; a plurality over the current answers (with ``answer_pattern``, over
the parts it extracts). Confidence: the winner's share; ties go to the group whose models
have the best recent success rate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors import strategies
from actors.stages.base import StageSpec
from messages.errors import RoundError

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.metrics import Metrics
    from actors.stages.base import Run
    from actors.strategies import Outcome


def success_rates(metrics: Metrics, models: Any) -> dict[str, float]:
    return {m: metrics.stats(m).success_rate for m in models}


def read(job: Job, metrics: Metrics) -> Outcome | None:
    """The vote over the job's answers (None: no answer could be read)."""
    answers = job.answers()
    return strategies.vote(answers, job.pattern, success_rates(metrics, answers))


def start(run: Run, job: Job) -> None:
    """Count now: the stage ends as it starts."""
    decided = read(job, run.metrics)
    job.emit("round_finished", "vote")
    if decided is None:
        run.finish(job, "error", RoundError("the vote found no readable answer"))
        return
    run.decide(job, decided)


SPEC = StageSpec(kind="vote", start=start, read=read, strategy="vote", callers=None, gated=True)
