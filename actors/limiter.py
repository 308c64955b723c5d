"""Token-bucket rate limiting for one model: requests per minute and tokens per minute.

Pure code: every method takes ``now`` (seconds, any monotonic origin), so tests
drive it with a fake clock. The model actor asks ``wait_s`` for the call at the head
of its queue; zero means go (and ``take`` charges it), anything else is when to look
again, which the actor turns into a timer. It never sleeps.

Guarantee: over any window of length ``w``, admitted requests are at most
``burst + rpm/60 * w`` and admitted tokens at most ``tpm + tpm/60 * w``.

A call goes only when its bucket would keep a small *reserve* (``margin_s`` of refill,
capped so that a call always fits): the provider's own bucket sees our calls after a
network delay that varies, and the reserve absorbs up to ``margin_s`` of that jitter.
It costs a one-time shift of ``margin_s``, not rate: at saturation we still send at
the full configured rate.
"""

from __future__ import annotations

import math

from messages.errors import OverBudget


class TokenBucket:
    """``capacity`` units, refilled continuously at ``rate`` units per second."""

    __slots__ = ("capacity", "level", "rate", "reserve", "stamp")

    def __init__(self, capacity: float, rate: float, now: float, margin_s: float = 0.0) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError("capacity and rate must be > 0")
        self.capacity = capacity
        self.rate = rate
        self.level = capacity
        self.stamp = now
        self.reserve = rate * margin_s

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` units (plus the reserve, as far as it fits) are
        available (0 when they are now)."""
        self._refill(now)
        need = max(amount, min(self.capacity, amount + self.reserve))
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount

    def cap(self, level: float, now: float) -> None:
        """Lower the level to at most ``level`` (never raise it)."""
        self._refill(now)
        self.level = min(self.level, level)

    def adjust(self, delta: float, now: float) -> None:
        """Give back (``delta > 0``) or charge more (``delta < 0``) after the fact."""
        self._refill(now)
        self.level = min(self.capacity, self.level + delta)


class Limiter:
    """Both buckets of one model, plus a pause set by a provider's ``Retry-After``."""

    def __init__(
        self,
        *,
        rpm: float | None,
        burst: float,
        tpm: float | None,
        now: float,
        margin_s: float = 0.0,
    ) -> None:
        self.requests = TokenBucket(burst, rpm / 60.0, now, margin_s) if rpm else None
        self.tokens = TokenBucket(tpm, tpm / 60.0, now, margin_s) if tpm else None
        self.paused_until = -math.inf

    def check_admissible(self, cost: int) -> None:
        """Reject at once a call whose token estimate can never fit the bucket."""
        if self.tokens is not None and cost > self.tokens.capacity:
            raise OverBudget(
                f"estimated {cost} tokens exceed the model's tpm bucket of "
                f"{self.tokens.capacity:.0f}; lower max_tokens or the prompt size"
            )

    def wait_s(self, cost: int, now: float) -> float:
        """Seconds to wait before a call of ``cost`` tokens may start (0: now)."""
        wait = max(0.0, self.paused_until - now)
        if self.requests is not None:
            wait = max(wait, self.requests.wait_s(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_s(cost, now))
        return wait

    def take(self, cost: int, now: float) -> None:
        """Charge one request and ``cost`` tokens (call only when ``wait_s`` is 0)."""
        if self.requests is not None:
            self.requests.take(1, now)
        if self.tokens is not None:
            self.tokens.take(cost, now)

    def reconcile(self, charged: int, actual: int, now: float) -> None:
        """Correct the token charge with the usage the provider reported."""
        if self.tokens is not None and actual >= 0:
            self.tokens.adjust(charged - actual, now)

    def reanchor(self, charged: int, now: float) -> None:
        """After a cold first call: charge it as if it reached the provider only now.

        The first request through an SDK can spend a long time before it leaves (client
        set-up, first connection); the provider's bucket took it at arrival, ours at
        send. Capping our level at "full minus that call" keeps ours at or below
        theirs, so the calls that follow are not refused.
        """
        if self.requests is not None:
            self.requests.cap(self.requests.capacity - 1, now)
        if self.tokens is not None:
            self.tokens.cap(self.tokens.capacity - charged, now)

    def pause_until(self, until: float) -> None:
        """Hold every call of this model until ``until`` (a provider said Retry-After).

        The request bucket is also emptied as of ``until`` (one call's worth left), so
        the calls queued during the pause resume at the bucket's pace, not all at once:
        a burst right after the pause would only meet the provider's limit again."""
        self.paused_until = max(self.paused_until, until)
        if self.requests is not None:
            self.requests.cap(1.0, self.paused_until)
