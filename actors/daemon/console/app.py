"""``Console``: the console's routes on the door's starlette app, and what every page
shares: the session check (no session: a page redirects to the login, anything else is
a 401 that says nothing about any job), the CSRF check on every POST, the security
headers, and the login itself (the HTTP key in a password field, compared in constant
time and rate-limited; or a one-time token from ``orchestrctl console``)."""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from actors.daemon.console import security
from actors.daemon.console.live import LiveJobs
from actors.daemon.console.render import page
from actors.daemon.console.security import CSRF_FIELD, CSRF_HEADER, secured
from actors.daemon.console.sessions import LoginLimiter, LoginTokens, Session, Sessions

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"console.js": "text/javascript", "console.css": "text/css"}
Handler = Callable[[Request, Session], Awaitable[Response]]


class Refused(Exception):
    """A request the console answers with a status and a short page."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class Console:
    def __init__(self, door: Any) -> None:
        self.door = door
        self.sessions = Sessions()
        self.tokens = LoginTokens()
        self.limiter = LoginLimiter()
        self.live = LiveJobs()

    def routes(self) -> list[BaseRoute]:
        """The login's routes and the static files (the pages are ``asking``'s and
        ``pages``'s, wrapped by ``page`` and ``api``)."""
        return [
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.page(self.logout), methods=["POST"]),
            Route("/console/login-token", self.login_token, methods=["POST"]),
            Route("/static/{name}", self.static),
        ]

    # --- what every page shares -----------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(security.COOKIE))

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page: without a session, a redirect to the login; a POST needs the CSRF token."""

        async def endpoint(request: Request) -> Response:
            session = self.session(request)
            if session is None:
                target = "/login?" + urllib.parse.urlencode({"next": request.url.path})
                return secured(RedirectResponse(target, status_code=303))
            return await self._run(handler, request, session)

        return endpoint

    def api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """An export or a stream: without a session, a 401 and nothing else."""

        async def endpoint(request: Request) -> Response:
            session = self.session(request)
            if session is None:
                return secured(JSONResponse({"error": "log in first"}, status_code=401))
            return await self._run(handler, request, session)

        return endpoint

    async def _run(self, handler: Handler, request: Request, session: Session) -> Response:
        try:
            if request.method == "POST":
                await self.check_csrf(request, session)
            return secured(await handler(request, session))
        except Refused as refused:
            body = self.render(request, "error.html", session, message=str(refused))
            return secured(HTMLResponse(body, refused.status, headers=refused.headers))

    async def check_csrf(self, request: Request, session: Session) -> None:
        given = request.headers.get(CSRF_HEADER)
        if given is None:
            given = (await self.form(request)).get(CSRF_FIELD)
        if not session.csrf_ok(given):
            raise Refused(403, "This form has expired or did not come from this console.")

    async def form(self, request: Request) -> dict[str, str]:
        """The URL-encoded form (read once: kept in the request's state; a repeated
        field's values one per line), at most
        ``[daemon] max_request_bytes``, within ``[http] body_timeout_s``."""
        if hasattr(request.state, "form"):
            return dict(request.state.form)
        limit = self.door.config.daemon.max_request_bytes
        raw = bytearray()

        async def read() -> None:
            async for chunk in request.stream():
                raw.extend(chunk)
                if len(raw) > limit:
                    raise Refused(413, f"The form is larger than {limit} bytes.")

        try:
            await asyncio.wait_for(read(), self.door.config.http.body_timeout_s)
        except TimeoutError:
            raise Refused(408, "The form was not received in time.") from None
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        form: dict[str, str] = {}
        for key, value in pairs:  # a repeated field (the models picked): one per line
            form[key] = f"{form[key]}\n{value}" if key in form else value
        request.state.form = form
        return dict(form)

    def render(self, request: Request, name: str, session: Session | None, **ctx: Any) -> str:
        return page(name, session=session, path=request.url.path, **ctx)

    # --- logging in and out ---------------------------------------------------------

    async def login(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if request.method == "GET" and token is not None:
            if not self.tokens.redeem(token):
                return self._login_page(request, "This login link is used or expired.", 403)
            return self._logged_in(request, "/")
        if request.method == "GET":
            return self._login_page(request, None, 200)
        form = await self._login_form(request)
        if isinstance(form, Response):
            return form
        client = security.client_of(request)
        wait = self.limiter.retry_after(client)
        if wait > 0:
            retry = {"Retry-After": str(math.ceil(wait))}
            return self._login_page(request, "Too many wrong keys: try again later.", 429, retry)
        given = form.get("key", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.door.key.encode()):
            self.limiter.failed(client)
            return self._login_page(request, "That is not the key.", 401)
        return self._logged_in(request, safe_next(form.get("next")))

    async def _login_form(self, request: Request) -> dict[str, str] | Response:
        try:
            form = await self.form(request)
        except Refused as refused:
            return self._login_page(request, str(refused), refused.status)
        expected = request.cookies.get(security.LOGIN_COOKIE, "")
        given = form.get(CSRF_FIELD, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return self._login_page(request, "The login form expired: try again.", 403)
        return form

    def _login_page(
        self,
        request: Request,
        error: str | None,
        status: int,
        headers: dict[str, str] | None = None,
    ) -> Response:
        token = request.cookies.get(security.LOGIN_COOKIE) or secrets.token_urlsafe(32)
        next_path = safe_next(request.query_params.get("next"))
        body = self.render(
            request, "login.html", None, error=error, login_csrf=token, next_path=next_path
        )
        response = HTMLResponse(body, status, headers=headers)
        security.set_login_cookie(response, request, token)
        return secured(response)

    def _logged_in(self, request: Request, target: str) -> Response:
        session = self.sessions.create()
        response = RedirectResponse(target, status_code=303)
        security.set_session_cookie(response, request, session, int(self.sessions.ttl_s))
        return secured(response)

    async def logout(self, request: Request, session: Session) -> Response:
        self.sessions.drop(session.id)
        response = RedirectResponse("/login", status_code=303)
        security.clear_session_cookie(response)
        return response

    async def login_token(self, request: Request) -> Response:
        """A one-time login path for ``orchestrctl console`` (which holds the HTTP key)."""
        self.door.authorise(request)
        token = self.tokens.issue()
        return secured(JSONResponse({"path": "/login?" + urllib.parse.urlencode({"token": token})}))

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return secured(Response("not found", 404, media_type="text/plain"))
        response = FileResponse(STATIC / name, media_type=STATIC_FILES[name])
        secured(response)
        response.headers["Cache-Control"] = "no-cache"
        return response


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path of this console, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
