"""What the HTTP door tells the metrics and the traces about each request.

``Observed`` wraps the door's ASGI app: every request's duration goes to
``http_server_request_duration_seconds`` by method, route template (never the raw path:
``/v1/models/{model_id:path}``, so ids cannot blow up the label set) and status; and while a
request runs, ``current()`` says which route it is and when it arrived, so a stream can
measure its time to the first token (``first_token``) wherever in the door it is sent.

``traceparent(headers)`` is the W3C trace context a request carries, when it is valid: the
job it starts becomes a child of the caller's span. An invalid one is ignored, as the W3C
recommendation says.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import Match

from messages.options import TRACEPARENT


@dataclass(frozen=True, slots=True)
class Arrival:
    route: str  # the route's template
    at: float  # time.monotonic() when the request arrived
    first: list[bool]  # [True] until its first token is counted


_CURRENT: contextvars.ContextVar[Arrival | None] = contextvars.ContextVar(
    "orchestrord_http_request", default=None
)


def current() -> Arrival | None:
    """The request this code runs for (None outside a request)."""
    return _CURRENT.get()


def first_token(metrics: Any, model: str) -> None:
    """Count this request's first token of an answer (once per request)."""
    arrival = _CURRENT.get()
    if arrival is not None and arrival.first[0]:
        arrival.first[0] = False
        metrics.server_first_token(arrival.route, model, time.monotonic() - arrival.at)


def traceparent(headers: Mapping[str, str]) -> str | None:
    """The request's valid W3C ``traceparent`` header, else None."""
    value = (headers.get("traceparent") or "").strip().lower()
    if TRACEPARENT.fullmatch(value) and set(value[3:35]) != {"0"} and value[:2] != "ff":
        return value
    return None


class Observed:
    """An ASGI app measured: duration by method, route template and status."""

    def __init__(self, app: Any, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route(self.app, scope)
        status = [500]  # what a request that raised before it answered counts as

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.monotonic()
        token = _CURRENT.set(Arrival(route, started, [True]))
        try:
            await self.app(scope, receive, sending)
        finally:
            _CURRENT.reset(token)
            elapsed = time.monotonic() - started
            self.metrics.http_request(scope.get("method", ""), route, status[0], elapsed)


def _route(app: Any, scope: Any) -> str:
    """The template of the route ``scope`` goes to ("" when none does: a 404)."""
    partial = ""
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", ""))
        if match == Match.PARTIAL and not partial:  # the path, not the method: a 405
            partial = str(getattr(route, "path", ""))
    return partial
