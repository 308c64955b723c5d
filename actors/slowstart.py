"""How many calls a model actor lets be in flight at once: its window.

Slow start: a rate-limited model sends one call at a time until one has come back, so
the SDK's cold first request cannot bunch up calls the limiter spaced. After a 429 the
window drops to one call and doubles with each call that comes back without one, so
the calls queued during the pause do not all go at once and start the storm again.
A model without rate limits starts at its ``max_concurrency``.
"""

from __future__ import annotations


class SlowStart:
    """The window of one model actor, between 1 and ``limit`` (its max_concurrency)."""

    def __init__(self, limit: int, rate_limited: bool) -> None:
        self.limit = limit
        self.cold = rate_limited  # no call has come back yet
        self.size = 1 if self.cold else limit

    def returned(self, rate_limited: bool) -> bool:
        """A call came back (``rate_limited``: with a 429). True when it was the first:
        the window opens fully, and the limiter re-anchors on that moment."""
        if self.cold:
            self.cold = False
            self.size = self.limit
            return True
        if not rate_limited:
            self.size = min(self.limit, self.size * 2)
        return False

    def rate_limited(self) -> None:
        """A 429: one call at a time again, once the pause is over."""
        self.size = 1
