"""Conversations: an ``ask`` may carry ``messages`` instead of a ``prompt``: every
message form of the OpenAI Chat Completions API.

- roles ``system``, ``developer`` (treated as system), ``user``, ``assistant``, ``tool``;
- ``content``: a string, null (an assistant turn that only calls tools), or a list of
  parts: ``text`` parts are the text (joined with a newline); any other part (an image,
  audio, a file) is refused by name: no model here takes it, and it is never dropped;
- ``name`` on any message; ``tool_calls`` on an assistant turn; ``tool_call_id`` on a
  ``tool`` turn, matching a call made earlier in the conversation;
- the last message is from the user, or a tool result (the conversation continues).

A job keeps the last user turn's text as its ``prompt`` (what every stage's template
calls ``{prompt}``), the system turns as its ``system`` and the rest as its ``history``
(``split``): the turns before the last user turn, or, when the conversation ends with a
tool result, every turn (a call then sends no prompt turn of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from messages.errors import InvalidParams
from messages.tools import ToolCall, ToolError

Role = Literal["system", "developer", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "developer", "user", "assistant", "tool")
SYSTEM_ROLES = ("system", "developer")
KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "refusal"})
MAX_TURNS = 1000
MAX_CALLS = 128  # tool calls in one assistant turn
PART_NOUNS = {"image_url": "images", "input_audio": "audio", "file": "files"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One turn of a conversation (text parts already joined into ``content``)."""

    role: Role
    content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # assistant turns
    tool_call_id: str | None = None  # tool turns

    @property
    def text(self) -> str:
        return self.content or ""

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI form (what the socket takes and the OpenAI provider sends)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "messages[0]") -> Message:
        """One message, checked on its own (``turns`` checks the whole conversation)."""
        if isinstance(data, Message):
            return data
        if isinstance(data, tuple | list) and len(data) == 2:  # (role, content)
            data = {"role": data[0], "content": data[1]}
        if not isinstance(data, dict) or "role" not in data:
            raise InvalidParams(f"{where} must be an object with a role and content")
        unknown = set(data) - KEYS
        if unknown:
            raise InvalidParams(f"{where}: unknown key(s) {sorted(unknown)}")
        if data.get("refusal") is not None:
            raise InvalidParams(f"{where}.refusal is not supported (give the text as content)")
        role = data["role"]
        if role not in ROLES:
            raise InvalidParams(f"{where}.role must be one of {list(ROLES)}")
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidParams(f"{where}.name must be a non-empty string")
        calls = _calls(data.get("tool_calls"), role, where)
        content = _content(data.get("content"), where)
        if content is None and not calls:
            raise InvalidParams(f"{where}.content must be a string or a list of text parts")
        call_id = data.get("tool_call_id")
        if role == "tool" and (not isinstance(call_id, str) or not call_id):
            raise InvalidParams(f"{where}.tool_call_id must be the id of an earlier tool call")
        if role != "tool" and call_id is not None:
            raise InvalidParams(f"{where}.tool_call_id belongs on a tool message only")
        return cls(role=role, content=content, name=name, tool_calls=calls, tool_call_id=call_id)


def _content(value: Any, where: str) -> str | None:
    """A message's content as text: a string, null, or text parts joined by newlines."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list | tuple):
        raise InvalidParams(f"{where}.content must be a string, null or a list of parts")
    texts = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str):
            raise InvalidParams(f"{where}.content[{j}] must be an object with a type")
        if kind != "text":
            noun = PART_NOUNS.get(kind, f"{kind} parts")
            raise InvalidParams(
                f"{where}.content[{j}]: {kind} parts are not supported "
                f"(no model in this job takes {noun})"
            )
        if not isinstance(part.get("text"), str):
            raise InvalidParams(f"{where}.content[{j}].text must be a string")
        texts.append(part["text"])
    return "\n".join(texts)


def _calls(value: Any, role: str, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if role != "assistant":
        raise InvalidParams(f"{where}.tool_calls belong on an assistant message only")
    if not isinstance(value, list | tuple) or len(value) > MAX_CALLS:
        raise InvalidParams(f"{where}.tool_calls must be a list of at most {MAX_CALLS} calls")
    calls = []
    for k, item in enumerate(value):
        if isinstance(item, ToolCall):
            calls.append(item)
            continue
        if not isinstance(item, dict) or not item.get("id"):
            raise ToolError(f"{where}.tool_calls[{k}] must be an object with an id")
        calls.append(ToolCall.from_dict(item, f"{where}.tool_calls[{k}]"))
    return tuple(calls)


def turns(value: Any) -> tuple[Message, ...]:
    """``messages`` as ``Message`` values, or InvalidParams saying what is wrong and where."""
    if isinstance(value, dict) or not isinstance(value, list | tuple) or not value:
        raise InvalidParams("messages must be a non-empty list of {role, content} objects")
    if len(value) > MAX_TURNS:
        raise InvalidParams(f"messages holds more than {MAX_TURNS} turns")
    out: list[Message] = []
    called: set[str] = set()
    for i, item in enumerate(value):
        message = Message.from_dict(item, f"messages[{i}]")
        if message.tool_call_id is not None and message.tool_call_id not in called:
            raise InvalidParams(
                f"messages[{i}].tool_call_id {message.tool_call_id[:64]!r} matches no "
                "earlier assistant tool call"
            )
        called.update(call.id for call in message.tool_calls)
        out.append(message)
    last = out[-1]
    if last.role == "tool":
        return tuple(out)
    if last.role != "user" or not last.text.strip():
        raise InvalidParams("the last of messages must be a non-empty user turn or a tool result")
    return tuple(out)


def ends_with_tool(messages: Sequence[Message]) -> bool:
    """Whether the conversation's last turn is a tool result (the model continues)."""
    return bool(messages) and messages[-1].role == "tool"


def split(messages: Sequence[Message]) -> tuple[str | None, tuple[Message, ...], str]:
    """(system prompt or None, the history, the prompt): see the module's docstring."""
    system = "\n\n".join(m.text for m in messages if m.role in SYSTEM_ROLES and m.text.strip())
    talk = [m for m in messages if m.role not in SYSTEM_ROLES]
    users = [m for m in talk if m.role == "user"]
    prompt = users[-1].text if users else ""
    history = tuple(talk) if ends_with_tool(talk) else tuple(talk[:-1])
    return system or None, history, prompt


def as_dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in messages]
