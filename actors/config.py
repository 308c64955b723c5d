"""Configuration: a TOML file or a dict, validated once into frozen dataclasses.

Every unknown or bad key fails at load time with a ``ConfigError`` naming it
(``models[1].rpm: expected a number, got 'fast'``). Precedence (flags, then the
environment, then the file, then defaults) is applied by ``load_config``'s callers
through ``with_overrides``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.checks import check_template, check_validate
from actors.configcheck import build, positive
from actors.configservices import (
    HttpConfig,
    LimitsConfig,
    TelemetryConfig,
    http_section,
    limits_section,
    telemetry_section,
)
from actors.pipelines import NamedPipeline, parse_pipelines
from actors.prices import FREE_PROVIDERS, table_cost
from actors.prices import lookup as lookup_price
from actors.prompts import DEFAULT_TEMPLATES, PLACEHOLDERS
from actors.stagekinds import STRATEGIES  # strategy -> the stage kind deciding it
from messages.errors import ConfigError

ROUND_NAMES = ("initial", "meta", "synthesis")


class Environ(Mapping[str, str]):
    """The process environment as actors and adapters hold it: its ``repr`` shows no
    values, so no traceback, log line or debugger dump of an actor can print a key."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<environment: {len(self._values)} variables, values hidden>"

    __str__ = __repr__


