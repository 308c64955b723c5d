"""The socket codec: JSON-RPC 2.0, one object per line, UTF-8, with a size cap.

Pure code (no sockets, no threads): ``Framer`` splits a byte stream into lines and
enforces ``max_request_bytes``; ``decode_request`` turns a line into a ``Request`` or
raises the ``ProtocolError`` to answer with; ``encode_*`` build response lines.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from messages.conversation import split
from messages.errors import (
    InvalidParams,
    OrchestratorError,
    ParseError,
    ProtocolError,
    RequestTooLarge,
)
from messages.options import ASK_OPTIONS, OPTIONS_BY_NAME, check_together

RequestId = str | int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    id: RequestId
    method: str
    params: Mapping[str, Any]
    is_notification: bool = False  # no "id": JSON-RPC says answer nothing


class Framer:
    """Splits received bytes into lines; a line longer than ``max_bytes`` raises
    ``RequestTooLarge`` (the connection is then closed by the server)."""

    __slots__ = ("_buffer", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line (the idle timeout applies while this is > 0)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        lines = []
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end < 0:
                break
            if end - start > self.max_bytes:
                raise RequestTooLarge(f"request line exceeds {self.max_bytes} bytes")
            line = bytes(self._buffer[start:end]).strip()
            if line:
                lines.append(line)
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > self.max_bytes:
            raise RequestTooLarge(f"request line exceeds {self.max_bytes} bytes")
        return lines


MAX_DEPTH = 64  # nesting of a request; JSON-RPC needs 3, a schema or metadata a few more
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(text: str) -> bool:
    """True if ``text`` holds a lone UTF-16 surrogate (valid JSON, not encodable as UTF-8)."""
    return _SURROGATE.search(text) is not None


def check_value(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` (parsed JSON) cannot be accepted, or None: nesting deeper than
    ``max_depth``, a string holding a lone surrogate, or NaN or Infinity (Python's JSON
    parser accepts them; JSON has no such numbers). Iterative: no recursion limit."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a JSON number (NaN and Infinity are not JSON)"
        if isinstance(item, str):
            if has_surrogate(item):
                return "a string holds a lone UTF-16 surrogate (not valid Unicode text)"
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return f"nesting deeper than {max_depth} levels"
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
    return None


def parse_line(line: bytes) -> Any:
    """One line as JSON; raises ``ParseError`` for anything that is not (invalid UTF-8,
    bad syntax, integers over Python's 4,300-digit limit, nesting that overflows the
    parser). A list is a JSON-RPC batch; each element goes through ``decode_request``."""
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, huge integers
        raise ParseError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ParseError("not valid JSON: nested too deeply") from None


def decode_request(data: Any) -> Request:
    """One request object (parsed JSON, or a line of bytes) as a ``Request``; raises
    ``ParseError``, ``ProtocolError`` (invalid request) or ``InvalidParams``."""
    if isinstance(data, bytes | bytearray):
        data = parse_line(bytes(data))
    if not isinstance(data, dict):
        raise ProtocolError("a request must be a JSON object")
    request_id = data.get("id")
    if request_id is not None and (
        isinstance(request_id, bool)
        or not isinstance(request_id, str | int)
        or (isinstance(request_id, str) and has_surrogate(request_id))
    ):
        raise ProtocolError("id must be a string, an integer or null")
    if data.get("jsonrpc") != "2.0":
        raise ProtocolError('"jsonrpc" must be "2.0"', data={"id": request_id})
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise ProtocolError('"method" must be a non-empty string', data={"id": request_id})
    params = data.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("params must be an object", data={"id": request_id})
    problem = check_value(params, MAX_DEPTH - 1)
    if problem is not None:
        raise InvalidParams(f"params rejected: {problem}", data={"id": request_id})
    return Request(id=request_id, method=method, params=params, is_notification="id" not in data)


def request_id_of(exc: OrchestratorError) -> RequestId:
    """The id a decoding error could still recover (else null)."""
    data = exc.data
    return data.get("id") if isinstance(data, dict) else None


def decode_failure(data: Any, exc: ProtocolError) -> dict[str, Any] | None:
    """The response to a request ``decode_request`` refused, or None: a notification (a
    valid request without ``id``) whose params are bad gets no reply, as JSON-RPC 2.0
    says of every notification. What is not a valid request at all is answered (with id
    null), as the specification's examples are."""
    if isinstance(exc, InvalidParams) and isinstance(data, dict) and "id" not in data:
        return None
    return response_exception(request_id_of(exc), exc)


def _line(obj: Any) -> bytes:
    """One JSON line in UTF-8. Text that cannot be UTF-8 (a lone surrogate that slipped
    through) is escaped instead, so an answer always goes out."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii") + b"\n"


def response_result(request_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def response_error(
    request_id: RequestId, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def response_exception(
    request_id: RequestId, exc: OrchestratorError, data: Any = None
) -> dict[str, Any]:
    payload = data
    if payload is None and not (isinstance(exc.data, dict) and set(exc.data) == {"id"}):
        payload = exc.data
    return response_error(request_id, exc.rpc_code, exc.message, payload)


def encode_response(response: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """A response object, or a batch's array of them, as one line."""
    return _line(response)


def encode_result(request_id: RequestId, result: Any) -> bytes:
    return _line(response_result(request_id, result))


def encode_error(request_id: RequestId, code: int, message: str, data: Any = None) -> bytes:
    return _line(response_error(request_id, code, message, data))


def encode_exception(request_id: RequestId, exc: OrchestratorError, data: Any = None) -> bytes:
    return _line(response_exception(request_id, exc, data))


def encode_notification(method: str, params: Mapping[str, Any]) -> bytes:
    return _line({"jsonrpc": "2.0", "method": method, "params": dict(params)})


# --- params of `ask` --------------------------------------------------------------------


def ask_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated ``ask`` params (every option of ``ASK_OPTIONS``, defaults filled in) as
    keyword arguments for ``messages.Ask``, plus ``stream``."""
    unknown = set(params) - set(OPTIONS_BY_NAME)
    if unknown:
        known = sorted(OPTIONS_BY_NAME)
        raise InvalidParams(f"unknown param(s) {sorted(unknown)}; known: {known}")
    if ("prompt" in params) == ("messages" in params):
        raise InvalidParams("give exactly one of prompt (a string) and messages (a conversation)")
    out = {o.name: o.validate(params.get(o.name)) for o in ASK_OPTIONS if o.name in params}
    out.update({o.name: o.validate(None) for o in ASK_OPTIONS if o.name not in params})
    check_together(out)  # options that depend on each other (tool_choice needs tools)
    if out["messages"] is not None:
        system, _, out["prompt"] = split(out["messages"])
        if system is not None:
            if out["system"] is not None:
                raise InvalidParams("give the system prompt once: as system or in messages")
            out["system"] = system
    out["metadata"] = out["metadata"] or {}
    return out


def job_id_param(params: Mapping[str, Any]) -> str:
    job_id = params.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise InvalidParams("job_id must be a non-empty string")
    return job_id
