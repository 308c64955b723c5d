"""The panel's vote on the next tool call (pure: no actors, no I/O).

On a tool job every participant sees the tools and answers with tool calls or text. Each
ok reply is one *proposal*:

- a set of calls, compared after normalising: the function name and the canonical JSON
  of the parsed arguments (keys sorted, no whitespace, an integral number such as
  ``1.0`` written ``1``: JSON Schema holds them equal); parallel calls are an unordered
  multiset, so the same calls in another order are the same proposal;
- or text: a vote for "answer in text".

Identical proposals form a group. A group holding a strict majority of the voting
replies wins as a vote does, with its share as the confidence. Without a majority the
synthesizer sees every proposal (anonymised, ``Proposal A``, ``Proposal B``, …), is given
the same tools, and decides: its reply's calls are the decision, or its text.

``tool_choice`` shapes what counts: ``none`` sends no tools (an ordinary text job);
``required`` makes text replies non-votes and the decision must be a call; a named
function makes only calls to it count. A proposal that cannot count (a function that
was not offered, arguments that are not a JSON object, several calls when
``parallel_tool_calls`` is false) is kept in the record with the reason, and is no vote.
Ties order the groups by their canonical key, so the same proposals always give the
same record and prompt.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from actors.prompts import DEFAULT_TEMPLATES, label
from messages.errors import InvalidParams, RoundError
from messages.tools import ToolCall

TEXT = "text"  # the key of every text proposal (call keys are JSON arrays: no clash)
Mode = Literal["none", "auto", "required", "function"]
DecidedBy = Literal["vote", "synthesizer", "single"]


@dataclass(frozen=True, slots=True)
class Choice:
    """``tool_choice`` read: its mode and, for ``function``, the function's name."""

    mode: Mode = "auto"
    name: str | None = None

    @property
    def needs_call(self) -> bool:
        return self.mode in ("required", "function")

    def describe(self) -> str:
        return f"the function {self.name!r}" if self.mode == "function" else self.mode


def choice_of(tool_choice: Any) -> Choice:
    """``tool_choice`` in any of its forms: None (auto), ``"none"``, ``"auto"``,
    ``"required"``, ``{"type": "function", "function": {"name": …}}``, or a value with
    ``mode`` and ``name`` attributes (messages.tools.ToolChoice)."""
    if tool_choice is None:
        return Choice()
    if isinstance(tool_choice, str):
        if tool_choice in ("none", "auto", "required"):
            return Choice(mode=tool_choice)  # type: ignore[arg-type]  # checked just above
        raise InvalidParams(f"tool_choice {tool_choice!r} is not none, auto or required")
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if tool_choice.get("type") == "function" and isinstance(name, str) and name:
            return Choice(mode="function", name=name)
        raise InvalidParams("tool_choice must name a function: {type: function, function: {name}}")
    mode, name = getattr(tool_choice, "mode", None), getattr(tool_choice, "name", None)
    if mode in ("none", "auto", "required") and name is None:
        return Choice(mode=mode)
    if mode == "function" and isinstance(name, str) and name:
        return Choice(mode="function", name=name)
    raise InvalidParams(f"tool_choice {tool_choice!r} is not understood")


# --- normalising calls ------------------------------------------------------------------


class BadCall(ValueError):
    """A proposed call that cannot count, with the reason as its message."""


@dataclass(frozen=True, slots=True)
class Call:
    """One call, normalised: ``arguments`` is the parsed JSON object with integral
    numbers as ints; ``key`` is the name and the canonical arguments."""

    name: str
    arguments: Mapping[str, Any]
    key: str

    @property
    def arguments_json(self) -> str:
        return canonical(self.arguments)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": dict(self.arguments)}

    def to_call(self) -> ToolCall:
        """The call as the result carries it, with a fresh id."""
        return ToolCall.create(name=self.name, arguments=self.arguments_json)


def canonical(value: Any) -> str:
    """JSON text of ``value`` that equal values share: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _number(value: Any) -> Any:
    """Integral floats as ints (``1.0`` -> ``1``), recursively; -0.0 is 0."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadCall("its arguments hold a number that is not finite")
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): _number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_number(v) for v in value]
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadCall(f"its arguments repeat the key {key!r}")
        out[key] = value
    return out


