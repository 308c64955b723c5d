"""Light tasks: the housekeeping prompts chat UIs send to the chat model (a title for
the chat, tags, follow-up suggestions) would each start a whole ensemble behind
orchestrord. A request marked ``X-Orchestrord-Light: 1``, or whose last user message
matches one of ``[http] light_patterns``, goes to ``[http] light_model`` alone.

The patterns are run with the ``regex`` module and a timeout, so a pattern that
backtracks badly on a long message costs at most ``PATTERN_TIMEOUT_S`` (and counts as
no match)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import regex

HEADER = "x-orchestrord-light"
PATTERN_TIMEOUT_S = 0.05
MAX_SCANNED = 20_000  # characters of the message the patterns see (a UI's task prompt is short)


class LightTasks:
    """Which requests are light: compiled once from ``[http] light_patterns``."""

    def __init__(self, model: str | None, patterns: Sequence[str]) -> None:
        self.model = model
        self.patterns = [regex.compile(p) for p in patterns]

    def wanted(self, headers: Mapping[str, str], body: Mapping[str, Any]) -> bool:
        """Whether ``light_model`` should answer (never without one)."""
        if self.model is None:
            return False
        if headers.get(HEADER, "").strip().lower() in ("1", "true", "yes"):
            return True
        text = last_user_text(body.get("messages"))
        return text is not None and any(self._matches(p, text) for p in self.patterns)

    @staticmethod
    def _matches(pattern: regex.Pattern[str], text: str) -> bool:
        try:
            return pattern.search(text[:MAX_SCANNED], timeout=PATTERN_TIMEOUT_S) is not None
        except TimeoutError:
            return False


def last_user_text(messages: Any) -> str | None:
    """The text of the last user message (string content, or its text parts joined)."""
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return None


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return None
