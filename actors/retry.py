"""The one retry layer: tenacity's policy, driven by the model actor without sleeping.

tenacity decides *whether* and *how long*: ``retry_if_exception`` on retryable
``ProviderError``s (timeouts, connection errors, 408/409/429/5xx), random exponential
backoff, a cap on attempts. The actor does the waiting as a timer, and bounds it
by the job's deadline. A provider's ``Retry-After`` is honoured separately by pausing
the model's limiter, so the retry waits at least that long.

The SDKs' own retries are off (``max_retries=0``): this is the only layer.
"""

from __future__ import annotations

import tenacity

from messages.errors import ProviderError


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


class RetryState:
    """Retry bookkeeping for one call: tenacity's call state and its controller."""

    __slots__ = ("_controller", "_state")

    def __init__(self, controller: tenacity.Retrying) -> None:
        self._controller = controller
        self._state = tenacity.RetryCallState(controller, fn=None, args=(), kwargs={})

    @property
    def attempt(self) -> int:
        return self._state.attempt_number

    def next_delay(self, error: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with ``error``."""
        self._state.set_exception((type(error), error, error.__traceback__))
        try:
            action = self._controller.iter(self._state)
        except BaseException:  # tenacity re-raises ``error``: not retryable or out of attempts
            return None
        if not isinstance(action, tenacity.DoSleep):
            return None
        self._state.prepare_for_next_attempt()
        return float(action)


class RetryPolicy:
    """Makes a ``RetryState`` per call. One policy per model actor (tenacity's
    controller keeps per-thread iteration state, and an actor is one thread)."""

    def __init__(self, *, max_attempts: int, backoff_min_s: float, backoff_max_s: float) -> None:
        self._controller = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=tenacity.stop_after_attempt(max_attempts),
            wait=tenacity.wait_random_exponential(multiplier=backoff_min_s, max=backoff_max_s),
            reraise=True,
        )

    def start(self) -> RetryState:
        # tenacity keeps statistics per thread: begin() on the thread that drives it.
        self._controller.begin()
        return RetryState(self._controller)
