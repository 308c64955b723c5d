"""``synthesis``: one model writes the final answer from the current answers (the top two
after a ``rank``), through the SynthesizerActor, which falls back and hedges. It may be
a model outside the participants (a chairman). With a schema or a pipeline's
``validate``, a failing answer is repaired: first by the same synthesizer, shown the
errors, then by the next best model. Confidence: the agreement of the answers it combined.
With ``exclude_outliers``, the panelists the agreement history flags (``actors.outliers``)
are neither shown nor asked to synthesise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import answerchecks, outliers, prompts, strategies
from actors.prompts import clean_synthesis as clean
from actors.stages.base import StageSpec
from actors.strategies import Outcome

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.metrics import Metrics
    from actors.pipelines import Stage
    from actors.stages.base import Run
    from messages.events import SynthesisFinished

TOP_K = 2  # rank + synthesis: the synthesizer sees the best two answers
REPAIRS = 2  # a failing answer is repaired at most this often


def answers_shown(job: Job) -> list[str]:
    """What the synthesizer sees: the last answers, or after a ``rank`` the top two
    (never a left-out outlier's)."""
    answers = job.answers()
    gone = {m for e in job.excluded if e["stage"] == "synthesis" for m in e["models"]}
    answers = {k: a for k, a in answers.items() if strategies.model_of(k) not in gone}
    if job.ranking:
        return [answers[m] for m in job.ranking["order"][:TOP_K] if m in answers]
    return list(answers.values())


def start(run: Run, job: Job) -> None:
    left_out = outliers.leave_out(run, job) if job.stage.exclude_outliers else ()
    prompt = prompts.render(
        job.template(job.stage),
        prompt=job.ask.prompt,
        answers=answers_shown(job),
        round_number=job.round_index + 1,
        rng=job.rng,
        numbered=True,
    )
    if job.schema is not None:
        prompt += prompts.schema_instructions(job.schema)
    if job.validate:
        prompt += prompts.validate_instructions(job.validate)
    job.synthesis_prompt = prompt
    if job.streamed:  # an earlier synthesis (a gate's fallback) streamed: void now
        job.emit("reset", "synthesis")
    preferred = chair(job)
    chosen = tuple(m for m in candidates(run, job, preferred) if m not in left_out)
    preferred = None if preferred in left_out else preferred
    run.synthesize(job, prompt, chosen, preferred, chair_reason(job))


def chair(job: Job) -> str | None:
    """Who should write the synthesis: the request's synthesizer, else the stage's
    model, else [pipeline]'s synthesizer (None: the best by recent record)."""
    if job.ask.synthesizer is None and job.stage.models:
        return job.stage.models[0]
    return job.synthesizer


def chair_reason(job: Job) -> str:
    """Why the chair comes first (see ``chair``)."""
    if job.ask.synthesizer is not None:
        return "the request's synthesizer"
    if job.stage.models:
        return "the pipeline stage's model"
    return "[pipeline] synthesizer"


def candidates(run: Run, job: Job, preferred: str | None) -> tuple[str, ...]:
    """The job's live models, and the chair and the stage's models even when they gave
    no answer of their own: a synthesizer is a role, not a participant."""
    extra = (*([preferred] if preferred else ()), *(job.stage.models or ()))
    live = run.live(job)
    roles = tuple(m for m in dict.fromkeys(extra) if m not in live)
    return (*run.live(job, roles), *live)


def callers(run: Run, job: Job, stage: Stage) -> tuple[str, ...]:
    """What a budget check prices: the first candidate's one call."""
    return candidates(run, job, chair(job))[:1]


def finished(run: Run, job: Job, msg: SynthesisFinished) -> None:
    """The synthesizer actor's answer (or none): recorded, checked, maybe repaired."""
    for reply in (*msg.failed, *([msg.reply] if msg.reply else [])):
        job.record(reply)
        job.emit("reply", "synthesis", reply)
    job.synthesized_by = msg.synthesizer
    job.synthesis_reason = msg.reason
    if msg.hedge is not None:
        job.hedge = dict(msg.hedge)
    if msg.reply is not None and msg.synthesizer and not _valid_or_done(run, job, msg):
        return
    run.finish_round(job)


def _valid_or_done(run: Run, job: Job, msg: SynthesisFinished) -> bool:
    """True if the answer passes its checks or repairs are used up; else ask for a
    repair (first the same synthesizer, with the errors, then the next best)."""
    assert msg.reply is not None and msg.synthesizer is not None
    if (job.schema is None and not job.validate) or msg.reply.text is None:
        return True
    errors = answerchecks.answer_errors(clean(msg.reply.text), job.schema, job.validate)
    if not errors or job.schema_attempts >= REPAIRS:
        return True
    job.schema_attempts += 1
    job.tried.append(msg.synthesizer)
    if job.streamed:  # the repaired answer streams from the start (a reset first)
        job.emit("reset", "synthesis")
    if job.schema_attempts == 1:
        prompt = prompts.schema_repair(
            job.config.templates, job.synthesis_prompt, msg.reply.text, errors
        )
        why = f"repairing its own answer ({msg.reason})" if msg.reason else chair_reason(job)
        run.synthesize(job, prompt, (msg.synthesizer,), msg.synthesizer, why)
        return False
    others = tuple(m for m in run.live(job) if m not in job.tried)
    if not others:
        return True
    run.synthesize(job, job.synthesis_prompt, others, None, chair_reason(job))
    return False


def read(job: Job, metrics: Metrics) -> Outcome:
    """The synthesizer's answer, without a copied label or preamble."""
    winner = next((r for r in reversed(job.completed[-1].replies) if r.ok), None)
    return Outcome(
        answer=None if winner is None or winner.text is None else clean(winner.text),
        synthesizer=job.synthesized_by,
        confidence=strategies.agreement(answers_shown(job)),
    )


SPEC = StageSpec(
    kind="synthesis",
    start=start,
    read=read,
    strategy="synthesize",
    template="synthesis",
    callers=callers,
    in_turn=True,
    gated=True,
    fallback=True,
)
