"""What a stage kind is: a ``StageSpec`` (what to send, how to read the outcome, and the
facts the configuration checks), and ``Run``, the coordinator as a kind acts through it.

A kind's functions run on the coordinator's thread, one job at a time: they may read and
change the job, and ask ``Run`` to send calls, synthesise, close the round or finish
the job; they never wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from messages.errors import NoModelAvailable, OrchestratorError, RoundError

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.metrics import Metrics
    from actors.pipelines import Stage
    from actors.strategies import Outcome
    from messages.events import CallFinished, SynthesisFinished
    from messages.results import RoundResult


class Run(Protocol):
    """The coordinator's side of a running stage."""

    metrics: Metrics

    def reachable(self, job: Job, model: str) -> bool:
        """Whether ``model`` is live; if not, a skipped reply in the round says why."""

    def send(
        self, job: Job, model: str, round_name: str, prompt: str | None, sample: int = 0
    ) -> None:
        """One call to ``model`` (its reply comes back to the kind's ``replied``);
        ``sample``: which of the stage's ``samples`` (each has a seed of its own);
        ``prompt`` None: the conversation is the call (it ends with a tool result)."""

    def live(self, job: Job, models: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """``models`` (the job's by default) that are live now."""

    def synthesize(
        self,
        job: Job,
        prompt: str | None,
        candidates: tuple[str, ...],
        preferred: str | None,
        why: str,
    ) -> None:
        """Hand ``prompt`` to the synthesizer actor (it answers ``SynthesisFinished``)."""

    def watch_stragglers(self, job: Job) -> None:
        """Once the round's quorum is in, give the calls still out a grace period."""

    def finish_round(self, job: Job) -> None:
        """Close the running round, check it, then decide or go on."""

    def finish(
        self, job: Job, status: str, error: OrchestratorError | None, answer: str | None = None
    ) -> None:
        """End the job now (its result is built and delivered)."""

    def decide(self, job: Job, decided: Outcome) -> None:
        """A deciding stage's answer: at a gate below its threshold, escalate."""


Start = Callable[["Run", "Job"], None]
Replied = Callable[["Run", "Job", "CallFinished"], None]
Synthesized = Callable[["Run", "Job", "SynthesisFinished"], None]
Read = Callable[["Job", "Metrics"], "Outcome | None"]
Tally = Callable[["Job", "RoundResult"], "RoundResult"]
Pool = Callable[[dict[str, str], list[tuple[str, str]]], dict[str, str]]
Callers = Callable[["Run", "Job", "Stage"], tuple[str, ...]]
Agreed = Callable[["Job", "RoundResult"], bool]


def gathered(run: Run, job: Job, msg: Any) -> None:
    """The default on a reply: the round ends when its last call is in (stragglers aside)."""
    if not job.pending:
        run.finish_round(job)
    else:
        run.watch_stragglers(job)


def round_failure(job: Job, spec: StageSpec, result: RoundResult) -> OrchestratorError | None:
    """Why a closed round ends the job: every model skipped, or too few ok replies."""
    ok = len(result.ok_replies)
    least = job.config.pipeline.min_replies if spec.least is None else spec.least
    if ok == 0 and result.replies and all(r.status == "skipped" for r in result.replies):
        why = "; ".join(r.error.message for r in result.replies if r.error is not None)
        return NoModelAvailable(f"no model of the job can answer: {why}")
    if ok < least:
        need = f"min_replies={least}" if spec.least is None else "one"
        return RoundError(f"round {result.name!r} got {ok} ok replies, fewer than {need}")
    return None


def never(job: Job, result: RoundResult) -> bool:
    return False


def participants(run: Run, job: Job, stage: Stage) -> tuple[str, ...]:
    """Who a stage calls (what a budget check prices): its live models."""
    return run.live(job, job.stage_models(stage))


@dataclass(frozen=True, slots=True, kw_only=True)
class StageSpec:
    """One stage kind. ``start`` and ``read`` are the pair every kind has: what it sends,
    and (a deciding kind) how its outcome is read; the rest has defaults."""

    kind: str
    start: Start  # what to send when the stage starts
    read: Read | None = None  # a deciding kind: its outcome (None: no readable answer)
    strategy: str | None = None  # a deciding kind: the result's ``strategy``
    replied: Replied = gathered  # one of its calls answered (recorded already)
    round_name: str = ""  # its round in the result ("": the kind)
    template: str | None = None  # its prompt's [templates] entry (None: it sends none)
    pool: Pool | None = None  # an answering kind: how its ok replies change the answers
    tally: Tally | None = None  # the round once closed (rank: the rankings read)
    least: int | None = 1  # ok replies it needs (None: [pipeline] min_replies)
    callers: Callers | None = participants  # whom it calls (None: nobody; no budget check)
    in_turn: bool = False  # its replies stay in the order they came (not the models')
    opens: bool = False  # may be a pipeline's first stage (needs no answers before it)
    gated: bool = False  # may carry min_confidence
    fallback: bool = False  # a gate may fall back to it
    agreed: Agreed = never  # as the first round: whether its agreement ends the job early
    synthesized: Synthesized | None = None  # the synthesizer answered (None: synthesis's)
    internal: bool = False  # planned by the engine only (tool jobs): no pipeline names it

    @property
    def name(self) -> str:
        """The round it adds to the result."""
        return self.round_name or self.kind

    @property
    def decides(self) -> bool:
        return self.read is not None