def _not_a_constant(name: str) -> Any:
    raise BadCall(f"its arguments hold {name}, which is not JSON")


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A call's arguments as a normalised object: JSON text or an object already; empty
    text (some providers send it for a function without parameters) is ``{}``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_not_a_constant)
        except json.JSONDecodeError as exc:
            raise BadCall(f"its arguments are not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(raw, Mapping):
        raise BadCall(f"its arguments are a JSON {type(raw).__name__}, not an object")
    normalised: dict[str, Any] = _number(raw)  # a Mapping gives a dict
    return normalised


def _parts(call: Any) -> tuple[Any, Any]:
    """(name, raw arguments) of a call in the OpenAI shape, the flat ``{name,
    arguments}`` shape, or a value with ``name`` and ``arguments`` attributes."""
    if isinstance(call, Mapping):
        function = call.get("function", call)
        if not isinstance(function, Mapping):
            raise BadCall("a call without a function")
        return function.get("name"), function.get("arguments")
    return getattr(call, "name", None), getattr(call, "arguments", None)


def normalise(call: Any, offered: Collection[str] | None = None) -> Call:
    """One proposed call, normalised; BadCall when it cannot count (no name, a function
    not among ``offered``, arguments that are not a JSON object)."""
    name, raw = _parts(call)
    if not isinstance(name, str) or not name:
        raise BadCall("a call without a function name")
    if offered is not None and name not in offered:
        raise BadCall(f"it calls {name!r}, which is not among the tools offered")
    try:
        arguments = parse_arguments(raw)
    except BadCall as exc:
        raise BadCall(f"{name}: {exc}") from None
    return Call(name=name, arguments=arguments, key=canonical([name, arguments]))


def calls_key(calls: Iterable[Call]) -> str:
    """A set of parallel calls as one key: order does not matter, repeats do."""
    return canonical(sorted(c.key for c in calls))


# --- proposals and the tally ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """One ok reply on a tool job: its calls (None: it answered in text) or its text,
    its vote ``key``, or ``excluded``: why it is no vote."""

    model: str
    calls: tuple[Call, ...] | None
    text: str | None
    key: str | None
    excluded: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "tool_calls": None if self.calls is None else [c.to_dict() for c in self.calls],
            "text": self.text,
        }
        if self.excluded is not None:
            out["excluded"] = self.excluded
        return out


def propose(
    model: str,
    tool_calls: Sequence[Any] | None,
    text: str | None,
    *,
    offered: Collection[str] | None,
    choice: Choice = Choice(),
    parallel: bool = True,
) -> Proposal:
    """``model``'s reply as a proposal (a reply with calls and text proposes the calls:
    the text is commentary)."""
    if tool_calls:
        return _call_proposal(model, tool_calls, text, offered, choice, parallel)
    if text is None or not text.strip():
        return Proposal(model=model, calls=None, text=text, key=None, excluded="an empty reply")
    if choice.needs_call:
        why = f"it answered in text, and tool_choice is {choice.describe()}"
        return Proposal(model=model, calls=None, text=text, key=None, excluded=why)
    return Proposal(model=model, calls=None, text=text, key=TEXT)


def _call_proposal(
    model: str,
    tool_calls: Sequence[Any],
    text: str | None,
    offered: Collection[str] | None,
    choice: Choice,
    parallel: bool,
) -> Proposal:
    calls: list[Call] = []
    why = None
    for raw in tool_calls:
        try:
            calls.append(normalise(raw, offered))
        except BadCall as exc:
            why = why or str(exc)
    if why is None and choice.mode == "none":
        why = "it called a tool, and tool_choice is none"
    elif why is None and choice.mode == "function":
        other = next((c.name for c in calls if c.name != choice.name), None)
        if other is not None:
            why = f"it calls {other!r}, and tool_choice names {choice.name!r}"
    if why is None and not parallel and len(calls) > 1:
        why = f"it made {len(calls)} calls, and parallel_tool_calls is false"
    key = None if why is not None else calls_key(calls)
    return Proposal(model=model, calls=tuple(calls), text=text, key=key, excluded=why)


@dataclass(frozen=True, slots=True)
class Group:
    """The proposals that are the same: one vote each."""

    key: str
    models: tuple[str, ...]
    calls: tuple[Call, ...] | None  # None: answer in text
    texts: tuple[str, ...] = ()  # a text group's answers, in model order

    def to_dict(self, voters: int) -> dict[str, Any]:
        return {
            "calls": None if self.calls is None else [c.to_dict() for c in self.calls],
            "models": list(self.models),
            "share": round(len(self.models) / voters, 4) if voters else None,
        }


@dataclass(frozen=True, slots=True)
class Tally:
    """Every proposal, the groups of identical ones (largest first, ties by key), how
    many replies voted, and the majority group if there is one."""

    proposals: tuple[Proposal, ...]
    groups: tuple[Group, ...]
    voters: int
    winner: Group | None

    def share(self, key: str | None) -> float | None:
        """The share of the voting replies that proposed ``key`` (None: nobody voted)."""
        if not self.voters:
            return None
        group = next((g for g in self.groups if g.key == key), None)
        return 0.0 if group is None else len(group.models) / self.voters


def tally(proposals: Sequence[Proposal]) -> Tally:
    """Group the proposals that count; a group with more than half the votes wins."""
    members: dict[str, list[Proposal]] = {}
    for proposal in proposals:
        if proposal.key is not None:
            members.setdefault(proposal.key, []).append(proposal)
    groups = tuple(
        Group(
            key=key,
            models=tuple(p.model for p in props),
            calls=props[0].calls if key != TEXT else None,
            texts=tuple(p.text or "" for p in props) if key == TEXT else (),
        )
        for key, props in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    )
    voters = sum(len(g.models) for g in groups)
    top = groups[0] if groups else None
    winner = top if top is not None and 2 * len(top.models) > voters else None
    return Tally(proposals=tuple(proposals), groups=groups, voters=voters, winner=winner)


# --- the decision -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What the job answers: calls, or text (``calls`` None), who decided and how sure."""

    calls: tuple[Call, ...] | None
    text: str | None
    decided_by: DecidedBy
    confidence: float | None

    @property
    def is_call(self) -> bool:
        return self.calls is not None

    def tool_calls(self) -> tuple[ToolCall, ...] | None:
        """The decided calls as the result carries them, each with a fresh id."""
        return None if self.calls is None else tuple(c.to_call() for c in self.calls)


