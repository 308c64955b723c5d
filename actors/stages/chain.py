"""``chain``: the models in turn, each revising the previous output.

The first drafts an answer when nothing came before; otherwise the chain starts from
the answer decided so far, else the most agreed one. A failed or skipped model passes
the previous output on. Each step's output becomes its model's answer; the stage's
answer is the last output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import prompts, strategies
from actors.stages.base import StageSpec
from actors.strategies import Outcome

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.metrics import Metrics
    from actors.stages.base import Run
    from messages.events import CallFinished


def start(run: Run, job: Job) -> None:
    job.chain_queue = list(job.stage_models(job.stage))
    decided = job.decided.answer if job.decided is not None else None
    job.chain_last = decided or most_agreed(job)
    step(run, job)


def step(run: Run, job: Job) -> None:
    """Send the chain's next step, or close the stage when every model has had its turn."""
    stage = job.stage
    while job.chain_queue:
        model = job.chain_queue.pop(0)
        if not run.reachable(job, model):
            continue
        if job.chain_last is None:  # nothing before it: the first model drafts
            prompt = prompts.render(job.template(stage, "initial"), prompt=job.ask.prompt)
        else:
            prompt = job.template(stage).format(
                prompt=job.ask.prompt, answer=job.chain_last, round=job.round_index + 1
            )
        run.send(job, model, stage.round_name, prompt)
        if job.pending:
            return
    run.finish_round(job)


def replied(run: Run, job: Job, msg: CallFinished) -> None:
    if msg.reply.ok and msg.reply.text is not None:
        job.chain_last = prompts.improved_answer(msg.reply.text)
    step(run, job)


def most_agreed(job: Job) -> str | None:
    """The answer most models agree with (the first of the largest cluster)."""
    answers = job.answers()
    if not answers:
        return None
    clusters = strategies.agreement_map(answers, None, job.pattern)["clusters"]
    return answers[clusters[0]["models"][0]]


def read(job: Job, metrics: Metrics) -> Outcome:
    return Outcome(answer=job.chain_last)


def revised_answers(pool: dict[str, str], texts: list[tuple[str, str]]) -> dict[str, str]:
    return {**pool, **{model: prompts.improved_answer(text) for model, text in texts}}


SPEC = StageSpec(
    kind="chain",
    start=start,
    replied=replied,
    read=read,
    strategy="chain",
    template="chain",
    pool=revised_answers,
    in_turn=True,
    opens=True,
)
