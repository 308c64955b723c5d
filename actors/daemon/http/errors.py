"""Errors of the HTTP door in OpenAI's error body, with its status codes.

``HttpError`` is what a route raises or returns: ``response()`` is the OpenAI-shaped
JSON answer. A failure that spent model calls, or would spend them again, carries
``x-should-retry: false``: openai-python retries 408, 409, 429 and 5xx twice by default,
and each retry of a failed ensemble would pay for a whole panel again. Only a refusal
before any work (429 overloaded, 503 draining or no model up) invites a retry, with
``Retry-After``. ``StreamFailed`` is a failure after a stream's first byte.
"""

from __future__ import annotations

import json
from typing import Any

from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from messages.errors import OrchestratorError, OverloadedError, status_of
from messages.results import JobResult

PREFIX = "orchestrord"  # the model name's prefix, and the key of the job result in bodies
TYPE_OF = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
RETRYABLE = frozenset({408, 429, 503})  # refused before any work: asking again is fine
NO_RETRY = {"x-should-retry": "false"}


class HttpError(Exception):
    """An error answer: ``status``, a message for people, OpenAI's ``code`` and
    ``param`` (the request field at fault), and extras (``retry_after_s``, ``result``)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.extra = extra

    @property
    def kind(self) -> str:
        """OpenAI's error ``type``."""
        fallback = "server_error" if self.status >= 500 else "invalid_request_error"
        return TYPE_OF.get(self.status, fallback)

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.kind, "param": self.param}
        body: dict[str, Any] = {"error": {**error, "code": self.code}}
        if "result" in self.extra:
            body[PREFIX] = self.extra["result"]
        return body

    def headers(self) -> dict[str, str]:
        if "retry_after_s" in self.extra:
            return {"Retry-After": str(max(1, round(self.extra["retry_after_s"])))}
        return {} if self.status in RETRYABLE else dict(NO_RETRY)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers())

    @classmethod
    def of(cls, exc: OrchestratorError) -> HttpError:
        """An error raised before the job ran (bad params, overloaded, shutting down)."""
        extra: dict[str, Any] = {}
        if isinstance(exc, OverloadedError):
            extra["retry_after_s"] = float((exc.data or {}).get("retry_after_s", 1.0))
        return cls(exc.status_code, exc.message, exc.code, param=_param(exc.message), **extra)

    @classmethod
    def failed(cls, result: JobResult) -> HttpError:
        """A job that ran and failed: its error, with the partial result."""
        code = result.error.code if result.error else result.status
        message = result.error.message if result.error else f"the job ended {result.status}"
        return cls(status_of(code), message, code, result=result.to_dict())


class StreamFailed(HttpError):
    """A failure after a stream started: the door writes it as a last ``data:`` event
    holding the error body (what openai-python raises as ``APIError``), then closes."""

    def event(self) -> str:
        return f"data: {json.dumps(self.body())}\n\n"

    @classmethod
    def of_error(cls, error: HttpError) -> StreamFailed:
        return cls(error.status, error.message, error.code, param=error.param, **error.extra)


def _param(message: str) -> str | None:
    """The field an ``invalid_params`` message starts with (``top_p must be ...``)."""
    head = message.split(" ", 1)[0].split("[", 1)[0].split(".", 1)[0].rstrip(":")
    return head if head.isidentifier() else None


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return exc.response()


async def on_not_found(request: Request, exc: Exception) -> Response:
    return HttpError(404, f"no route {request.url.path}", "not_found").response()


async def on_not_allowed(request: Request, exc: Exception) -> Response:
    message = f"{request.method} is not allowed on {request.url.path}"
    return HttpError(405, message, "method_not_allowed").response()


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """An error nobody planned for: an OpenAI-shaped 500, never a bare one."""
    logger.opt(exception=exc).error(
        "HTTP {} {}: unexpected error", request.method, request.url.path
    )
    return HttpError(500, f"internal error: {type(exc).__name__}", "internal_error").response()
