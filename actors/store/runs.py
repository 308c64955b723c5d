"""Listing past runs: the ``runs`` filters as SQL, and the records ``runs`` and ``job``
return. Pure functions; the run store executes them on its writer thread."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from messages.errors import InvalidParams

PREVIEW = 120  # characters of the prompt shown in a listing
MAX_LIMIT = 10_000
STATUSES = ("running", "ok", "error", "timeout", "cancelled", "interrupted")
COLUMNS = (
    "job_id, accepted_at, status, strategy, models, elapsed_ms, cost_usd, prompt, "
    "metadata, options, result"
)


def parse_time(key: str, value: Any) -> float:
    """ISO 8601 (a date, or a date and time; UTC unless it says otherwise) or Unix
    seconds, as Unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp()
    raise InvalidParams(f"{key} must be an ISO 8601 time or Unix seconds, got {value!r}")


def iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds")


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def where(params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) for the ``runs`` filters."""
    clauses: list[str] = []
    args: list[Any] = []
    status = params.get("status")
    if status is not None:
        if status not in STATUSES:
            raise InvalidParams(f"status must be one of {list(STATUSES)}")
        clauses.append("status = ?")
        args.append(status)
    for key, op in (("since", ">="), ("until", "<")):
        if params.get(key) is not None:
            clauses.append(f"accepted_at {op} ?")
            args.append(parse_time(key, params[key]))
    text = params.get("text")
    if text is not None:
        if not isinstance(text, str) or not text:
            raise InvalidParams("text must be a non-empty string")
        clauses.append("instr(prompt, ?) > 0")
        args.append(text)
    metadata = params.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidParams("metadata must be an object of keys and values to match")
        for key, value in metadata.items():
            clauses.extend(_metadata_clause(key, value, args))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _metadata_clause(key: str, value: Any, args: list[Any]) -> list[str]:
    path = _json_path(key)
    if value is None:
        args.append(path)
        return ["json_type(metadata, ?) = 'null'"]
    if isinstance(value, dict | list):
        args.extend([path, json.dumps(value, separators=(",", ":"))])
        return ["json_extract(metadata, ?) = json(?)"]
    args.extend([path, int(value) if isinstance(value, bool) else value])
    return ["json_extract(metadata, ?) = ?"]


def page(params: Mapping[str, Any]) -> tuple[int, int]:
    limit, offset = params.get("limit", 50), params.get("offset", 0)
    for key, value, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value:
            raise InvalidParams(f"{key} must be a whole number >= {low}")
    return min(limit, MAX_LIMIT), offset


def listing(row: tuple[Any, ...]) -> dict[str, Any]:
    """One ``runs`` entry."""
    job_id, accepted, status, strategy, models, elapsed, cost, prompt, metadata, options, _ = row
    requested = json.loads(options)
    return {
        "job_id": job_id,
        "created": iso(accepted),
        "status": status,
        "strategy": strategy or requested.get("strategy"),
        "models": json.loads(models) if models else requested.get("models"),
        "elapsed_ms": elapsed,
        "cost_usd": cost,
        "prompt_preview": prompt[:PREVIEW] + ("…" if len(prompt) > PREVIEW else ""),
        "metadata": json.loads(metadata),
    }


def record(row: tuple[Any, ...]) -> dict[str, Any]:
    """The whole stored job (``job``, ``export``): its result, prompt, metadata, when."""
    job_id, accepted, status, strategy, _, _, _, prompt, metadata, options, result = row
    out: dict[str, Any] = (
        json.loads(result) if result else {"job_id": job_id, "status": status, "strategy": strategy}
    )
    requested = json.loads(options)
    out.update(
        prompt=prompt,
        metadata=json.loads(metadata),
        options=requested,
        created=iso(accepted),
    )
    if requested.get("messages"):  # a conversation: its turns, as they were sent
        out["messages"] = [  # dicts; a job stored before tool messages: (role, content)
            m if isinstance(m, dict) else {"role": m[0], "content": m[1]}
            for m in requested["messages"]
        ]
    return out
