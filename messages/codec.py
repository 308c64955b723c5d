"""The socket codec: JSON-RPC 2.0, one object per line, UTF-8, with a size cap.

Pure code (no sockets, no threads): ``Framer`` splits a byte stream into lines and
enforces ``max_request_bytes``; ``decode_request`` turns a line into a ``Request`` or
raises the ``ProtocolError`` to answer with; ``encode_*`` build response lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from messages.errors import (
    InvalidParams,
    OrchestratorError,
    ParseError,
    ProtocolError,
    RequestTooLarge,
)

_frozen = {"frozen": True, "slots": True, "kw_only": True}

RequestId = str | int | None


@dataclass(**_frozen)
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


def decode_request(line: bytes) -> Request:
    """One line as a ``Request``; raises ``ParseError`` or ``ProtocolError`` (invalid request)."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a request must be a JSON object")
    request_id = data.get("id")
    if request_id is not None and (
        isinstance(request_id, bool) or not isinstance(request_id, str | int)
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
    return Request(id=request_id, method=method, params=params, is_notification="id" not in data)


def request_id_of(exc: OrchestratorError) -> RequestId:
    """The id a decoding error could still recover (else null)."""
    data = exc.data
    return data.get("id") if isinstance(data, dict) else None


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def encode_result(request_id: RequestId, result: Any) -> bytes:
    return _line({"jsonrpc": "2.0", "id": request_id, "result": result})


def encode_error(request_id: RequestId, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _line({"jsonrpc": "2.0", "id": request_id, "error": error})


def encode_exception(request_id: RequestId, exc: OrchestratorError, data: Any = None) -> bytes:
    payload = data
    if payload is None and not (isinstance(exc.data, dict) and set(exc.data) == {"id"}):
        payload = exc.data
    return encode_error(request_id, exc.rpc_code, exc.message, payload)


def encode_notification(method: str, params: Mapping[str, Any]) -> bytes:
    return _line({"jsonrpc": "2.0", "method": method, "params": dict(params)})


# --- params of `ask` --------------------------------------------------------------------

ASK_PARAMS = {
    "prompt",
    "models",
    "rounds",
    "strategy",
    "synthesizer",
    "timeout_s",
    "stream",
    "metadata",
    "schema",
    "deterministic",
    "early_exit",
    "max_cost_usd",
    "answer_pattern",
}


def _string_list(key: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidParams(f"{key} must be a list of non-empty strings")
    return tuple(value)


def ask_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated ``ask`` params as keyword arguments for ``messages.Ask`` (+ ``stream``)."""
    unknown = set(params) - ASK_PARAMS
    if unknown:
        raise InvalidParams(f"unknown param(s) {sorted(unknown)}; known: {sorted(ASK_PARAMS)}")
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidParams("prompt must be a non-empty string")
    out: dict[str, Any] = {
        "prompt": prompt,
        "models": _string_list("models", params.get("models")),
        "rounds": _string_list("rounds", params.get("rounds")),
        "stream": params.get("stream", False),
        "metadata": params.get("metadata") or {},
    }
    for key in ("strategy", "synthesizer", "answer_pattern"):
        value = params.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidParams(f"{key} must be a string")
        out[key] = value
    for key in ("deterministic", "early_exit"):
        value = params.get(key, False)
        if not isinstance(value, bool):
            raise InvalidParams(f"{key} must be a boolean")
        out[key] = value
    schema = params.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidParams("schema must be a JSON Schema object")
    out["schema"] = schema
    budget = params.get("max_cost_usd")
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0
    ):
        raise InvalidParams("max_cost_usd must be a positive number")
    out["max_cost_usd"] = None if budget is None else float(budget)
    timeout = params.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidParams("timeout_s must be a positive number")
    out["timeout_s"] = None if timeout is None else float(timeout)
    if not isinstance(out["stream"], bool):
        raise InvalidParams("stream must be a boolean")
    if not isinstance(out["metadata"], dict):
        raise InvalidParams("metadata must be an object")
    return out


def job_id_param(params: Mapping[str, Any]) -> str:
    job_id = params.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise InvalidParams("job_id must be a non-empty string")
    return job_id
