"""``initial`` and ``meta``: every model of the stage at once.

``initial`` asks the question; ``meta`` shows each model the previous answers, anonymous
and shuffled, and asks for a critique and an improved answer (the part after its
``Improved answer:`` line becomes its answer).

An ``initial`` stage with ``samples = K`` asks each model K times, each call with a seed of
its own; each sample is an answer of its own (``gpt``, ``gpt#2``, ...), so each counts in a
following vote. A ``meta`` stage with ``exclude_outliers`` neither calls nor shows the
panelists the agreement history flags (``actors.outliers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import outliers, prompts, strategies
from actors.stages.base import StageSpec, participants

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.pipelines import Stage
    from actors.stages.base import Run
    from messages.results import RoundResult


def start(run: Run, job: Job) -> None:
    """One call per live model (``samples`` per model), each with its own shuffle of the
    previous answers."""
    stage = job.stage
    left_out = outliers.leave_out(run, job) if stage.exclude_outliers else ()
    previous = [a for k, a in job.answers().items() if strategies.model_of(k) not in left_out]
    for model in job.stage_models(stage):
        if model in left_out or not run.reachable(job, model):
            continue
        for sample in range(stage.samples):
            prompt = prompts.render(
                job.template(stage),
                prompt=job.ask.prompt,
                answers=previous,
                round_number=job.round_index + 1,
                rng=job.rng,
            )
            run.send(job, model, stage.round_name, prompt, sample=sample)
    job.round_calls = len(job.pending)
    if not job.pending:
        run.finish_round(job)


def agreed(job: Job, result: RoundResult) -> bool:
    """Every reply ok and all saying the same (``early_exit``: no more rounds needed)."""
    texts = [r.text or "" for r in result.replies]
    return all(r.ok for r in result.replies) and strategies.all_agree(texts, job.pattern)


def first_answers(pool: dict[str, str], texts: list[tuple[str, str]]) -> dict[str, str]:
    """Each reply an answer: a model's second and later samples as ``model#2``, ..."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for model, text in texts:
        seen[model] = seen.get(model, 0) + 1
        key = model if seen[model] == 1 else f"{model}{strategies.SAMPLE_SEP}{seen[model]}"
        out[key] = text
    return out


def sampled(run: Run, job: Job, stage: Stage) -> tuple[str, ...]:
    """Whom an initial stage calls, once per sample (what a budget check prices)."""
    return participants(run, job, stage) * stage.samples


def improved_answers(pool: dict[str, str], texts: list[tuple[str, str]]) -> dict[str, str]:
    return {model: prompts.improved_answer(text) for model, text in texts}


INITIAL = StageSpec(
    kind="initial",
    start=start,
    template="initial",
    pool=first_answers,
    least=None,
    callers=sampled,
    opens=True,
    agreed=agreed,
)
META = StageSpec(
    kind="meta", start=start, template="meta", pool=improved_answers, least=None, fallback=True
)