def by_vote(result: Tally) -> Decision | None:
    """The majority's decision; None when the synthesizer must decide. A text majority
    decides "answer in text" (its text is written by the synthesis of the text answers,
    or is the one answer when one model answered)."""
    winner = result.winner
    if winner is None:
        return None
    single = result.voters == 1 and len(result.proposals) == 1
    return Decision(
        calls=winner.calls,
        text=winner.texts[0] if winner.calls is None and single else None,
        decided_by="single" if single else "vote",
        confidence=None if single else len(winner.models) / result.voters,
    )


def decide(
    tool_calls: Sequence[Any] | None,
    text: str | None,
    *,
    synthesizer: str,
    result: Tally,
    offered: Collection[str],
    choice: Choice,
    parallel: bool = True,
) -> Decision:
    """The synthesizer's reply as the decision: its calls, else its text. RoundError
    when it is not usable: a call that cannot count, text when a call is required, or
    nothing at all. The confidence is the share of the panel that proposed the same."""
    proposal = propose(
        synthesizer, tool_calls, text, offered=offered, choice=choice, parallel=parallel
    )
    if proposal.key is None:
        why = proposal.excluded or "an empty reply"
        raise RoundError(f"the synthesizer {synthesizer}'s tool decision is not usable: {why}")
    return Decision(
        calls=proposal.calls if proposal.key != TEXT else None,
        text=proposal.text if proposal.key == TEXT else None,
        decided_by="synthesizer",
        confidence=result.share(proposal.key),
    )


def record(
    result: Tally | None,
    decision: Decision | None,
    left_out: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The job result's ``tools``: proposals, votes, who decided (None: nobody did, the
    job failed first), confidence, left out."""
    voters = result.voters if result is not None else 0
    return {
        "proposals": [] if result is None else [p.to_dict() for p in result.proposals],
        "votes": [] if result is None else [g.to_dict(voters) for g in result.groups],
        "decided_by": None if decision is None else decision.decided_by,
        "confidence": None if decision is None else decision.confidence,
        "left_out": [dict(x) for x in left_out],
    }


# --- the synthesizer's prompt -----------------------------------------------------------

RULES = {
    "auto": "Either call the tool or tools that should be called now, with the right "
    "arguments, or, if no tool is needed, answer the question directly in text.",
    "required": "You must call a tool: reply with the tool call or calls that should be "
    "made now, with the right arguments.",
    "function": "You must call the function {name}: reply with that call and the right arguments.",
}


def decision_prompt(
    question: str,
    result: Tally,
    choice: Choice,
    rng: random.Random | None = None,
    template: str = DEFAULT_TEMPLATES["tools"],
) -> str:
    """The synthesizer's prompt when the panel has no majority: every proposal that
    counts, labelled ``Proposal A``, ``Proposal B``, … in a shuffled order (``rng``:
    the job's, seeded on a deterministic job), with how many assistants made it, and
    never a model's name. ``template``: ``[templates] tools``."""
    entries: list[str] = []
    for group in result.groups:
        if group.calls is None:
            entries.extend(f"answer in text:\n{t.strip()}" for t in group.texts)
        else:
            made = f"{len(group.models)} of {result.voters}"
            entries.append(f"call ({made} assistants proposed this):\n{describe(group.calls)}")
    (rng or random.Random(0)).shuffle(entries)
    block = "\n\n".join(f"Proposal {label(i)}: {e}" for i, e in enumerate(entries))
    rule = RULES.get(choice.mode, RULES["auto"]).format(name=choice.name)
    return template.format(prompt=question, proposals=block or "(none)", rule=rule)


def describe(calls: Sequence[Call]) -> str:
    """Calls as the prompt shows them: ``name({"arg": 1})``, one per line."""
    return "\n".join(f"{c.name}({c.arguments_json})" for c in calls)
