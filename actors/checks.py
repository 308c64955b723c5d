"""Checks of configuration values that both ``config`` and ``pipelines`` apply: a stage's
or ``[templates]``' prompt template, and a ``validate`` table. A leaf: it imports only
``messages`` and ``prompts``, so neither of those modules has to import the other."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import regex

from actors.prompts import PLACEHOLDERS
from messages.errors import ConfigError


def check_validate(key: str, validate: Any) -> None:
    """A ``validate`` table: ``regex`` (compiled by the engine ``answer_pattern`` uses, with
    its time budget) and ``required_sections`` (non-empty strings)."""
    if not isinstance(validate, Mapping):
        raise ConfigError(key, "expected a table {regex = ..., required_sections = [...]}")
    ConfigError.check_keys(key, validate, ("regex", "required_sections"))
    pattern = validate.get("regex")
    if pattern is not None:
        try:
            regex.compile(pattern)
        except (regex.error, TypeError) as exc:
            raise ConfigError(f"{key}.regex", f"not a valid regex: {exc}") from None
    sections = validate.get("required_sections", [])
    if not isinstance(sections, list) or not all(isinstance(x, str) and x for x in sections):
        raise ConfigError(f"{key}.required_sections", "expected a list of non-empty strings")


def check_template(key: str, text: str, template: str) -> None:
    """``text`` uses only the placeholders of ``template`` (``[templates]``' rule)."""
    allowed = PLACEHOLDERS[template]
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise ConfigError(key, f"bad template: {exc}") from None
    unknown = fields - allowed
    if unknown:
        usable = " ".join(f"{{{f}}}" for f in sorted(allowed))
        raise ConfigError(key, f"unknown placeholder(s) {sorted(unknown)}; use {usable}")
