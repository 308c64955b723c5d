"""What a job's calls carry, built from the job's state: the ``Complete`` a model actor
gets for one call of a stage, the ``Synthesize`` the synthesizer actor gets, and each
model's system prompt in the running stage. The coordinator sends them and handles what
comes back; a field every call must carry (tools, sampling, history) is added here once."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from actors.jobs import Job
from actors.stages import tools
from messages.commands import Complete, Synthesize, new_id


def system_for(job: Job, model: str) -> str:
    """``model``'s system prompt in the running stage: the stage's role, else the
    model's own, with the request's ``system`` after it."""
    return job.system_for(job.stage.system or job.config.model(model).system)


def complete(
    job: Job, model: str, round_name: str, prompt: str | None, sample: int, reply_to: Any
) -> Complete:
    """One call of the running stage to ``model`` (``sample``: which of the stage's
    samples; ``prompt`` None: the conversation itself is the call)."""
    temperature, seed = job.sampling(model, sample)
    return Complete(
        call_id=new_id(),
        job_id=job.job_id,
        round_name=round_name,
        round_index=job.round_index,
        prompt=prompt,
        system=system_for(job, model),
        deadline=job.deadline,
        reply_to=reply_to,
        temperature=temperature,
        seed=seed,
        max_tokens=job.ask.max_tokens,
        history=job.ask.history,
        stream=job.ask.listener is not None and job.passthrough,
        sampling=job.ask.sampling,  # stop, seed, top_p, penalties, effort
        **tools.offer(job),
    )


def synthesize(
    job: Job,
    prompt: str | None,
    candidates: tuple[str, ...],
    preferred: str | None,
    why: str,
    reply_to: Any,
) -> Synthesize:
    """The synthesis of ``job``: ``preferred`` first, then the other ``candidates``."""
    return Synthesize(
        job_id=job.job_id,
        prompt=prompt,
        candidates=candidates,
        preferred=preferred,
        preferred_reason=why,
        deadline=job.deadline,
        reply_to=reply_to,
        system=job.system,
        systems=MappingProxyType({m: system_for(job, m) for m in candidates}),
        max_tokens=job.ask.max_tokens,
        sampling=MappingProxyType({m: job.sampling(m) for m in candidates}),
        deterministic=job.seed is not None,
        history=job.ask.history,
        stream=job.ask.listener is not None,
        call_sampling=job.ask.sampling,
        **tools.offer(job),
    )
