"""Events: what has happened, told to whoever needs to know.

Completions, timers and supervision all arrive as events in an actor's mailbox:
no actor ever waits for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from messages.results import ErrorInfo, ModelReply

ModelState = Literal["up", "restarting", "down"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFinished:
    """A model answered (or failed to answer) a ``Complete``."""

    call_id: str
    job_id: str
    round_index: int
    reply: ModelReply


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderReturned:
    """A provider call ended on the I/O loop; told to the model actor that made it.

    Exactly one of ``response`` and ``error`` is set.
    """

    call_id: str
    attempt: int
    response: Any = None  # actors.providers.ProviderResponse
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthesisFinished:
    """The synthesizer is done with a job: ``reply`` is the winner's (or the last failure)."""

    job_id: str
    reply: ModelReply | None
    synthesizer: str | None
    failed: tuple[ModelReply, ...] = ()
    hedge: Mapping[str, Any] | None = None  # primary, backup, after_ms, winner
    reason: str | None = None  # why the synthesizer that answered was chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDelta:
    """A streaming call's next piece of text (model actor -> whoever sent the Complete).
    ``attempt`` counts the call's attempts: a retry streams from the start again."""

    call_id: str
    job_id: str
    attempt: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthesisDelta:
    """The synthesis being written (synthesizer -> coordinator): ``reset`` first when what
    was sent so far is void (a retry, another synthesizer), then ``text``."""

    job_id: str
    text: str = ""
    reset: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitAnswered:
    """The shared limits answered a model actor's question about ``call_id``: 0.0 (taken:
    it may start), the seconds to wait, or None (unreachable: fall back)."""

    call_id: str
    wait: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired:
    """A timer an actor armed has come due. ``kind`` and ``key`` say which."""

    kind: str
    key: str = ""
    generation: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorStarted:
    """A supervised actor finished ``on_start``."""

    name: str
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorFailed:
    """A supervised actor died (an exception in a tell, or in ``on_start``)."""

    name: str
    generation: int
    error: ErrorInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelUnhealthy:
    """A model's calls failed ``circuit_failures`` times in a row with provider errors
    (told to the supervisor on every further failure): take it out of rounds."""

    name: str
    generation: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelHealthy:
    """A model answered (its first success, or the first after ``ModelUnhealthy``): a
    half-open probe succeeded."""

    name: str
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreChanged:
    """A supervised core actor (``synthesizer``) was restarted: here is its new ref."""

    name: str
    ref: Any  # pykka.ActorRef


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterEntry:
    """One supervised model as the rest of the system sees it."""

    name: str
    provider: str
    state: ModelState
    ref: Any  # pykka.ActorRef of the live actor, or None while restarting/down
    restarts: int = 0
    generation: int = 0
    reason: str = ""  # why it is down (or being probed)
    down_since: float | None = None  # Unix time
    next_probe: float | None = None  # Unix time of the next half-open probe
    cooldown_s: float = 0.0  # the current cool-down (doubles after a failed probe)

    @property
    def live(self) -> bool:
        """Up, and its actor still running. A crashed actor is stopped before it answers
        its calls with ``actor_crashed``, so a round started on that answer already sees
        it dead, instead of sending it another call before ``RosterChanged`` arrives."""
        return self.state == "up" and self.ref is not None and self.ref.is_alive()


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterChanged:
    """The supervisor's model table changed (a restart makes a new ref)."""

    roster: tuple[RosterEntry, ...]


JobEventType = Literal["round_started", "reply", "round_finished", "delta", "reset"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent:
    """Progress of a job, for streaming: one per round start, reply and round end."""

    type: JobEventType
    job_id: str
    round: str
    round_index: int
    reply: ModelReply | None = None
    text: str | None = None  # delta: the next piece of the final answer

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "job_id": self.job_id,
            "round": self.round,
            "round_index": self.round_index,
        }
        if self.reply is not None:
            out["reply"] = self.reply.to_dict()
        if self.text is not None:
            out["text"] = self.text
        return out
