"""The embedding API: ``actors.start(config)`` -> ``Orchestrator``.

Starts the I/O loop, the supervisor (and through it one actor per model), the
synthesizer and the coordinator; ``stop()`` stops exactly those, never a host
program's own actors.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import astuple, replace
from pathlib import Path
from typing import Any, cast

import pykka
from loguru import logger

from actors import strategies
from actors.config import Config, ConfigSource, Environ, load_config
from actors.coordinator import CoordinatorActor
from actors.jobs import deliver, pipeline_name
from actors.lifecycle import Lifecycle
from actors.metrics import Metrics
from actors.model import ProviderFactory
from actors.providers import make_provider
from actors.providers.localserver import SharedResources
from actors.redisconn import check as redis_check
from actors.runtime import IOLoop, safe_tell
from actors.sharedlimits import RedisLimits
from actors.store import RunStore
from actors.supervisor import SupervisorActor
from actors.synthesizer import SynthesizerActor
from actors.tracing import Tracing
from actors.version import VERSION
from messages.commands import (
    Ask,
    CancelJob,
    GetStatus,
    Reconfigure,
    Subscribe,
    SuperviseCore,
)
from messages.conversation import split, turns
from messages.errors import ConfigError, InvalidParams, OrchestratorError, OverloadedError
from messages.events import CoreChanged, JobEvent, RosterEntry
from messages.options import ASK_OPTIONS
from messages.results import JobResult

_CALL_TIMEOUT_S = 10.0  # for quick questions to actors that never block
RESTARTING_RETRY_AFTER_S = 1.0


class Orchestrator:
    """A running set of actors. Use as a context manager, or call ``stop()``."""

    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str] | None = None,
        provider_factory: ProviderFactory | None = None,
        store: RunStore | None = None,
    ) -> None:
        self.config = config
        self.environ = Environ(os.environ if environ is None else environ)
        if config.limits.backend == "redis":  # a refused login fails here, not every call
            redis_check(config.limits, self.environ)
        # The run store: the daemon's (it records through its socket server), or, when the
        # config names [daemon] state_dir, one this orchestrator opens and records to.
        self._owns_store = store is None and config.records_runs
        if self._owns_store:
            store = RunStore(Path(config.daemon.state_dir).expanduser() / "runs.sqlite3")
        self.store = store
        self.tracing = Tracing.from_config(config, self.environ)  # None: traces are off
        self.lifecycle = self.lifecycle_for(store)  # records, caches and starts its jobs
        self.metrics = Metrics()
        self.metrics.describe(self.config.models)
        self.shared = SharedResources()  # e.g. the local model server the participants share
        if provider_factory is None:
            provider_factory = functools.partial(make_provider, shared=self.shared)
        self.io = IOLoop()
        self.started_at = time.monotonic()
        self._stopped = False
        self.shared_limits = (
            RedisLimits(config.limits, self.environ) if config.limits.backend == "redis" else None
        )
        self.supervisor = SupervisorActor.start(
            config=config,
            io=self.io,
            metrics=self.metrics,
            environ=self.environ,
            provider_factory=provider_factory,
            shared_limits=self.shared_limits,
        )
        # The supervisor answers after its on_start: every model has a ref by then.
        roster = self.supervisor.ask(GetStatus(), timeout=_CALL_TIMEOUT_S)
        self._core: dict[str, Any] = {}  # name -> the current ActorRef (a restart replaces it)
        for name, start_core in (
            ("synthesizer", self._start_synthesizer),
            ("coordinator", self._start_coordinator),
        ):
            ref = start_core(1, roster)
            # From now on it gets every roster change (and the current one again at once).
            self.supervisor.tell(Subscribe(ref=ref))
            self.supervisor.tell(SuperviseCore(name=name, ref=ref, start=start_core))
        logger.info("orchestrator started with models {}", ", ".join(config.model_names))

    # --- the core actors, supervised --------------------------------------------------

    @property
    def coordinator(self) -> pykka.ActorRef[CoordinatorActor]:
        """The current coordinator (a new ref after a restart): tell or ask it ``Ask``."""
        ref: pykka.ActorRef[CoordinatorActor] = self._core["coordinator"]
        return ref

    @property
    def synthesizer(self) -> pykka.ActorRef[SynthesizerActor]:
        ref: pykka.ActorRef[SynthesizerActor] = self._core["synthesizer"]
        return ref

    def _start_synthesizer(self, generation: int, roster: Any) -> Any:
        """Start a synthesizer (at start, or from the supervisor after a crash)."""
        ref = SynthesizerActor.start(
            templates=self.config.templates,
            metrics=self.metrics,
            io=self.io,
            roster=roster,
            supervisor=self.supervisor,
            generation=generation,
        )
        self._core["synthesizer"] = ref
        if "coordinator" in self._core:
            safe_tell(self._core["coordinator"], CoreChanged(name="synthesizer", ref=ref))
        return ref

    def _start_coordinator(self, generation: int, roster: Any) -> Any:
        """Start a coordinator (at start, or from the supervisor after a crash)."""
        ref = CoordinatorActor.start(
            config=self.config,
            io=self.io,
            metrics=self.metrics,
            synthesizer=self._core["synthesizer"],
            roster=roster,
            supervisor=self.supervisor,
            generation=generation,
        )
        self._core["coordinator"] = ref
        return ref

    # --- jobs --------------------------------------------------------------------------

    def submit(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, str]] | None = None,
        models: list[str] | tuple[str, ...] | None = None,
        rounds: list[str] | tuple[str, ...] | None = None,
        timeout: float | None = None,
        listener: Callable[[JobEvent], None] | None = None,
        **options: Any,
    ) -> pykka.Future[JobResult]:
        """Start a job; the future resolves to its ``JobResult`` (failed jobs too).
        ``options`` are the other fields of ``messages.Ask`` (``strategy``, ``schema``,
        ``deterministic``, ``early_exit``, ``max_cost_usd``, ``answer_pattern``, …).
        Give ``prompt``, or ``messages`` (a conversation: ``[{"role": "system" | "user" |
        "assistant", "content": …}]``, the last from the user); a bad one raises
        ``InvalidParams``."""
        future: pykka.Future[JobResult] = pykka.ThreadingFuture()
        prompt, options = _conversation(prompt, messages, options)
        ask = Ask(
            prompt=prompt,
            models=tuple(models) if models else None,
            rounds=tuple(rounds) if rounds else None,
            timeout_s=timeout,
            listener=listener,
            **options,
        )

        def finished(outcome: JobResult | Exception) -> None:
            if isinstance(outcome, Exception):
                future.set_exception(exc_info=(type(outcome), outcome, None))
            else:
                future.set(outcome)

        self.lifecycle.run(ask, finished)
        return future

    def lifecycle_for(self, store: RunStore | None) -> Lifecycle:
        """The job life cycle over ``store`` (this orchestrator's, or the socket
        server's): ``run`` records, caches and starts a job on these actors."""
        return Lifecycle(
            store,
            cache_key=lambda ask: self.cache_key(ask),
            start=lambda ask: self.start_job(ask),
            strategy=lambda: self.config.pipeline.strategy,
            tracing=self.tracing,
        )

    @property
    def cache(self) -> MutableMapping[str, JobResult]:
        """The in-memory deterministic results (without a run store; with one, the
        store's cache table serves them). ``orch.cache.clear()`` forgets them."""
        return self.lifecycle.memory

    def reconfigure(self, config: Config) -> None:
        """Apply ``config``'s templates and pipeline to the next jobs (SIGHUP); running
        jobs keep theirs. Models and everything else stay as started: a changed model
        section is refused with a ``ConfigError`` saying to restart."""
        unchanged = replace(
            config,
            templates=self.config.templates,
            pipeline=self.config.pipeline,
            pipelines=self.config.pipelines,
        )
        if unchanged != self.config:
            raise ConfigError(
                "models",
                "only [templates], [pipeline] and [pipelines] reload; restart to apply the rest",
            )
        self.config = config
        for ref in (self.coordinator, self.synthesizer):
            safe_tell(ref, Reconfigure(config=config))

    # --- the run store -------------------------------------------------------------------

    def runs(self, timeout: float = _CALL_TIMEOUT_S, **filters: Any) -> list[dict[str, Any]]:
        """Past jobs, newest first: the socket's ``runs`` (``limit``, ``status``, ``since``,
        ``until``, ``metadata``, ``text``, ``offset``, ``full``)."""
        return list(self._store().runs(filters).result(timeout))

    def job(self, job_id: str, timeout: float = _CALL_TIMEOUT_S) -> dict[str, Any] | None:
        """A stored job with its prompt, metadata and creation time (None: unknown)."""
        record: dict[str, Any] | None = self._store().record(job_id).result(timeout)
        return record

    def _store(self) -> Any:
        if self.store is None:
            raise OrchestratorError("no run store: set [daemon] state_dir in the configuration")
        return self.store

    def cache_key(self, ask: Ask) -> str:
        """What a deterministic job's result depends on: every option the ask table marks
        ``cached`` (with the pipeline's defaults filled in), the models' configuration and
        the templates. Built from ``messages.options.ASK_OPTIONS``, so a new option can
        never be forgotten here and serve a stale answer."""
        cfg = self.config
        options = {o.name: getattr(ask, o.name) for o in ASK_OPTIONS if o.cached}
        names = ask.models or cfg.model_names
        options.update(
            models=list(names),
            rounds=list(ask.rounds or cfg.pipeline.rounds),
            strategy=ask.strategy or cfg.pipeline.strategy,
            synthesizer=ask.synthesizer or cfg.pipeline.synthesizer,
            schema=None if ask.schema is None else dict(ask.schema),
        )
        callers = {*names, options["synthesizer"]}
        name = pipeline_name(cfg, ask)  # the request's, else [pipeline] default
        named = cfg.pipelines.get(name) if name else None
        if named is not None:  # its stages, as configured now (SIGHUP may change them)
            options["stages"] = repr(named)
            callers.update(m for stage in named.stages for m in stage.models or ())
        models = [m.answer_settings for m in cfg.models if m.name in callers]
        return strategies.cache_key(
            options=options, configs=models, templates=astuple(cfg.templates)
        )

    def ask(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, str]] | None = None,
        models: list[str] | tuple[str, ...] | None = None,
        rounds: list[str] | tuple[str, ...] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> JobResult:
        """Run a job and wait for its result (the job's own deadline bounds the wait)."""
        future = self.submit(
            prompt, messages=messages, models=models, rounds=rounds, timeout=timeout, **options
        )
        limit = timeout if timeout is not None else self.config.pipeline.job_timeout_s
        return future.get(timeout=limit + _CALL_TIMEOUT_S)

    def start_job(self, ask: Ask) -> None:
        """Start a job from a ready ``Ask`` (its ``reply_to`` gets the result). In the
        moment a crashed coordinator is being replaced, the job is refused as overloaded
        (retry shortly) rather than lost."""
        try:
            self.coordinator.tell(ask)
        except pykka.ActorDeadError:
            deliver(
                ask.reply_to,
                OverloadedError(
                    "the coordinator is restarting; retry shortly",
                    data={"retry_after_s": RESTARTING_RETRY_AFTER_S},
                ),
            )

    def cancel(self, job_id: str) -> bool:
        """Stop a job (True), also one still being recorded; False: not running."""
        if self.lifecycle.cancel(job_id):
            return True
        return bool(self.coordinator.ask(CancelJob(job_id=job_id), timeout=_CALL_TIMEOUT_S))

    # --- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the socket's ``status`` method returns."""
        jobs = cast(dict[str, int], self.coordinator.ask(GetStatus(), timeout=_CALL_TIMEOUT_S))
        roster = cast(
            tuple[RosterEntry, ...], self.supervisor.ask(GetStatus(), timeout=_CALL_TIMEOUT_S)
        )
        self._settle_books(roster)
        models = []
        for entry in roster:
            stats = self.metrics.stats(entry.name)
            models.append(
                {
                    "name": entry.name,
                    "provider": entry.provider,
                    "state": entry.state,
                    "restarts": entry.restarts,
                    "inflight": stats.inflight,
                    "calls_ok": stats.calls_ok,
                    "calls_failed": stats.calls_failed,
                    "retries": stats.retries,
                    "input_tokens": stats.input_tokens,
                    "output_tokens": stats.output_tokens,
                    "cost_usd": stats.cost_usd,
                    "p50_latency_ms": stats.p50_latency_ms,
                    "reason": entry.reason or None,
                    "down_since": _iso(entry.down_since),
                    "next_probe": _iso(entry.next_probe),
                    "cooldown_s": entry.cooldown_s or None,
                }
            )
        return {
            "version": VERSION,
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "inflight_jobs": jobs["inflight_jobs"],
            "jobs_total": jobs["jobs_total"],
            "escalations": jobs.get("escalations", {}),  # per pipeline (actors.cascades)
            "models": models,
            "pipelines": list(self.config.pipelines),
            "limits": {"backend": "local"}
            if self.shared_limits is None
            else self.shared_limits.status(),
        }

    def _settle_books(self, roster: tuple[RosterEntry, ...]) -> None:
        """One mailbox round trip to each live model actor: every call whose answer was
        already delivered is in the metrics when they are read (answers reach their
        askers a hop before the actor keeps its books)."""
        pending = []
        for entry in roster:
            if entry.live:
                with contextlib.suppress(pykka.ActorDeadError):
                    pending.append(entry.ref.ask(GetStatus(), block=False))
        for future in pending:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                future.get(timeout=_CALL_TIMEOUT_S)

    # --- lifecycle ---------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the actors this orchestrator started (jobs still running end with
        ``shutting_down``), then the I/O loop. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        # The core first (its jobs end with shutting_down), then the supervisor and its
        # models, then any core actor the supervisor restarted in the meantime.
        for ref in (self.coordinator, self.synthesizer, self.supervisor, *self._core.values()):
            try:
                ref.stop(block=True, timeout=timeout)
            except pykka.ActorDeadError:
                pass
            except pykka.Timeout:
                logger.warning("{} did not stop cleanly", ref)
        try:
            self.io.submit(self.shared.aclose()).result(timeout=timeout)
            if self.shared_limits is not None:
                self.io.submit(self.shared_limits.aclose()).result(timeout=timeout)
        except Exception:  # a stuck child process must not keep the host from stopping
            logger.exception("stopping shared provider resources failed")
        self.io.stop()
        if self._owns_store and self.store is not None:
            self.store.close()
        if self.tracing is not None:  # flushes what is queued, within the exporter's timeout
            self.tracing.shutdown()
        logger.info("orchestrator stopped")

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _conversation(
    prompt: str | None, messages: Any, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The job's prompt and options from ``prompt`` or ``messages`` (exactly one)."""
    if (prompt is None) == (messages is None):
        raise InvalidParams("give exactly one of prompt and messages")
    if messages is None:
        return str(prompt), options
    conversation = turns(messages)
    system, _, last = split(conversation)
    if system is not None:
        if options.get("system") is not None:
            raise InvalidParams("give the system prompt once: as system or in messages")
        options = {**options, "system": system}
    return last, {**options, "messages": conversation}


def _iso(when: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC (what status shows), or None."""
    if when is None:
        return None
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="seconds")


def start(
    config: ConfigSource,
    *,
    environ: Mapping[str, str] | None = None,
    provider_factory: ProviderFactory | None = None,
    store: RunStore | None = None,
) -> Orchestrator:
    """Start an orchestrator from a TOML path, a dict shaped like the file, or a Config.
    With ``[daemon] state_dir`` in the configuration, every job is recorded in
    ``state_dir/runs.sqlite3`` and ``orch.runs()`` lists them; ``store`` shares a
    ``RunStore`` the caller owns (the daemon's)."""
    return Orchestrator(
        load_config(config), environ=environ, provider_factory=provider_factory, store=store
    )
