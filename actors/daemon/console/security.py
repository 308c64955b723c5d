"""What every console response carries and every request must show: the security
headers (a strict Content-Security-Policy: scripts and styles from ``/static`` only, no
inline code, no remote anything), the session cookie, and the CSRF check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from actors.daemon.console.sessions import Session

COOKIE = "orchestrord_session"
LOGIN_COOKIE = "orchestrord_login"  # the login form's CSRF token, before any session
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # the sanitiser drops remote images; charts are inline SVG
        "connect-src 'self'",  # the live view's EventSource and cancel
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a login URL's token never leaves in a Referer
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secured(response: Response) -> Response:
    """``response`` with the console's security headers."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def set_session_cookie(response: Response, request: Request, session: Session, ttl: int) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # loopback HTTP must work; behind TLS: Secure
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def client_of(request: Request) -> str:
    """The address the login's rate limit counts against."""
    return request.client.host if request.client else "unknown"