def default_socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """``$XDG_RUNTIME_DIR/orchestrord/orchestrord.sock``, else ``/tmp/orchestrord-$UID/…``."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "orchestrord" if runtime else Path(f"/tmp/orchestrord-{os.getuid()}")
    return str(base / "orchestrord.sock")


def default_state_dir(environ: Mapping[str, str] = os.environ) -> str:
    """``$XDG_STATE_HOME/orchestrord`` (an absolute path, as the XDG spec says), else
    ``~/.local/state/orchestrord``."""
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        return "~/.local/state/orchestrord"
    return str(Path(state) / "orchestrord")


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    socket: str = field(default_factory=default_socket_path)
    state_dir: str = field(default_factory=default_state_dir)
    max_inflight_jobs: int = 256
    max_request_bytes: int = 1_048_576
    drain_s: float = 30.0
    idle_timeout_s: float = 30.0
    retain_days: float = 90.0  # the run store forgets jobs older than this; 0: never


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """One participant. ``options`` holds the provider's own keys (see each provider)."""

    name: str
    provider: str
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    rpm: float | None = None  # None: no request limit
    burst: float | None = None  # bucket capacity; default max(1, rpm / 60)
    tpm: float | None = None  # None: no token limit
    limit_margin_s: float = 0.02  # reserve in the buckets against the provider's jitter
    max_concurrency: int = 8
    timeout_s: float = 60.0
    max_tokens: int = 1024
    temperature: float = 0.7
    seed: int | None = None
    max_attempts: int = 3
    limit_key: str = ""  # models sharing a provider key share a limit_key (default: name)
    system: str | None = None  # a role: this model's system prompt in every stage
    price_in_per_mtok: float | None = None  # None: from genai-prices, else unknown
    price_out_per_mtok: float | None = None
    priced_by_table: bool = False  # set at load, never from the file: each call at its tier
    options: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def answer_settings(self) -> tuple[Any, ...]:
        """Every setting this model's answers depend on: the cache key and an evaluation's
        resume both use it, so a changed role or option never serves a stale answer."""
        return (
            self.name,
            self.provider,
            self.model,
            self.base_url,
            self.max_tokens,
            self.temperature,
            self.seed,
            self.system,
            sorted((k, repr(v)) for k, v in self.options.items()),
        )

    @property
    def request_burst(self) -> float:
        if self.burst is not None:
            return self.burst
        return max(1.0, (self.rpm or 60.0) / 60.0)

    @property
    def priced(self) -> bool:
        """Whether its price is known (configured, from genai-prices, or free)."""
        return self.price_in_per_mtok is not None and self.price_out_per_mtok is not None

    def cost_usd(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """USD for a call of this usage; an unknown price counts as 0 (budgets refuse such
        models). A price from genai-prices is asked with the call's own usage, so a long
        prompt is charged at its long-context tier and a short one at the base tier."""
        if self.priced_by_table:
            cost = table_cost(
                self.provider, self.model, self.base_url, input_tokens, output_tokens, cached_tokens
            )
            if cost is not None:
                return cost
        price_in, price_out = self.price_in_per_mtok or 0.0, self.price_out_per_mtok or 0.0
        return (input_tokens * price_in + output_tokens * price_out) / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig:
    rounds: tuple[str, ...] = ("initial", "meta", "synthesis")
    strategy: str = "synthesize"
    synthesizer: str = "auto"
    min_replies: int = 1
    job_timeout_s: float = 300.0
    # Stragglers: once ``quorum`` ok replies are in, a round waits at most
    # ``straggler_grace_s`` for the rest, which are cut (status skipped, code straggler).
    # "majority" = more than half the round's calls; 0 = wait for every reply.
    quorum: int | str = "majority"
    straggler_grace_s: float = 2.0
    # Checks the final answer must pass (beyond a request's JSON Schema): {regex = "…",
    # required_sections = ["…"]}; a failing answer is repaired, then the next model tries.
    validate: Mapping[str, Any] | None = None
    # A [pipelines.NAME] run when a request names no pipeline, rounds or strategy (what
    # `orchestrctl eval --apply` sets); None: rounds + strategy above.
    default: str | None = None

    def quorum_of(self, calls: int) -> int | None:
        """How many ok replies let a round of ``calls`` calls cut its stragglers (None:
        never; a quorum of every call has no stragglers to cut)."""
        need = calls // 2 + 1 if self.quorum == "majority" else int(self.quorum)
        return need if 0 < need < calls else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplatesConfig:
    system: str = DEFAULT_TEMPLATES["system"]
    initial: str = DEFAULT_TEMPLATES["initial"]
    meta: str = DEFAULT_TEMPLATES["meta"]
    synthesis: str = DEFAULT_TEMPLATES["synthesis"]
    chain: str = DEFAULT_TEMPLATES["chain"]
    ranking: str = DEFAULT_TEMPLATES["ranking"]
    repair: str = DEFAULT_TEMPLATES["repair"]
    tools: str = DEFAULT_TEMPLATES["tools"]  # a tool job's split: the synthesizer decides


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisionConfig:
    max_restarts: int = 5
    window_s: float = 60.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    start_timeout_s: float = 10.0
    # A down model (too many crashes, or its circuit opened) is probed after cooldown_s
    # (half-open); a failed probe doubles the cool-down, up to cooldown_max_s.
    cooldown_s: float = 60.0
    cooldown_max_s: float = 900.0
    # Circuit breaker: this many provider failures in a row (after retries) take the
    # model out of rounds until its cool-down has passed. 0: never.
    circuit_failures: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    models: tuple[ModelConfig, ...]
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    pipelines: Mapping[str, NamedPipeline] = field(
        default_factory=lambda: types.MappingProxyType({})
    )  # [pipelines.NAME]: chosen per request
    source: str = "defaults"
    records_runs: bool = False  # [daemon] state_dir was set: an embedding records its jobs

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)


# --- validation -----------------------------------------------------------------------


