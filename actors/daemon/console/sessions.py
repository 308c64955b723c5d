"""Who is logged in to the console: sessions, one-time login tokens and the login's
rate limit. In memory (a daemon restart logs everyone out); every clock is injectable,
so expiry and limits are tested without waiting."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

SESSION_TTL_S = 12 * 3600.0  # a session lasts this long from its login
LOGIN_TOKEN_TTL_S = 300.0  # a one-time login URL is good for this long
MAX_SESSIONS = 1000  # the oldest is dropped beyond this
MAX_TOKENS = 100
FAILURES_PER_CLIENT = 5  # wrong keys per client in WINDOW_S, then 429
FAILURES_IN_ALL = 30  # wrong keys from everyone in WINDOW_S, then 429 for everyone
WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str  # the token every state-changing request of this session carries
    expires: float  # on the session store's clock

    def csrf_ok(self, given: str | None) -> bool:
        """``given`` is this session's CSRF token (compared in constant time)."""
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.csrf.encode()
        )


class Sessions:
    """Sessions by cookie value; an expired one is gone on its next lookup."""

    def __init__(self, clock: Clock = time.monotonic, ttl_s: float = SESSION_TTL_S) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._by_id: dict[str, Session] = {}

    def create(self) -> Session:
        self._forget_expired()
        while len(self._by_id) >= MAX_SESSIONS:
            del self._by_id[next(iter(self._by_id))]  # the oldest
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires=self.clock() + self.ttl_s,
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if self.clock() >= session.expires:
            del self._by_id[session_id]
            return None
        return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

    def _forget_expired(self) -> None:
        now = self.clock()
        for sid in [s.id for s in self._by_id.values() if now >= s.expires]:
            del self._by_id[sid]


class LoginTokens:
    """One-time login tokens (``orchestrctl console``): each opens one session, once,
    within ``ttl_s``."""

    def __init__(self, clock: Clock = time.monotonic, ttl_s: float = LOGIN_TOKEN_TTL_S) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._expiry: dict[str, float] = {}

    def issue(self) -> str:
        now = self.clock()
        self._expiry = {t: e for t, e in self._expiry.items() if e > now}
        while len(self._expiry) >= MAX_TOKENS:
            del self._expiry[next(iter(self._expiry))]
        token = secrets.token_urlsafe(32)
        self._expiry[token] = now + self.ttl_s
        return token

    def redeem(self, token: str | None) -> bool:
        """True once for a token issued and not expired; the token is spent either way."""
        if not token:
            return False
        for known in list(self._expiry):  # constant time against each, no early exit
            if hmac.compare_digest(known.encode(), token.encode("utf-8", "surrogateescape")):
                return self.clock() < self._expiry.pop(known)
        return False


class LoginLimiter:
    """Wrong keys are counted per client and in all over a sliding window; past either
    limit the login answers 429 until the window has moved on."""

    def __init__(
        self,
        clock: Clock = time.monotonic,
        per_client: int = FAILURES_PER_CLIENT,
        in_all: int = FAILURES_IN_ALL,
        window_s: float = WINDOW_S,
    ) -> None:
        self.clock = clock
        self.per_client = per_client
        self.in_all = in_all
        self.window_s = window_s
        self._failures: deque[tuple[float, str]] = deque()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = self.clock()
        while self._failures and self._failures[0][0] <= now - self.window_s:
            self._failures.popleft()
        mine = [t for t, c in self._failures if c == client]
        waits = [0.0]
        if len(mine) >= self.per_client:
            waits.append(mine[-self.per_client] + self.window_s - now)
        if len(self._failures) >= self.in_all:
            waits.append(self._failures[-self.in_all][0] + self.window_s - now)
        return max(waits)

    def failed(self, client: str) -> None:
        self._failures.append((self.clock(), client))
