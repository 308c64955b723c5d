"""The checks a final answer passes before it is the job's answer: not empty, the job's
JSON Schema (``schema``, a ```json fence allowed) and the pipeline's ``validate`` (a regex
it must match, sections it must have); and whether a request's schema is usable at all."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import regex

from actors.strategies import PATTERN_TIMEOUT_S
from messages.errors import OrchestratorError, RoundError, SchemaError


def schema_errors(text: str, schema: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Parse ``text`` as JSON (a ```json fence is allowed) and validate it against
    ``schema``; returns (value, errors), errors empty when valid."""
    import jsonschema  # only jobs with a schema pay for this import

    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, [f"not valid JSON: {exc}"]
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    return value, errors


def validation_errors(text: str, validate: Mapping[str, Any] | None) -> list[str]:
    """What ``text`` lacks of a pipeline's ``validate``: a ``regex`` it must match (the
    ``regex`` engine, with the answer patterns' time budget) and ``required_sections``, each
    a line of its own (a Markdown heading or bold title is fine)."""
    if not validate:
        return []
    errors = []
    pattern = validate.get("regex")
    if pattern:
        try:
            found = regex.search(pattern, text, timeout=PATTERN_TIMEOUT_S * 4, concurrent=True)
        except TimeoutError:
            found = None
        if found is None:
            errors.append(f"does not match the required pattern {pattern!r}")
    for title in validate.get("required_sections", ()):
        heading = r"^[ \t]*(?:#+[ \t]*|\*\*)?" + regex.escape(title) + r"\b"
        if regex.search(heading, text, regex.IGNORECASE | regex.MULTILINE) is None:
            errors.append(f"missing the section {title!r}")
    return errors


def answer_errors(
    text: str, schema: Mapping[str, Any] | None, validate: Mapping[str, Any] | None
) -> list[str]:
    """Everything the final answer must satisfy and does not: the job's JSON Schema, then
    the pipeline's ``validate``."""
    errors = schema_errors(text, schema)[1] if schema is not None else []
    return errors + validation_errors(text, validate)


def check_schema(schema: Any) -> str | None:
    """Why ``schema`` is not a usable JSON Schema, or None when it is."""
    import jsonschema

    if not isinstance(schema, dict):
        return "schema must be a JSON object"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"invalid JSON Schema: {exc.message}"
    return None


def answer_status(
    answer: str | None,
    schema: Mapping[str, Any] | None,
    validate: Mapping[str, Any] | None,
    extra: dict[str, Any],
) -> tuple[str, OrchestratorError | None]:
    """An answered job's status after the checks every final answer passes: not empty,
    then its schema and ``validate`` (their messages go to ``extra["schema_errors"]``)."""
    if not (answer or "").strip():
        return "error", RoundError("no reply gave an answer (every answer was empty)")
    if schema is not None or validate:
        errors = answer_errors(answer or "", schema, validate)
        if errors:
            extra["schema_errors"] = tuple(errors)
            return "error", SchemaError(f"the answer failed its checks: {errors[0]}")
    return "ok", None
