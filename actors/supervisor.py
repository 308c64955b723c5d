"""SupervisorActor: starts the model actors, restarts the ones that crash.

It owns the ``name -> ActorRef`` table and tells every subscriber (the coordinator,
the synthesizer) a fresh ``RosterChanged`` whenever it changes, since a restart
makes a new ref. Restarts are one-for-one, after an exponential backoff with
jitter between ``backoff_min_s`` and ``backoff_max_s``; more than ``max_restarts``
failures within ``window_s`` mark the model ``down`` (rounds skip it) with one log
line. An actor that dies in ``on_start`` (where pykka calls no ``on_failure``) is
noticed too: by its own ``ActorFailed``, or, as a backstop, by a start check timer.

It stops only the actors it started: never ``ActorRegistry.stop_all()``.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pykka
from loguru import logger

from actors.config import Config, ModelConfig
from actors.metrics import Metrics
from actors.model import ModelActor, ProviderFactory
from actors.providers import make_provider, unusable_models
from actors.runtime import IOLoop, safe_tell
from messages.commands import GetStatus, Subscribe, SuperviseCore
from messages.events import (
    ActorFailed,
    ActorStarted,
    ModelHealthy,
    ModelUnhealthy,
    RosterChanged,
    RosterEntry,
    TimerFired,
)
from messages.results import ErrorInfo

PERMANENT_START_ERRORS = frozenset({"provider_rejected", "config_error"})
"""A start that failed with these will fail again: down at once (probed after the
cool-down), not a restart loop."""


@dataclass(slots=True)
class _Core:
    """A supervised core actor (coordinator, synthesizer): restarted on every crash."""

    start: Callable[..., Any]
    ref: Any
    generation: int = 1
    restarts: int = 0


@dataclass(slots=True)
class _Child:
    config: ModelConfig
    entry: RosterEntry
    started: bool = False
    failures: deque[float] = field(default_factory=deque)
    parked: Any = None  # a live actor kept out of rounds while its circuit is open
    probing: bool = False  # half-open: the next outcome decides
    cooldown: float = 0.0  # the last cool-down (doubles after a failed probe)


class SupervisorActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        config: Config,
        io: IOLoop,
        metrics: Metrics,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        provider_factory: ProviderFactory = make_provider,
        shared_limits: Any = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.shared_limits = shared_limits  # actors.sharedlimits.RedisLimits, or None
        self.policy = config.supervision
        self.io = io
        self.metrics = metrics
        self.environ = environ if environ is not None else {}
        self.clock = clock
        self.rng = rng or random.Random()
        self.provider_factory = provider_factory
        self.children: dict[str, _Child] = {}
        self.core: dict[str, _Core] = {}
        self.subscribers: list[Any] = []

    def on_start(self) -> None:
        unusable = unusable_models(self.config.models, self.environ)
        for model in self.config.models:
            entry = RosterEntry(
                name=model.name, provider=model.provider, state="restarting", ref=None
            )
            self.children[model.name] = _Child(config=model, entry=entry)
            if model.name in unusable:
                # It cannot work in this environment: say so once, never restart it.
                reason = unusable[model.name]
                logger.error("model {} is down: {}", model.name, reason)
                self._set(model.name, state="down", reason=reason, down_since=time.time())
            else:
                self._spawn(model.name)

    def on_stop(self) -> None:
        self._stop_children()

    # --- messages ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ActorStarted):
            child = self.children.get(message.name)
            if child is not None and child.entry.generation == message.generation:
                child.started = True
        elif isinstance(message, ActorFailed) and message.name in self.core:
            self._on_core_failed(message)
        elif isinstance(message, ActorFailed):
            self._on_failed(message)
        elif isinstance(message, SuperviseCore):
            self.core[message.name] = _Core(start=message.start, ref=message.ref)
        elif isinstance(message, ModelUnhealthy):
            child = self._current(message.name, message.generation)
            if child is not None and child.entry.state == "up":
                self._take_down(message.name, f"circuit open: {message.reason}", child.entry.ref)
        elif isinstance(message, ModelHealthy):
            child = self._current(message.name, message.generation)
            if child is not None and (child.probing or child.entry.reason):
                logger.info("model {} is healthy again", message.name)
                child.probing, child.cooldown = False, 0.0
                child.failures.clear()
                self._set(message.name, reason="", down_since=None, next_probe=None, cooldown_s=0.0)
                self._publish()
        elif isinstance(message, TimerFired):
            self._on_timer(message)
        elif isinstance(message, Subscribe):
            self.subscribers.append(message.ref)
            safe_tell(message.ref, RosterChanged(roster=self.roster()))
        elif isinstance(message, GetStatus):
            return self.roster()
        else:
            return super().on_receive(message)
        return None

    def roster(self) -> tuple[RosterEntry, ...]:
        return tuple(child.entry for child in self.children.values())

    def _publish(self) -> None:
        roster = RosterChanged(roster=self.roster())
        self.subscribers = [ref for ref in self.subscribers if safe_tell(ref, roster)]

    def _current(self, name: str, generation: int) -> _Child | None:
        """The child ``name`` if ``generation`` is its current actor (else a stale report)."""
        child = self.children.get(name)
        return child if child is not None and child.entry.generation == generation else None

    def _set(self, name: str, **changes: Any) -> None:
        child = self.children[name]
        child.entry = replace(child.entry, **changes)

    # --- starting and restarting -------------------------------------------------------

    def _spawn(self, name: str) -> None:
        child = self.children[name]
        generation = child.entry.generation + 1
        ref = ModelActor.start(
            config=child.config,
            io=self.io,
            metrics=self.metrics,
            supervisor=self.actor_ref,
            generation=generation,
            backoff=(self.policy.backoff_min_s, self.policy.backoff_max_s),
            circuit_failures=self.policy.circuit_failures,
            shared_limits=self.shared_limits,
            limits=self.config.limits,
            environ=self.environ,
            provider_factory=self.provider_factory,
        )
        child.started = False
        self._set(name, state="up", ref=ref, generation=generation)
        self.io.tell_later(
            self.policy.start_timeout_s,
            self.actor_ref,
            TimerFired(kind="start_check", key=name, generation=generation),
        )
        self._publish()

    def _on_timer(self, msg: TimerFired) -> None:
        if msg.kind == "core":
            self._restart_core(msg.key)
            return
        child = self.children.get(msg.key)
        if child is None:
            return
        if msg.kind == "restart" and child.entry.state == "restarting":
            self._spawn(msg.key)
        elif msg.kind == "probe" and child.entry.state == "down":
            if msg.generation == child.entry.generation:
                self._probe(msg.key)
        elif msg.kind == "start_check" and msg.generation == child.entry.generation:
            ref = child.entry.ref
            if not child.started and ref is not None and not ref.is_alive():
                self._on_failed(
                    ActorFailed(
                        name=msg.key,
                        generation=msg.generation,
                        error=ErrorInfo(code="internal_error", message="died during on_start"),
                    )
                )

    def _on_failed(self, msg: ActorFailed) -> None:
        child = self.children.get(msg.name)
        if child is None or msg.generation != child.entry.generation:
            return  # a stale report about an actor already replaced
        if child.entry.state != "up":
            return
        now = self.clock()
        child.failures.append(now)
        while child.failures and child.failures[0] < now - self.policy.window_s:
            child.failures.popleft()
        restarts = child.entry.restarts
        last = f"{msg.error.code}: {msg.error.message[:200]}"
        if child.probing:
            self._take_down(msg.name, f"the probe crashed ({last})")
            return
        if not child.started and msg.error.code in PERMANENT_START_ERRORS:
            self._take_down(msg.name, f"cannot start: {msg.error.message[:200]}")
            return
        if len(child.failures) > self.policy.max_restarts:
            self._take_down(
                msg.name,
                f"{len(child.failures)} crashes within {self.policy.window_s:.0f}s (last: {last})",
            )
            return
        delay = self.backoff(len(child.failures))
        logger.warning(
            "model {} failed ({}); restart {} in {:.2f}s", msg.name, last, restarts + 1, delay
        )
        self._set(msg.name, state="restarting", ref=None, restarts=restarts + 1)
        self.io.tell_later(delay, self.actor_ref, TimerFired(kind="restart", key=msg.name))
        self._publish()

    # --- the core actors -----------------------------------------------------------------

    def _on_core_failed(self, msg: ActorFailed) -> None:
        """The coordinator or synthesizer crashed (it has answered its running jobs): a new
        one takes over after the backoff, with the current roster; no daemon restart."""
        core = self.core[msg.name]
        if msg.generation != core.generation:
            return
        core.restarts += 1
        delay = self.backoff(min(core.restarts, 8))
        logger.error(
            "the {} crashed ({}); restart {} in {:.2f}s",
            msg.name,
            msg.error.message[:200],
            core.restarts,
            delay,
        )
        self.io.tell_later(delay, self.actor_ref, TimerFired(kind="core", key=msg.name))

    def _restart_core(self, name: str) -> None:
        core = self.core[name]
        self.subscribers = [ref for ref in self.subscribers if ref is not core.ref]
        core.generation += 1
        core.ref = core.start(core.generation, self.roster())
        self.subscribers.append(core.ref)

    # --- down, and back up (half-open probes) -------------------------------------------

    def _take_down(self, name: str, reason: str, parked: Any = None) -> None:
        """Take ``name`` out of rounds for a cool-down: the policy's after a first fall,
        doubled (up to the cap) after a failed probe. ``parked`` keeps a healthy actor
        (an open circuit) for the probe; without one the probe starts a new actor."""
        child = self.children[name]
        if child.probing and child.cooldown:
            cooldown = min(self.policy.cooldown_max_s, child.cooldown * 2)
        else:
            cooldown = self.policy.cooldown_s
        child.cooldown, child.probing, child.parked = cooldown, False, parked
        now = time.time()
        logger.error("model {} is down for {:.0f}s: {}", name, cooldown, reason)
        self._set(
            name,
            state="down",
            ref=None,
            reason=reason,
            down_since=child.entry.down_since or now,
            next_probe=now + cooldown,
            cooldown_s=cooldown,
        )
        self.io.tell_later(
            cooldown,
            self.actor_ref,
            TimerFired(kind="probe", key=name, generation=child.entry.generation),
        )
        self._publish()

    def _probe(self, name: str) -> None:
        """Half-open: let the model serve again; its next outcome decides."""
        child = self.children[name]
        child.probing = True
        parked, child.parked = child.parked, None
        logger.info("model {}: probing after a {:.0f}s cool-down", name, child.cooldown)
        if parked is not None and parked.is_alive():
            self._set(name, state="up", ref=parked, next_probe=None)
            self._publish()
        else:
            child.failures.clear()
            self._spawn(name)
        self._set(name, reason=f"probing after a {child.cooldown:.0f}s cool-down")
        self._publish()

    def backoff(self, failures: int) -> float:
        """Exponential in the recent failures, with full jitter, within [min, max]."""
        low, high = self.policy.backoff_min_s, self.policy.backoff_max_s
        ceiling = min(high, low * 2 ** max(0, failures - 1))
        return self.rng.uniform(low, max(low, ceiling))

    def _stop_children(self, timeout: float = 5.0) -> None:
        """Stop every model actor at once, then wait for them against one deadline (this
        runs while the supervisor itself stops; no model actor ever waits on it)."""
        refs = [r for c in self.children.values() for r in (c.entry.ref, c.parked) if r]
        for name in self.children:
            self._set(name, state="down", ref=None)
        stopping = []
        for ref in refs:
            with contextlib.suppress(pykka.ActorDeadError):
                stopping.append(ref.stop(block=False))
        deadline = time.monotonic() + timeout
        for future in stopping:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                future.get(timeout=max(0.0, deadline - time.monotonic()))
