"""``initial`` and ``meta``: every model of the stage at once.

``initial`` asks the question; ``meta`` shows each model the previous answers, anonymous
and shuffled, and asks for a critique and an improved answer (the part after its
``Improved answer:`` line becomes its answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import prompts, strategies
from actors.stages.base import StageSpec

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.stages.base import Run
    from messages.results import RoundResult


def start(run: Run, job: Job) -> None:
    """One call per live model, each with its own shuffle of the previous answers."""
    stage = job.stage
    previous = list(job.answers().values())
    for model in job.stage_models(stage):
        if not run.reachable(job, model):
            continue
        prompt = prompts.render(
            job.template(stage),
            prompt=job.ask.prompt,
            answers=previous,
            round_number=job.round_index + 1,
            rng=job.rng,
        )
        run.send(job, model, stage.round_name, prompt)
    job.round_calls = len(job.pending)
    if not job.pending:
        run.finish_round(job)


def agreed(job: Job, result: RoundResult) -> bool:
    """Every reply ok and all saying the same (``early_exit``: no more rounds needed)."""
    texts = [r.text or "" for r in result.replies]
    return all(r.ok for r in result.replies) and strategies.all_agree(texts, job.pattern)


def first_answers(pool: dict[str, str], texts: list[tuple[str, str]]) -> dict[str, str]:
    return dict(texts)


def improved_answers(pool: dict[str, str], texts: list[tuple[str, str]]) -> dict[str, str]:
    return {model: prompts.improved_answer(text) for model, text in texts}


INITIAL = StageSpec(
    kind="initial",
    start=start,
    template="initial",
    pool=first_answers,
    least=None,
    opens=True,
    agreed=agreed,
)
META = StageSpec(
    kind="meta", start=start, template="meta", pool=improved_answers, least=None, fallback=True
)
