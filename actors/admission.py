"""Admission: whether a model actor's next call may start, against local or shared limits.

With local limits (the default) this is ``actors.limiter.Limiter``, asked synchronously on
the actor's thread. With ``[limits] backend = "redis"`` the buckets are shared
(``actors.sharedlimits``): the actor asks, the question runs on the I/O loop, and the
answer comes back as a ``LimitAnswered`` message, so the actor never waits on Redis.
While Redis is unreachable, ``on_unavailable = "local"`` admits calls on local buckets at
the configured rate divided by ``expected_instances`` (each process keeps its share), and
``"fail"`` refuses them; Redis is tried again after ``sharedlimits.RETRY_S``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from actors.config import LimitsConfig, ModelConfig
from actors.limiter import Limiter
from actors.runtime import IOLoop, safe_tell
from actors.sharedlimits import LimitsUnavailable, RedisLimits
from messages.events import LimitAnswered


class Admission:
    def __init__(
        self,
        model: ModelConfig,
        io: IOLoop,
        now: float,
        shared: RedisLimits | None = None,
        limits: LimitsConfig | None = None,
    ) -> None:
        self.model = model
        self.io = io
        self.shared = shared if model.rpm or model.tpm else None  # unlimited: nothing to share
        self.fail_when_unavailable = limits is not None and limits.on_unavailable == "fail"
        share = 1 if shared is None or limits is None else limits.expected_instances
        self.local = Limiter(
            rpm=model.rpm / share if model.rpm else None,
            burst=max(1.0, model.request_burst / share),
            tpm=model.tpm / share if model.tpm else None,
            now=now,
            margin_s=model.limit_margin_s,
        )
        self.asking: str | None = None  # the call whose shared admission is being asked

    # --- which limits apply now ------------------------------------------------------------

    @property
    def shared_now(self) -> bool:
        """Ask Redis (it is reachable, or it is time to try it again)."""
        return self.shared is not None and self.shared.worth_trying()

    @property
    def refusing(self) -> bool:
        """Redis is unreachable and ``on_unavailable = "fail"``: refuse calls."""
        return self.shared is not None and not self.shared_now and self.fail_when_unavailable

    # --- asking Redis (answered by a LimitAnswered message) --------------------------------

    def ask(self, call_id: str, cost: int, reply_to: Any) -> None:
        assert self.shared is not None
        self.asking = call_id
        shared, model, burst = self.shared, self.model, self.model.request_burst

        async def question() -> None:
            try:
                wait = await shared.take(model, burst, cost)
            except LimitsUnavailable:
                safe_tell(reply_to, LimitAnswered(call_id=call_id, wait=None))
                return
            safe_tell(reply_to, LimitAnswered(call_id=call_id, wait=wait))

        self.io.submit(question())

    # --- after a call -----------------------------------------------------------------------

    def reconcile(self, charged: int, actual: int, now: float) -> None:
        """Correct the token charge with the usage reported (-1: none reported)."""
        self.local.reconcile(charged, actual, now)
        if self.shared is not None and actual >= 0 and charged != actual:
            self._tell_shared(self.shared.refund, self.model, charged - actual)

    def reanchor(self, charged: int, now: float) -> None:
        """After the cold first call: see ``Limiter.reanchor``; the shared buckets too."""
        self.local.reanchor(charged, now)
        if self.shared is not None:
            self._tell_shared(self.shared.reanchor, self.model, self.model.request_burst, charged)

    def pause(self, seconds: float, now: float) -> None:
        """A provider's Retry-After: this process's buckets, and everyone's."""
        self.local.pause_until(now + seconds)
        if self.shared is not None:
            self._tell_shared(self.shared.pause, self.model, seconds, self.model.request_burst)

    def _tell_shared(self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        async def send() -> None:
            with contextlib.suppress(LimitsUnavailable):  # logged once; local buckets know
                await fn(*args)

        self.io.submit(send())
