"""Reading a request's JSON body: at most ``[daemon] max_request_bytes``, within
``[http] body_timeout_s`` (a client that stalls mid-body is answered 408 and dropped,
never waited on for ever), strict JSON (no NaN), and an object."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from actors.daemon.http.errors import HttpError
from messages.codec import check_value


async def read_json(request: Request, limit: int, timeout_s: float) -> dict[str, Any]:
    """The body as a JSON object, or an ``HttpError`` (400, 408, 413) saying what is wrong."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"the body is larger than {limit} bytes", "request_too_large")
    try:
        raw = await asyncio.wait_for(_read(request, limit), timeout_s)
    except TimeoutError:
        message = f"the body was not received within {timeout_s:g} s"
        raise HttpError(408, message, "request_timeout") from None
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HttpError(400, f"the body is not valid JSON: {exc}", "invalid_json") from None
    problem = check_value(body)
    if problem is not None:
        raise HttpError(400, f"the body is not usable: {problem}", "invalid_json")
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object", "invalid_json")
    return body


async def _read(request: Request, limit: int) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise HttpError(413, f"the body is larger than {limit} bytes", "request_too_large")
    return bytes(raw)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
