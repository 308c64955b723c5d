"""Conversations: an ``ask`` may carry ``messages`` (system, user and assistant turns,
the last from the user) instead of a ``prompt``.

A job keeps the last user turn as its ``prompt`` (what every stage's template calls
``{prompt}``), the turns before it as its ``history`` (sent to every model as real turns
before each stage's prompt, so meta, chain and synthesis keep the conversation's
context) and the system turns as its ``system``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from messages.errors import InvalidParams

ROLES = ("system", "user", "assistant")
Turn = tuple[str, str]  # (role, content)
MAX_TURNS = 1000


def turns(value: Any) -> tuple[Turn, ...]:
    """``messages`` as (role, content) pairs, or InvalidParams saying what is wrong."""
    if not isinstance(value, list | tuple) or not value:
        raise InvalidParams("messages must be a non-empty list of {role, content} objects")
    if len(value) > MAX_TURNS:
        raise InvalidParams(f"messages holds more than {MAX_TURNS} turns")
    out = []
    for i, message in enumerate(value):
        if isinstance(message, tuple) and len(message) == 2:
            role, content = message
        elif isinstance(message, dict) and set(message) <= {"role", "content"}:
            role, content = message.get("role"), message.get("content")
        else:
            raise InvalidParams(f"messages[{i}] must be an object with role and content only")
        if role not in ROLES:
            raise InvalidParams(f"messages[{i}].role must be one of {list(ROLES)}")
        if not isinstance(content, str):
            raise InvalidParams(f"messages[{i}].content must be a string")
        out.append((role, content))
    if out[-1][0] != "user" or not out[-1][1].strip():
        raise InvalidParams("the last of messages must be a non-empty user turn")
    return tuple(out)


def split(messages: Sequence[Turn]) -> tuple[str | None, tuple[Turn, ...], str]:
    """(system prompt or None, the turns before the last, the last user turn)."""
    system = "\n\n".join(c for r, c in messages if r == "system" and c.strip()) or None
    talk = [(r, c) for r, c in messages if r != "system"]
    return system, tuple(talk[:-1]), talk[-1][1]


def as_dicts(messages: Sequence[Turn]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in messages]