def _model(index: int, data: Any) -> ModelConfig:
    from actors.providers import provider_class  # providers validate their own options

    prefix = f"models[{index}]"
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, f"expected a table, got {data!r}")
    common = {f.name for f in dataclasses.fields(ModelConfig)} - {"options", "priced_by_table"}
    provider = data.get("provider")
    if not isinstance(provider, str):
        raise ConfigError(f"{prefix}.provider", f"required, one of {_provider_names()}")
    try:
        cls = provider_class(provider)
    except KeyError:
        raise ConfigError(f"{prefix}.provider", f"unknown provider {provider!r}") from None
    options = {k: v for k, v in data.items() if k not in common}
    base = {k: v for k, v in data.items() if k in common}
    model = build(ModelConfig, base, prefix, skip=("options", "priced_by_table"))
    checked = cls.validate_options(prefix, options)
    model = dataclasses.replace(model, options=types.MappingProxyType(checked))
    if not model.model:
        model = dataclasses.replace(model, model=cls.default_model)
    if model.price_in_per_mtok is None and model.price_out_per_mtok is None:
        found = lookup_price(model.provider, model.model, model.base_url)
        if found is not None:
            model = dataclasses.replace(
                model,
                price_in_per_mtok=found[0],
                price_out_per_mtok=found[1],
                priced_by_table=model.provider not in FREE_PROVIDERS,
            )
    elif model.price_in_per_mtok is None or model.price_out_per_mtok is None:
        model = dataclasses.replace(  # one of the two given: the other is 0, not unknown
            model,
            price_in_per_mtok=model.price_in_per_mtok or 0.0,
            price_out_per_mtok=model.price_out_per_mtok or 0.0,
        )
    for key in ("rpm", "burst", "tpm", "timeout_s"):
        positive(f"{prefix}.{key}", getattr(model, key))
    for key in ("price_in_per_mtok", "price_out_per_mtok", "temperature", "limit_margin_s"):
        positive(f"{prefix}.{key}", getattr(model, key), allow_zero=True)
    for key in ("max_concurrency", "max_tokens", "max_attempts"):
        positive(f"{prefix}.{key}", getattr(model, key))
    if not model.name.strip():
        raise ConfigError(f"{prefix}.name", "must not be empty")
    if "#" in model.name:  # gpt#2 is the second sample of gpt in a stage's votes
        raise ConfigError(f"{prefix}.name", "must not contain '#' (it marks a sample: gpt#2)")
    if not model.limit_key:
        model = dataclasses.replace(model, limit_key=model.name)
    return model


def _provider_names() -> str:
    from actors.providers import PROVIDERS

    return " | ".join(PROVIDERS)


def check_rounds(key: str, rounds: tuple[str, ...]) -> None:
    """Rounds are ``initial``, then any number of ``meta``, then an optional ``synthesis``."""
    if not rounds or rounds[0] != "initial":
        raise ConfigError(key, f"must start with 'initial', got {list(rounds)!r}")
    for i, name in enumerate(rounds[1:], start=1):
        if name not in ROUND_NAMES or name == "initial":
            raise ConfigError(key, f"unknown or repeated round {name!r} (use meta, synthesis)")
        if name == "synthesis" and i != len(rounds) - 1:
            raise ConfigError(key, "'synthesis' can only be the last round")


def _pipeline(data: Any, model_names: set[str]) -> PipelineConfig:
    pipeline = build(PipelineConfig, data, "pipeline")
    check_rounds("pipeline.rounds", pipeline.rounds)
    if pipeline.strategy not in STRATEGIES:
        raise ConfigError("pipeline.strategy", f"must be one of {list(STRATEGIES)}")
    if pipeline.synthesizer != "auto" and pipeline.synthesizer not in model_names:
        raise ConfigError("pipeline.synthesizer", f"no model named {pipeline.synthesizer!r}")
    positive("pipeline.min_replies", pipeline.min_replies)
    positive("pipeline.job_timeout_s", pipeline.job_timeout_s)
    positive("pipeline.straggler_grace_s", pipeline.straggler_grace_s, allow_zero=True)
    if isinstance(pipeline.quorum, str) and pipeline.quorum != "majority":
        raise ConfigError(
            "pipeline.quorum", f'must be "majority" or a number, got {pipeline.quorum!r}'
        )
    if pipeline.validate is not None:
        check_validate("pipeline.validate", pipeline.validate)
    if isinstance(pipeline.quorum, int) and pipeline.quorum < 0:
        raise ConfigError(
            "pipeline.quorum", f"must be >= 0 (0: wait for every reply), got {pipeline.quorum}"
        )
    return pipeline


