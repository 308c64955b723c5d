"""Tools: the functions a job offers its models, the calls they propose, and the choice.

Shapes follow OpenAI Chat Completions (what the HTTP door receives and the socket takes):

- ``ToolSpec``: ``{"type": "function", "function": {"name", "description"?,
  "parameters"?, "strict"?}}``; at most ``MAX_TOOLS`` of them, names unique and
  ``^[A-Za-z0-9_-]{1,64}$``, parameters a JSON Schema (``jsonschema``'s check_schema,
  after a guard on size and nesting: the checker recurses).
- ``ToolCall``: ``{"id", "type": "function", "function": {"name", "arguments"}}``.
  ``arguments`` is kept as its *canonical* JSON text (parsed, then dumped with sorted
  keys and no spaces): two calls with equal arguments have equal text, which is what the
  panel's vote compares. Arguments must be a JSON object; empty text means ``{}``.
- ``ToolChoice``: ``"none"`` | ``"auto"`` | ``"required"`` | ``{"type": "function",
  "function": {"name"}}`` (``mode`` ``"function"`` with ``name``).

Bad input raises ``ToolError`` (an ``InvalidParams``) naming the offending place; a
provider's adapter turns the same error in a model's answer into ``BadResponse``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from messages.errors import InvalidParams

MAX_TOOLS = 128
MAX_SCHEMA_BYTES = 100_000  # one tool's parameters, as JSON text
MAX_SCHEMA_DEPTH = 32  # nesting of its objects and arrays
MAX_ARGUMENTS_BYTES = 1_000_000
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
Mode = Literal["none", "auto", "required", "function"]
MODES = ("none", "auto", "required")


class ToolError(InvalidParams):
    """A tool definition, call or choice that cannot be used (says where and why)."""


def canonical(value: Any) -> str:
    """The JSON text the vote compares: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_arguments(value: Any, where: str = "arguments") -> str:
    """A call's arguments (JSON text of an object, or the object itself) as canonical
    text; ``ToolError`` if they are not a JSON object."""
    if isinstance(value, str):
        if len(value) > MAX_ARGUMENTS_BYTES:
            raise ToolError(f"{where} is longer than {MAX_ARGUMENTS_BYTES} characters")
        if not value.strip():
            return "{}"
        try:
            value = json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ToolError(f"{where} is not JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise ToolError(f"{where} must be a JSON object, not {type(value).__name__}")
    try:
        return canonical(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ToolError(f"{where} is not JSON: {str(exc)[:120]}") from None


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One proposed call: the function's name and its arguments as canonical JSON."""

    id: str
    name: str
    arguments_json: str  # canonical: json.dumps(args, sort_keys=True, separators=(",", ":"))

    @classmethod
    def create(cls, *, name: Any, arguments: Any, id: Any = None, where: str = "") -> ToolCall:
        """A call from a model's (or a client's) pieces; ``ToolError`` if unusable."""
        where = where or "tool call"
        if not isinstance(name, str) or not name:
            raise ToolError(f"{where}: the function name must be a non-empty string")
        if id is not None and (not isinstance(id, str) or not id):
            raise ToolError(f"{where}: id must be a non-empty string")
        args = parse_arguments(arguments, f"{where}: arguments of {name[:64]!r}")
        return cls(id=id or new_call_id(), name=name, arguments_json=args)

    @property
    def arguments(self) -> dict[str, Any]:
        """The parsed arguments (a fresh dict each time: the call stays immutable)."""
        parsed: dict[str, Any] = json.loads(self.arguments_json)
        return parsed

    @property
    def key(self) -> tuple[str, str]:
        """What two equal calls share (the id aside): name and canonical arguments."""
        return (self.name, self.arguments_json)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json},
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "tool_calls[0]") -> ToolCall:
        if not isinstance(data, dict):
            raise ToolError(f"{where} must be an object")
        if data.get("type", "function") != "function":
            raise ToolError(f"{where}.type must be 'function'")
        function = data.get("function")
        if not isinstance(function, dict):
            raise ToolError(f"{where}.function must be an object with name and arguments")
        return cls.create(
            id=data.get("id"),
            name=function.get("name"),
            arguments=function.get("arguments", ""),
            where=where,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A function the models may call. ``parameters_json`` is its JSON Schema as
    canonical text (``parameters`` parses it)."""

    name: str
    description: str | None = None
    parameters_json: str | None = None
    strict: bool | None = None

    @property
    def parameters(self) -> dict[str, Any] | None:
        if self.parameters_json is None:
            return None
        parsed: dict[str, Any] = json.loads(self.parameters_json)
        return parsed

    def to_dict(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters_json is not None:
            function["parameters"] = self.parameters
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}

    @classmethod
    def from_dict(cls, data: Any, where: str = "tools[0]") -> ToolSpec:
        if not isinstance(data, dict) or data.get("type") != "function":
            raise ToolError(f"{where} must be an object with type 'function'")
        if set(data) - {"type", "function"}:
            raise ToolError(f"{where}: unknown key(s) {sorted(set(data) - {'type', 'function'})}")
        function = data.get("function")
        if not isinstance(function, dict):
            raise ToolError(f"{where}.function must be an object")
        unknown = set(function) - {"name", "description", "parameters", "strict"}
        if unknown:
            raise ToolError(f"{where}.function: unknown key(s) {sorted(unknown)}")
        name = function.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ToolError(f"{where}.function.name must match ^[A-Za-z0-9_-]{{1,64}}$")
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise ToolError(f"{where}.function.description must be a string")
        strict = function.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise ToolError(f"{where}.function.strict must be a boolean")
        parameters = function.get("parameters")
        schema = None if parameters is None else check_schema(parameters, f"{where}.function")
        return cls(name=name, description=description, parameters_json=schema, strict=strict)


def _depth(value: Any) -> int:
    """How deeply ``value``'s objects and arrays nest (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_SCHEMA_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def check_schema(parameters: Any, where: str) -> str:
    """``parameters`` as canonical text, once it is a valid JSON Schema object."""
    if not isinstance(parameters, dict):
        raise ToolError(f"{where}.parameters must be a JSON Schema object")
    if _depth(parameters) > MAX_SCHEMA_DEPTH:
        raise ToolError(f"{where}.parameters nests deeper than {MAX_SCHEMA_DEPTH} levels")
    try:
        text = canonical(parameters)
    except (ValueError, TypeError) as exc:
        raise ToolError(f"{where}.parameters is not JSON: {exc}") from None
    if len(text) > MAX_SCHEMA_BYTES:
        raise ToolError(f"{where}.parameters is larger than {MAX_SCHEMA_BYTES} bytes")
    import jsonschema  # imported on first use: plain jobs never pay for it

    try:
        cls = jsonschema.validators.validator_for(
            parameters, default=jsonschema.Draft202012Validator
        )
        cls.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ToolError(
            f"{where}.parameters is not a valid JSON Schema at {path}: {exc.message[:200]}"
        ) from None
    return text


def parse_tools(value: Any) -> tuple[ToolSpec, ...]:
    """The ``tools`` param: a list of at most ``MAX_TOOLS`` function definitions."""
    if not isinstance(value, list | tuple) or not value:
        raise ToolError("tools must be a non-empty list of {type: function, function} objects")
    if len(value) > MAX_TOOLS:
        raise ToolError(f"tools holds {len(value)} tools; at most {MAX_TOOLS} are allowed")
    out: list[ToolSpec] = []
    for i, item in enumerate(value):
        spec = item if isinstance(item, ToolSpec) else ToolSpec.from_dict(item, f"tools[{i}]")
        if any(t.name == spec.name for t in out):
            raise ToolError(f"tools[{i}]: the function name {spec.name!r} is used twice")
        out.append(spec)
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChoice:
    """Whether the models may, must or must not call a function, or which one."""

    mode: Mode = "auto"
    name: str | None = None  # with mode "function"

    def to_wire(self) -> str | dict[str, Any]:
        """The OpenAI form: a mode string, or ``{"type": "function", ...}``."""
        if self.mode == "function":
            return {"type": "function", "function": {"name": self.name}}
        return self.mode

    def to_dict(self) -> str | dict[str, Any]:
        return self.to_wire()

    def allows(self, name: str) -> bool:
        """Whether a call to ``name`` is one the choice permits."""
        return self.mode in ("auto", "required") or (self.mode == "function" and name == self.name)


def parse_tool_choice(value: Any) -> ToolChoice:
    """The ``tool_choice`` param (whether it names a known function is checked with the
    tools: ``check_choice``)."""
    if isinstance(value, ToolChoice):
        return value
    if isinstance(value, str):
        if value not in MODES:
            raise ToolError(
                f"tool_choice must be one of {list(MODES)} or "
                '{"type": "function", "function": {"name": ...}}'
            )
        return ToolChoice(mode=value)  # type: ignore[arg-type]  # checked just above
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(value, dict) or value.get("type") != "function" or not isinstance(name, str):
        raise ToolError(
            'tool_choice must be "none", "auto", "required" or '
            '{"type": "function", "function": {"name": ...}}'
        )
    return ToolChoice(mode="function", name=name)


def check_choice(tools: Iterable[ToolSpec] | None, choice: ToolChoice | None) -> None:
    """A ``tool_choice`` needs ``tools``, and a named function must be one of them."""
    if choice is None:
        return
    names = [t.name for t in tools or ()]
    if not names:
        raise ToolError("tool_choice is given without tools")
    if choice.mode == "function" and choice.name not in names:
        raise ToolError(f"tool_choice names the function {choice.name!r}, which tools lacks")


def check_offered(calls: Iterable[ToolCall], tools: Iterable[ToolSpec]) -> str | None:
    """Why ``calls`` cannot stand (a function that was not offered), or None."""
    offered = {t.name for t in tools}
    for call in calls:
        if call.name not in offered:
            return f"called the function {call.name[:64]!r}, which was not offered"
    return None


def jsonable(value: Any) -> Any:
    """``value`` with these types (and tuples, mappings) turned into plain JSON values:
    for ``json.dumps(default=jsonable)`` where options are stored or hashed."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    return list(value)
