"""Prometheus instruments of one orchestrator, under the OpenTelemetry GenAI names.

Model calls are labelled as the GenAI semantic conventions name them
(``gen_ai_operation_name``, ``gen_ai_provider_name``, ``gen_ai_request_model``) plus
``orchestrord_model``, the configured name. The exposition leaves out the ``_created``
series prometheus-client adds to every counter and histogram: nobody asked for them, and
turning them off process-wide (``disable_created_metrics``) would change a host program's
own metrics.
"""

from __future__ import annotations

from typing import Any

# Explicit bucket boundaries the GenAI conventions recommend.
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

GENAI = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "orchestrord_model",
)
# Our provider kinds -> the conventions' well-known gen_ai.provider.name values.
PROVIDER_NAMES = {"openai": "openai", "gemini": "gcp.gemini", "local": "llama.cpp"}


def provider_name(provider: str, options: Any = None) -> str:
    """``gen_ai.provider.name`` of a configured provider (llama names its API)."""
    if provider == "llama":
        return "ollama" if (options or {}).get("api", "ollama") == "ollama" else "llama.cpp"
    return PROVIDER_NAMES.get(provider, provider)


class Telemetry:
    """Prometheus instruments of one orchestrator (its own registry: two orchestrators
    in one process never share counters), exposed by the HTTP front door's /metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=True)
        self._model_instruments()
        self._job_instruments()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _model_instruments(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        r = self.registry
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (a model call, retries included)",
            [*GENAI, "error_type"], buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Histogram(
            "gen_ai_client_token_usage", "Measures number of input and output tokens used",
            [*GENAI, "gen_ai_token_type"], buckets=TOKEN_BUCKETS, registry=r,
        )  # fmt: skip
        self.first_token = Histogram(
            "orchestrord_call_time_to_first_token_seconds",
            "Time from a streamed model call's start to its first content token",
            list(GENAI), buckets=TTFT_BUCKETS, registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "orchestrord_cost_usd", "USD spent on model calls", ["orchestrord_model"], registry=r
        )
        self.calls = Counter(
            "orchestrord_calls", "Model calls by outcome", ["orchestrord_model", "outcome"],
            registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "orchestrord_rate_limited", "429 answers from providers", ["orchestrord_model"],
            registry=r,
        )  # fmt: skip
        self.waits = Histogram(
            "orchestrord_limiter_wait_seconds",
            "How long calls waited (rate limits, concurrency) before they started",
            ["orchestrord_model"], buckets=WAIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.inflight_calls = Gauge(
            "orchestrord_inflight_calls", "Model calls running", ["orchestrord_model"], registry=r
        )

    def _job_instruments(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        r = self.registry
        self.jobs = Counter("orchestrord_jobs", "Finished jobs", ["status", "strategy"], registry=r)
        self.job_duration = Histogram(
            "orchestrord_job_duration_seconds", "Job duration, from accepted to answered",
            ["pipeline", "status"], buckets=JOB_BUCKETS, registry=r,
        )  # fmt: skip
        self.escalations = Counter(
            "orchestrord_escalations", "Confidence gates that fired", ["pipeline", "stage"],
            registry=r,
        )  # fmt: skip
        self.rounds = Counter("orchestrord_rounds", "Rounds run", ["round"], registry=r)
        self.inflight_jobs = Gauge("orchestrord_inflight_jobs", "Jobs running", registry=r)
        self.server_ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from a request's arrival at a front door to the first token sent back",
            ["gen_ai_operation_name", "gen_ai_request_model", "http_route"],
            buckets=TTFT_BUCKETS, registry=r,
        )  # fmt: skip
        self.http = Histogram(
            "http_server_request_duration_seconds", "Duration of HTTP server requests",
            ["http_request_method", "http_route", "http_response_status_code"],
            buckets=HTTP_BUCKETS, registry=r,
        )  # fmt: skip

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: ``labels()`` validates and locks
        on every call, which cost a tenth of the daemon's CPU per job on the hot path."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:  # a race makes it twice; labels() hands both the same child
            found = self._children[key] = metric.labels(*labels)
        return found

    def exposition(self) -> bytes:
        """The Prometheus text format of this registry, without ``_created`` series."""
        from prometheus_client import generate_latest

        return generate_latest(_WithoutCreated(self.registry))


class _WithoutCreated:
    """A registry view whose families carry every sample but the ``_created`` ones."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Any:
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family
