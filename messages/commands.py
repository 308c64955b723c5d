"""Commands: what one actor (or a host program) tells another to do.

Immutable values; collections are tuples. Every job and every call carries an
id so that log lines correlate.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from messages.conversation import Message, ends_with_tool, split
from messages.options import OPTIONS_BY_NAME, check_together
from messages.tools import ToolChoice, ToolSpec

if TYPE_CHECKING:
    from messages.events import JobEvent


_PREFIX = uuid.uuid4().hex[:8]  # random per process: ids stay unique across restarts
_COUNTER = itertools.count(1)


def new_id() -> str:
    """A short unique id for jobs and calls: a per-process random prefix and a counter
    (no system call per id: ids are made on the hot path)."""
    return f"{_PREFIX}{next(_COUNTER):08x}"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """The sampling params of a job, passed to every provider that takes them (each
    adapter documents which it takes). ``seed`` is the caller's: a call's own
    ``Complete.seed`` (deterministic mode's) wins over it, and it over the model's."""

    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning_effort: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The params that are set, by their OpenAI names."""
        out: dict[str, Any] = {"stop": list(self.stop)} if self.stop else {}
        for name in ("seed", "top_p", "presence_penalty", "frequency_penalty", "reasoning_effort"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


# Ask fields given as plain JSON values (embedding, tests) and made values by their option
_CONVERTED = ("messages", "tools", "tool_choice", "stop")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """Run one job: the prompt through the pipeline's rounds.

    Send it to the coordinator. ``reply_to`` is where the ``JobResult`` goes: a
    ``pykka.Future`` (set), an ``ActorRef`` (told), a callable (called from the
    coordinator's thread; it must not block), or None. A job that cannot start
    (invalid params) delivers the ``OrchestratorError`` there instead. ``coordinator.ask(Ask(...))``
    answers at once with the job's ``pykka.Future`` of ``JobResult``, so asking
    never waits for the job itself. ``listener`` (optional) is called with each
    ``JobEvent`` from the coordinator's thread; it must not block.
    """

    prompt: str  # with ``messages``: the last user turn's text
    job_id: str = field(default_factory=new_id)
    messages: tuple[Message, ...] | None = None  # a conversation (messages.conversation)
    models: tuple[str, ...] | None = None
    rounds: tuple[str, ...] | None = None
    strategy: str | None = None
    pipeline: str | None = None  # a named pipeline ([pipelines.NAME]) instead of the default
    synthesizer: str | None = None
    timeout_s: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _frozen_mapping(None))
    schema: Mapping[str, Any] | None = None  # a JSON Schema the final answer must satisfy
    deterministic: bool = False  # temperature 0, seeds, content-derived label order, cache
    early_exit: bool = False  # stop after `initial` when every answer agrees
    max_cost_usd: float | None = None  # a round that would pass it is not started
    answer_pattern: str | None = None  # regex: the part of an answer to vote on / compare
    system: str | None = None  # instead of the default system prompt, in every stage
    max_tokens: int | None = None  # per call (default: each model's)
    temperature: float | None = None  # per call (default: each model's)
    tools: tuple[ToolSpec, ...] | None = None  # functions the models may call
    tool_choice: ToolChoice | None = None  # None: auto (with tools)
    parallel_tool_calls: bool | None = None  # None: the provider's default (true)
    stop: tuple[str, ...] | None = None
    seed: int | None = None  # every call's seed (deterministic mode derives its own)
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning_effort: str | None = None
    traceparent: str | None = None  # W3C trace context: the job's span is its child
    reply_to: Any = None
    listener: Callable[[JobEvent], None] | None = None
    # The engine's own watchers (the run store's rounds, traces): they see every event
    # but, unlike ``listener``, do not ask for the answer to be streamed.
    observers: tuple[Callable[[JobEvent], None], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))
        if self.schema is not None and not isinstance(self.schema, MappingProxyType):
            object.__setattr__(self, "schema", _frozen_mapping(self.schema))
        for name in ("models", "rounds"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        for name in _CONVERTED:  # plain values (embedding): checked as the socket does
            value = getattr(self, name)
            if value is not None and not _converted(name, value):
                object.__setattr__(self, name, OPTIONS_BY_NAME[name].validate(value))
        check_together(self)

    @property
    def history(self) -> tuple[Message, ...]:
        """The conversation's turns before the last user turn (every turn when it ends
        with a tool result; none for a plain prompt): every call of the job gets them
        before its own prompt."""
        return split(self.messages)[1] if self.messages else ()

    @property
    def ends_with_tool(self) -> bool:
        """Whether the conversation ends with a tool result (the model continues it)."""
        return bool(self.messages) and ends_with_tool(self.messages or ())

    @property
    def sampling(self) -> Sampling:
        return Sampling(
            stop=self.stop or (),
            seed=self.seed,
            top_p=self.top_p,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            reasoning_effort=self.reasoning_effort,
        )


def _converted(name: str, value: Any) -> bool:
    """Whether ``value`` is already what the option makes of plain JSON."""
    if name == "tool_choice":
        return isinstance(value, ToolChoice)
    if name == "stop":
        return isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    kind = Message if name == "messages" else ToolSpec
    return isinstance(value, tuple) and all(isinstance(v, kind) for v in value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Complete:
    """Ask one model for one completion; the answer comes back as ``CallFinished``."""

    call_id: str
    job_id: str
    round_name: str
    round_index: int
    prompt: str | None  # None: the history is the whole call (it ends with a tool result)
    deadline: float  # time.monotonic() after which the answer is useless
    reply_to: Any  # pykka.ActorRef told the CallFinished
    system: str | None = None
    temperature: float | None = None  # None: the model's own
    seed: int | None = None  # None: the model's own
    max_tokens: int | None = None  # None: the model's own
    history: tuple[Message, ...] = ()  # a conversation's earlier turns
    stream: bool = False  # send CallDelta pieces to reply_to as the provider streams
    sampling: Sampling = field(default_factory=Sampling)
    tools: tuple[ToolSpec, ...] = ()  # offered to the model (its answer may call them)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelJob:
    """Stop a job: queued calls are dropped, in-flight calls cancelled."""

    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Synthesize:
    """Write the final answer of a job from the last round's answers.

    ``preferred`` is the configured synthesizer (None: ``auto``); the synthesizer
    tries it first, then the other ``candidates`` best first, until one answers.
    """

    job_id: str
    prompt: str | None  # None: the history is the whole call (it ends with a tool result)
    candidates: tuple[str, ...]
    preferred: str | None
    deadline: float
    reply_to: Any  # pykka.ActorRef told the SynthesisFinished
    system: str | None = None
    systems: Mapping[str, str] = field(default_factory=lambda: _frozen_mapping(None))  # roles
    max_tokens: int | None = None
    # model -> (temperature, seed) for its call; a model not listed uses its own
    sampling: Mapping[str, tuple[float | None, int | None]] = field(
        default_factory=lambda: _frozen_mapping(None)
    )
    deterministic: bool = False  # candidates in the given order, not by call history
    preferred_reason: str = "the configured synthesizer"  # why ``preferred`` comes first
    history: tuple[Message, ...] = ()  # a conversation's earlier turns
    stream: bool = False  # send SynthesisDelta pieces to reply_to as the text is written
    call_sampling: Sampling = field(default_factory=Sampling)  # stop, top_p, … of its calls
    tools: tuple[ToolSpec, ...] = ()  # offered to the synthesizer (it may decide a call)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    """Ask the supervisor to tell ``ref`` every ``RosterChanged`` from now on (the
    current roster at once)."""

    ref: Any  # pykka.ActorRef


@dataclass(frozen=True, slots=True, kw_only=True)
class SuperviseCore:
    """Ask the supervisor to restart a core actor (``coordinator``, ``synthesizer``) when
    it crashes: ``start(generation, roster)`` starts a new one and returns its ref."""

    name: str
    ref: Any  # pykka.ActorRef of the running actor (generation 1)
    start: Callable[..., Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconfigure:
    """Use this configuration (its templates and default pipeline) for the next jobs."""

    config: Any  # actors.config.Config


@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatus:
    """Ask an actor for a snapshot of its state (a plain dict)."""