def _templates(data: Any) -> TemplatesConfig:
    templates = build(TemplatesConfig, data, "templates")
    for name in PLACEHOLDERS:
        check_template(f"templates.{name}", getattr(templates, name), name)
    return templates


def _supervision(data: Any) -> SupervisionConfig:
    sup = build(SupervisionConfig, data, "supervision")
    positive("supervision.max_restarts", sup.max_restarts, allow_zero=True)
    positive("supervision.window_s", sup.window_s)
    positive("supervision.backoff_min_s", sup.backoff_min_s, allow_zero=True)
    if sup.backoff_max_s < sup.backoff_min_s:
        raise ConfigError("supervision.backoff_max_s", "must be >= backoff_min_s")
    positive("supervision.cooldown_s", sup.cooldown_s)
    if sup.cooldown_max_s < sup.cooldown_s:
        raise ConfigError("supervision.cooldown_max_s", "must be >= cooldown_s")
    positive("supervision.circuit_failures", sup.circuit_failures, allow_zero=True)
    return sup


SECTIONS = (
    "daemon",
    "models",
    "pipeline",
    "pipelines",
    "templates",
    "supervision",
    "limits",
    "http",
    "telemetry",
)


def config_from_dict(data: Mapping[str, Any], *, source: str = "dict") -> Config:
    """Validate a dict shaped like the TOML file into a ``Config``."""
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(key, f"unknown section (known: {', '.join(SECTIONS)})")
    raw_models = data.get("models")
    if raw_models is None:
        raise ConfigError("models", "at least one [[models]] entry is required")
    if not isinstance(raw_models, list | tuple) or not raw_models:
        raise ConfigError("models", "expected a non-empty list of [[models]] tables")
    models = tuple(_model(i, m) for i, m in enumerate(raw_models))
    names = [m.name for m in models]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"models[{i}].name", f"duplicate model name {name!r}")
    daemon = build(DaemonConfig, data.get("daemon", {}), "daemon")
    positive("daemon.max_inflight_jobs", daemon.max_inflight_jobs)
    positive("daemon.max_request_bytes", daemon.max_request_bytes)
    pipelines = parse_pipelines(data.get("pipelines", {}), set(names))
    pipeline = _pipeline(data.get("pipeline", {}), set(names))
    if pipeline.default is not None and pipeline.default not in pipelines:
        known = list(pipelines) or "none is configured"
        raise ConfigError("pipeline.default", f"no [pipelines.{pipeline.default}]; known: {known}")
    return Config(
        models=models,
        daemon=daemon,
        pipeline=pipeline,
        templates=_templates(data.get("templates", {})),
        supervision=_supervision(data.get("supervision", {})),
        limits=limits_section(data.get("limits", {})),
        http=http_section(data.get("http", {}), set(names)),
        telemetry=telemetry_section(data.get("telemetry", {})),
        pipelines=pipelines,
        source=source,
        records_runs="state_dir" in (data.get("daemon") or {}),
    )


def config_from_file(path: str | Path) -> Config:
    path = Path(path).expanduser()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return config_from_dict(data, source=str(path))


ConfigSource = Config | Mapping[str, Any] | str | Path


def load_config(source: ConfigSource) -> Config:
    """A ``Config`` from a Config, a dict shaped like the TOML file, or a TOML path."""
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        return config_from_dict(source)
    return config_from_file(source)


def with_overrides(config: Config, **daemon: Any) -> Config:
    """Apply flag or environment overrides to ``[daemon]`` keys that are not None."""
    changes = {k: v for k, v in daemon.items() if v is not None}
    if not changes:
        return config
    merged = {f.name: getattr(config.daemon, f.name) for f in dataclasses.fields(DaemonConfig)}
    merged.update(changes)
    return dataclasses.replace(config, daemon=build(DaemonConfig, merged, "daemon"))
