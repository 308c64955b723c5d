"""The values of ``orchestrctl``'s flags: each parses one argument's text (a JSON object,
``@FILE``, a list of names, a tool choice) or raises ``argparse.ArgumentTypeError``,
which argparse turns into a usage error (exit 2) naming the flag; ``add_option`` makes
one ``ask`` flag from ``messages.options.ASK_OPTIONS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from messages.options import AskOption


def json_value(text: str) -> Any:
    """A JSON object, or ``@FILE`` holding one (a usage error otherwise)."""
    value = json_file(text[1:]) if text.startswith("@") else parse_json(text, "it")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def json_file(path: str) -> Any:
    """The JSON value in ``path`` (``-``: stdin), or a usage error saying why not."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).expanduser().read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise argparse.ArgumentTypeError(f"cannot read {path}: {why}") from None
    return parse_json(text, path)


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"{what} is not valid JSON: {exc}") from None


def json_any(text: str) -> Any:
    """Any JSON value, or ``@FILE`` holding one (a usage error otherwise)."""
    return json_file(text[1:]) if text.startswith("@") else parse_json(text, "it")


def tool_choice(text: str) -> Any:
    """``none``, ``auto``, ``required``, or the name of the one function to call."""
    if text in ("none", "auto", "required"):
        return text
    return {"type": "function", "function": {"name": text}}


def names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def messages_file(path: str) -> Any:
    """``--messages FILE`` (``-``: stdin): a JSON array of {role, content} turns."""
    value = json_file(path)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"{path} must hold a JSON array of messages")
    return value


TYPES: dict[str, Callable[[str], Any]] = {
    "text": str,
    "string": str,
    "number": float,
    "count": int,
    "names": names,
    "object": json_value,
    "messages": messages_file,
    "json": json_any,
    "stop": str,
    "tool_choice": tool_choice,
}
"""An ``AskOption.kind`` -> the function that parses its flag's value."""


def add_option(parser: argparse.ArgumentParser, option: AskOption) -> None:
    """One ``ask`` flag, from the option table."""
    assert option.flag is not None
    if option.kind == "bool":
        parser.add_argument(option.flag, dest=option.name, action="store_true", help=option.help)
        return
    parser.add_argument(
        option.flag,
        dest=option.name,
        type=TYPES[option.kind],
        metavar=option.metavar,
        choices=option.choices or None,
        help=option.help,
    )
