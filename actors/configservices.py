"""The configuration of the daemon's services around the engine: the HTTP door
(``[http]``), traces (``[telemetry]``) and where the rate limits live (``[limits]``), each a
frozen dataclass with the checks of its table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import regex

from actors.configcheck import build, positive
from messages.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryConfig:
    """OpenTelemetry traces (``actors.tracing``); the standard ``OTEL_*`` variables win."""

    otlp_endpoint: str | None = None  # e.g. "http://127.0.0.1:4318" (OTLP/HTTP)
    service_name: str = "orchestrord"
    capture_content: bool = False  # prompts and answers in spans (they may be sensitive)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """The OpenAI-compatible front door: off unless ``listen`` ("127.0.0.1:8321") is set."""

    listen: str | None = None
    api_key_env: str = "ORCHESTRORD_API_KEY"  # unset: a key made once in state_dir/http.key
    keepalive_s: float = 10.0  # an SSE comment this often while a stream has nothing to say
    header_timeout_s: float = 10.0  # a client must send its request's headers within this
    body_timeout_s: float = 30.0  # ... and its body within this
    tool_results: str = "synthesizer"  # a turn ending in a tool result: or "ensemble"
    light_model: str | None = None  # answers light tasks (a UI's titles, tags, follow-ups)
    light_patterns: tuple[str, ...] = ()  # regexes on the last user message: a light task

    @property
    def address(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


TOOL_RESULTS = ("synthesizer", "ensemble")
LIMIT_BACKENDS = ("local", "redis")


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """Where the rate limits live: in-process buckets, or Redis, shared by every process
    that uses the same ``url``, ``key_prefix`` and model ``limit_key``."""

    backend: str = "local"
    url: str = "redis://127.0.0.1:6379/0"  # or unix:///path/redis.sock
    key_prefix: str = "orchestrord"
    on_unavailable: str = "local"  # or "fail"
    expected_instances: int = 1  # the local fallback runs each model at rate / this
    url_env: str | None = None  # a variable holding the whole URL (password included)
    password_env: str | None = None  # a variable holding only the password
    cluster: bool = False  # a Redis Cluster, reached through the node the URL names
    sentinels: tuple[str, ...] = ()  # "host:port" of Redis Sentinels: they find the master
    service_name: str = "mymaster"  # the master's name in Sentinel


def telemetry_section(data: Any) -> TelemetryConfig:
    telemetry = build(TelemetryConfig, data, "telemetry")
    endpoint = telemetry.otlp_endpoint
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ConfigError("telemetry.otlp_endpoint", "must be an http:// or https:// URL")
    return telemetry


def http_section(data: Any, model_names: set[str]) -> HttpConfig:
    http = build(HttpConfig, data, "http")
    if http.light_model is not None and http.light_model not in model_names:
        raise ConfigError("http.light_model", f"no model {http.light_model!r} is configured")
    if http.listen is not None:
        host, sep, port = http.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("http.listen", f'expected "HOST:PORT", got {http.listen!r}')
    if not http.api_key_env or not http.api_key_env.replace("_", "").isalnum():
        raise ConfigError("http.api_key_env", "expected an environment variable's name")
    for key in ("keepalive_s", "header_timeout_s", "body_timeout_s"):
        positive(f"http.{key}", getattr(http, key))
    if http.tool_results not in TOOL_RESULTS:
        raise ConfigError("http.tool_results", f"expected one of {list(TOOL_RESULTS)}")
    for i, pattern in enumerate(http.light_patterns):
        try:
            regex.compile(pattern)
        except regex.error as exc:
            raise ConfigError(f"http.light_patterns[{i}]", f"not a regex: {exc}") from None
    return http


def limits_section(data: Any) -> LimitsConfig:
    limits = build(LimitsConfig, data, "limits")
    if limits.backend not in LIMIT_BACKENDS:
        raise ConfigError("limits.backend", f"must be one of {list(LIMIT_BACKENDS)}")
    if limits.on_unavailable not in ("local", "fail"):
        raise ConfigError("limits.on_unavailable", 'must be "local" or "fail"')
    if not limits.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("limits.url", "must be redis://HOST:PORT/DB, rediss://… or unix://PATH")
    if not limits.key_prefix:
        raise ConfigError("limits.key_prefix", "must not be empty")
    positive("limits.expected_instances", limits.expected_instances)
    if limits.cluster and limits.sentinels:
        raise ConfigError(
            "limits.sentinels", "a Redis Cluster has no Sentinels: set one of the two"
        )
    return limits
