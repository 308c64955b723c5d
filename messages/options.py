"""The options of an ``ask``, declared once.

This table drives the socket codec's validation (``messages.codec.ask_params``), the
flags of ``orchestrctl ask``, the key under which a deterministic job's result is cached
(``cached``), and the protocol reference (``docs/protocol.md``, checked by a test). A new
option is a new row here; nothing else lists them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from messages.errors import InvalidParams
from messages.tools import parse_tool_choice, parse_tools

MAX_STOP = 4  # stop sequences, as OpenAI allows
TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

Kind = Literal[
    "text",
    "string",
    "bool",
    "number",
    "count",
    "names",
    "object",
    "messages",
    "json",  # any JSON value, checked by ``convert`` (orchestrctl: JSON text or @FILE)
    "stop",  # a string or a list of strings (orchestrctl: one string)
    "tool_choice",  # a mode or a named function (orchestrctl: a mode or a name)
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AskOption:
    name: str
    kind: Kind
    help: str
    flag: str | None = None  # orchestrctl's flag; None: none (e.g. the prompt itself)
    metavar: str | None = None
    cached: bool = True  # part of a deterministic job's cache key
    minimum: float = 0.0  # numbers and counts: the least value
    inclusive: bool = False  # whether ``minimum`` itself is allowed
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unset: Any = "default"  # the value when not given ("default": False for a bool, else None)
    convert: Callable[[Any], Any] | None = None  # the checked value as the job takes it

    def validate(self, value: Any) -> Any:
        """``value`` as the job takes it, or ``InvalidParams`` naming this option."""
        if value is None:
            if self.unset == "default":
                return False if self.kind == "bool" else None
            return self.unset
        check = _CHECKS[self.kind]
        problem = check(self, value)
        if problem is not None:
            raise InvalidParams(f"{self.name} must be {problem}")
        if self.convert is not None:
            return self.convert(value)
        if self.kind == "names":
            return tuple(value)
        if self.kind == "messages":
            from messages.conversation import turns

            return turns(value)
        if self.kind == "number":
            return float(value)
        return value


def _text(option: AskOption, value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "a non-empty string"


def _string(option: AskOption, value: Any) -> str | None:
    if not isinstance(value, str):
        return "a string"
    if option.choices and value not in option.choices:
        return f"one of {list(option.choices)}"
    return None


def _bool(option: AskOption, value: Any) -> str | None:
    return None if isinstance(value, bool) else "a boolean"


def _number(option: AskOption, value: Any) -> str | None:
    low = f"{'>=' if option.inclusive else '>'} {option.minimum:g}"
    high = f" and <= {option.maximum:g}" if option.maximum is not None else ""
    wanted = f"a finite number {low}{high}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return wanted
    try:
        number = float(value)
    except OverflowError:
        return wanted
    if not math.isfinite(number):
        return wanted
    if number < option.minimum or (number == option.minimum and not option.inclusive):
        return wanted
    if option.maximum is not None and number > option.maximum:
        return wanted
    if option.kind == "count" and not isinstance(value, int):
        return f"a whole number {low}{high}"
    return None


def _names(option: AskOption, value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return None
    return "a list of non-empty strings"


def _object(option: AskOption, value: Any) -> str | None:
    return None if isinstance(value, dict) else "an object"


def _messages(option: AskOption, value: Any) -> str | None:
    return None  # checked turn by turn (messages.conversation.turns), naming the turn


def _any(option: AskOption, value: Any) -> str | None:
    return None  # checked by the option's ``convert``, which names the place


def _stop(option: AskOption, value: Any) -> str | None:
    if isinstance(value, str) and value:
        return None
    if (
        isinstance(value, list | tuple)
        and 0 < len(value) <= MAX_STOP
        and all(isinstance(v, str) and v for v in value)
    ):
        return None
    return f"a non-empty string or a list of 1 to {MAX_STOP} non-empty strings"


def _stops(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


_CHECKS = {
    "text": _text,
    "string": _string,
    "bool": _bool,
    "number": _number,
    "count": _number,
    "names": _names,
    "object": _object,
    "messages": _messages,
    "json": _any,
    "stop": _stop,
    "tool_choice": _any,
}


def _traceparent(value: str) -> str:
    """A W3C trace context ``traceparent`` (version-traceid-parentid-flags)."""
    if not TRACEPARENT.fullmatch(value) or set(value[3:35]) == {"0"}:
        raise InvalidParams("traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
    return value


ASK_OPTIONS: tuple[AskOption, ...] = (
    AskOption(name="prompt", kind="text", help="the question (or give messages)"),
    AskOption(
        name="messages",
        kind="messages",
        flag="--messages",
        metavar="FILE",
        help="a conversation instead of prompt: OpenAI chat messages (system, developer, "
        "user, assistant with tool_calls, tool), the last from the user or a tool",
    ),
    AskOption(
        name="system",
        kind="text",
        flag="--system",
        metavar="TEXT",
        help="a system prompt every model gets in every stage, instead of the default one",
    ),
    AskOption(
        name="max_tokens",
        kind="count",
        flag="--max-tokens",
        metavar="N",
        minimum=1,
        inclusive=True,
        maximum=1_000_000,
        help="the most tokens each call may write (default: each model's max_tokens)",
    ),
    AskOption(
        name="temperature",
        kind="number",
        flag="--temperature",
        metavar="T",
        inclusive=True,
        maximum=2.0,
        help="sampling temperature for every call (default: each model's temperature)",
    ),
    AskOption(
        name="pipeline",
        kind="string",
        flag="--pipeline",
        metavar="NAME",
        help="a named pipeline ([pipelines.NAME]) instead of rounds and strategy",
    ),
    AskOption(
        name="models",
        kind="names",
        flag="--models",
        metavar="A,B",
        help="the participants (default: every configured model)",
    ),
    AskOption(
        name="rounds",
        kind="names",
        flag="--rounds",
        metavar="R,R",
        help="initial, any number of meta, optional synthesis (default: the pipeline's)",
    ),
    AskOption(
        name="strategy",
        kind="string",
        flag="--strategy",
        choices=("synthesize", "vote", "rank"),
        help="how the answers become one",
    ),
    AskOption(
        name="synthesizer",
        kind="string",
        flag="--synthesizer",
        metavar="MODEL",
        help="who writes the final answer (any configured model, or auto)",
    ),
    AskOption(
        name="timeout_s",
        kind="number",
        flag="--timeout",
        metavar="S",
        cached=False,
        help="the job's deadline in seconds (default: job_timeout_s)",
    ),
    AskOption(
        name="stream",
        kind="bool",
        cached=False,
        help="send progress events (and the answer's deltas) before the result",
    ),
    AskOption(
        name="metadata",
        kind="object",
        flag="--metadata",
        metavar="JSON",
        cached=False,
        help="any JSON object, stored with the job and searchable with runs",
    ),
    AskOption(
        name="schema",
        kind="object",
        flag="--schema",
        metavar="JSON|@FILE",
        help="a JSON Schema the final answer must satisfy",
    ),
    AskOption(
        name="deterministic",
        kind="bool",
        flag="--deterministic",
        cached=False,
        help="seeded calls and a cached result: the same question answers the same",
    ),
    AskOption(
        name="early_exit",
        kind="bool",
        flag="--early-exit",
        help="stop after the initial round when every answer agrees",
    ),
    AskOption(
        name="max_cost_usd",
        kind="number",
        flag="--max-cost",
        metavar="USD",
        help="a round that would pass this budget is not started",
    ),
    AskOption(
        name="answer_pattern",
        kind="string",
        flag="--answer-pattern",
        metavar="RE",
        help="a regex picking the part of each answer to compare and vote on",
    ),
    AskOption(
        name="tools",
        kind="json",
        flag="--tools",
        metavar="JSON|@FILE",
        convert=parse_tools,
        help="functions the models may call, OpenAI's form: [{type: function, function: "
        "{name, description, parameters}}] (at most 128; the answer may be tool_calls)",
    ),
    AskOption(
        name="tool_choice",
        kind="tool_choice",
        flag="--tool-choice",
        metavar="MODE|NAME",
        convert=parse_tool_choice,
        help="none, auto, required, or {type: function, function: {name}} "
        "(orchestrctl: a mode or a function's name); only with tools",
    ),
    AskOption(
        name="parallel_tool_calls",
        kind="bool",
        unset=None,
        help="whether a model may propose several calls in one turn (default: true)",
    ),
    AskOption(
        name="stop",
        kind="stop",
        flag="--stop",
        metavar="TEXT",
        convert=_stops,
        help="a string, or a list of up to 4, at which every call stops writing",
    ),
    AskOption(
        name="seed",
        kind="count",
        flag="--seed",
        metavar="N",
        minimum=-(2**63),
        inclusive=True,
        maximum=2**63 - 1,
        help="the sampling seed of every call, for providers that take one",
    ),
    AskOption(
        name="top_p",
        kind="number",
        flag="--top-p",
        metavar="P",
        inclusive=True,
        maximum=1.0,
        help="nucleus sampling for every call (0 to 1)",
    ),
    AskOption(
        name="presence_penalty",
        kind="number",
        flag="--presence-penalty",
        metavar="X",
        minimum=-2.0,
        inclusive=True,
        maximum=2.0,
        help="penalise tokens already present (-2 to 2), for providers that take it",
    ),
    AskOption(
        name="frequency_penalty",
        kind="number",
        flag="--frequency-penalty",
        metavar="X",
        minimum=-2.0,
        inclusive=True,
        maximum=2.0,
        help="penalise frequent tokens (-2 to 2), for providers that take it",
    ),
    AskOption(
        name="reasoning_effort",
        kind="string",
        flag="--reasoning-effort",
        choices=REASONING_EFFORTS,
        help="how hard reasoning models think, for providers that take it",
    ),
    AskOption(
        name="traceparent",
        kind="string",
        cached=False,
        convert=_traceparent,
        help="a W3C traceparent: the job's trace is a child of that span (OpenTelemetry)",
    ),
)

OPTIONS_BY_NAME = {option.name: option for option in ASK_OPTIONS}


def check_together(params: Any) -> None:
    """The checks that span options (``params``: a mapping, or an ``Ask``): a
    ``tool_choice`` needs ``tools`` and may name only one of them."""
    from messages.tools import check_choice

    get = params.get if isinstance(params, dict) else lambda name: getattr(params, name)
    check_choice(get("tools"), get("tool_choice"))
