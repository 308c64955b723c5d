"""The OpenAI chat-completions wire form of tools and sampling, shared by every adapter
that speaks it (``openai``, ``local``, ``llama`` with ``api = "openai"``).

Sent: ``tools`` (with ``tool_choice`` and ``parallel_tool_calls`` as given: ``none``
still sends the tools, so a history with tool turns stays valid), ``stop``, ``top_p``,
``presence_penalty``, ``frequency_penalty`` and ``reasoning_effort`` by their own names
(a model that cannot take one answers 400, and that reply fails naming it).
Read: ``message.tool_calls`` of a JSON answer, and ``delta.tool_calls`` pieces of a
stream, assembled by index; arguments that are not a JSON object are ``BadResponse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.providers.base import ProviderRequest, tool_call
from messages.errors import BadResponse
from messages.tools import ToolCall

MAX_CALLS = 128  # calls in one answer
MAX_ARGUMENT_PIECES = 100_000  # stream pieces of one call's arguments


def chat_fields(request: ProviderRequest, *, reasoning: bool = True) -> dict[str, Any]:
    """The body fields beyond model, messages, max_tokens and temperature (and seed)."""
    out: dict[str, Any] = {}
    if request.tools:
        out["tools"] = [spec.to_dict() for spec in request.tools]
        if request.tool_choice is not None:
            out["tool_choice"] = request.tool_choice.to_wire()
        if request.parallel_tool_calls is not None and request.wants_tools:
            out["parallel_tool_calls"] = request.parallel_tool_calls
    sampling = request.sampling.to_dict()
    sampling.pop("seed", None)  # the call's seed is ``request.seed``
    if not reasoning:
        sampling.pop("reasoning_effort", None)
    out.update(sampling)
    return out


def parse_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """The ``tool_calls`` of a chat-completion message (none: an empty tuple)."""
    raw = message.get("tool_calls")
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CALLS:
        raise BadResponse(f"the provider's tool_calls are not a list of at most {MAX_CALLS}")
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            raise BadResponse(f"a tool call without a function: {str(item)[:120]}")
        calls.append(tool_call(function.get("name"), function.get("arguments"), item.get("id")))
    return tuple(calls)


@dataclass(slots=True)
class _Pending:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class CallDeltas:
    """Tool calls arriving in pieces (``delta.tool_calls``): the first piece of a call
    carries its index, id and name, later pieces more of its arguments' text."""

    def __init__(self) -> None:
        self.pending: dict[int, _Pending] = {}

    def feed(self, pieces: Any) -> None:
        if pieces is None:
            return
        if not isinstance(pieces, list):
            raise BadResponse("a stream chunk whose tool_calls are not a list")
        for piece in pieces:
            if not isinstance(piece, dict):
                raise BadResponse("a stream chunk with a tool call that is not an object")
            index = piece.get("index", len(self.pending))
            if not isinstance(index, int) or not 0 <= index < MAX_CALLS:
                raise BadResponse(f"a streamed tool call with index {str(index)[:20]}")
            call = self.pending.setdefault(index, _Pending())
            call.id = piece.get("id") or call.id
            function = piece.get("function") or {}
            if not isinstance(function, dict):
                raise BadResponse("a streamed tool call whose function is not an object")
            name, arguments = function.get("name"), function.get("arguments")
            if isinstance(name, str) and name and not call.name:
                call.name = name
            if isinstance(arguments, str):
                if len(call.arguments) >= MAX_ARGUMENT_PIECES:
                    raise BadResponse("a streamed tool call's arguments never end")
                call.arguments.append(arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            tool_call(p.name, "".join(p.arguments), p.id) for _, p in sorted(self.pending.items())
        )
