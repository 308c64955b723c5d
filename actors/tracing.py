"""OpenTelemetry traces of jobs: a span per job, per stage and per provider call.

Off, and costing nothing, unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or ``[telemetry] otlp_endpoint``) is set: then the
official SDK exports over OTLP (``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``, the
default, or ``grpc`` when that exporter is installed), named by ``OTEL_SERVICE_NAME``
(default ``orchestrord``) and sampled by ``OTEL_TRACES_SAMPLER`` — the SDK reads the
standard variables itself.

The spans are built from what a job already reports (its events and its result), so no
actor waits on tracing: a ``BatchSpanProcessor`` exports from its own thread, and a dead
collector costs only dropped spans. Call spans follow the GenAI semantic conventions
(``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.usage.*``, ``gen_ai.response.finish_reasons``), with retries and limiter waits
as events. Prompt and answer text go into spans only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.

The job's parent is the W3C ``traceparent`` it was asked with (an HTTP request's header,
or the socket's ``traceparent`` param).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from actors.config import Config
from actors.telemetry import provider_name
from messages.commands import Ask
from messages.events import JobEvent
from messages.results import JobResult, ModelReply

CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def enabled(config: Config, environ: Mapping[str, str]) -> bool:
    """Whether this configuration and environment ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(config.telemetry.otlp_endpoint or any(environ.get(k) for k in ENDPOINTS))


class Tracing:
    """Spans for the jobs of one orchestrator. ``provider`` is an OpenTelemetry
    ``TracerProvider``: the exporting one ``from_config`` makes, or a test's."""

    def __init__(self, config: Config, provider: Any, *, capture: bool = False) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.api = trace  # imported here, once: nothing of OpenTelemetry loads when off
        self.provider = provider
        self.tracer = provider.get_tracer("orchestrord")
        self.propagator = TraceContextTextMapPropagator()
        self.capture = capture
        # Per model, the attributes every call span of it carries, built once.
        self.static = {m.name: _model_attrs(m) for m in config.models}

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str]) -> Tracing | None:
        """The exporting tracing this configuration asks for, or None (then nothing of
        OpenTelemetry is even imported)."""
        if not enabled(config, environ):
            return None
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:  # traces are asked for, the extra is missing: say so, go on
            from loguru import logger

            logger.warning(
                "traces are configured but the OpenTelemetry SDK is not installed: "
                "pip install 'orchestrord[otel]'; running without traces"
            )
            return None

        name = environ.get("OTEL_SERVICE_NAME") or config.telemetry.service_name
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(_exporter(config, environ)))
        capture = environ.get(CAPTURE, "").lower() == "true" or config.telemetry.capture_content
        return cls(config, provider, capture=capture)

    def job(self, ask: Ask) -> JobTrace:
        """Start ``ask``'s job span (child of its ``traceparent``, when it has one)."""
        parent = None
        if ask.traceparent:
            parent = self.propagator.extract({"traceparent": ask.traceparent})
        span = self.tracer.start_span("orchestrord.job", context=parent, attributes=_job_attrs(ask))
        if self.capture:
            span.set_attribute("gen_ai.input.messages", _input_messages(ask))
        return JobTrace(self, span)

    def shutdown(self) -> None:
        """Flush what is queued (bounded by the processor's own timeout) and stop."""
        shutdown = getattr(self.provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


class JobTrace:
    """One job's spans; fed from the coordinator's thread, finished from any thread."""

    def __init__(self, tracing: Tracing, span: Any) -> None:
        self.tracing = tracing
        self.span = span
        self.context = tracing.api.set_span_in_context(span)  # the parent of its stages
        self.stages: dict[int, tuple[Any, Any]] = {}  # round index -> (span, its context)
        self._lock = threading.Lock()

    def on_event(self, event: JobEvent) -> None:
        """A stage starts or ends; a reply ends its call span."""
        if event.type == "round_started":
            self._start_stage(event)
        elif event.type == "reply" and event.reply is not None:
            self._call(event, event.reply)
        elif event.type == "round_finished":
            with self._lock:
                stage = self.stages.pop(event.round_index, None)
            if stage is not None:
                stage[0].end()

    def _start_stage(self, event: JobEvent) -> None:
        attrs = {"orchestrord.stage": event.round, "orchestrord.stage_index": event.round_index}
        stage = self.tracing.tracer.start_span(
            f"orchestrord.stage {event.round}", context=self.context, attributes=attrs
        )
        with self._lock:
            self.stages[event.round_index] = (stage, self.tracing.api.set_span_in_context(stage))

    def _call(self, event: JobEvent, reply: ModelReply) -> None:
        trace = self.tracing.api
        with self._lock:
            stage = self.stages.get(event.round_index)
        parent = self.context if stage is None else stage[1]
        end = time.time_ns()
        start = end - int(reply.latency_ms * 1_000_000)
        attrs = _call_attrs(self.tracing.static.get(reply.model), reply)
        if self.tracing.capture:
            if reply.prompt is not None:
                attrs["gen_ai.input.messages"] = _text_messages("user", reply.prompt)
            if reply.text is not None:
                attrs["gen_ai.output.messages"] = _text_messages("assistant", reply.text)
        span = self.tracing.tracer.start_span(
            f"chat {attrs.get('gen_ai.request.model', reply.model)}",
            context=parent,
            kind=trace.SpanKind.CLIENT,
            start_time=start,
            attributes=attrs,
        )
        _call_events(span, reply, start)
        if not reply.ok:
            span.set_status(trace.Status(trace.StatusCode.ERROR, _error_type(reply)))
        span.end(end_time=end)

    def finish(self, result: JobResult | Exception) -> None:
        """End the job span (and any stage the job left open) with the outcome."""
        trace = self.tracing.api
        with self._lock:
            stages, self.stages = list(self.stages.values()), {}
        for stage, _ in stages:
            stage.end()
        if isinstance(result, Exception):
            self.span.set_attribute("error.type", getattr(result, "code", type(result).__name__))
            self.span.set_status(trace.Status(trace.StatusCode.ERROR, str(result)))
        else:
            self.span.set_attributes(_result_attrs(result))
            if self.tracing.capture and result.answer is not None:
                self.span.set_attribute(
                    "gen_ai.output.messages", _text_messages("assistant", result.answer)
                )
            if not result.ok:
                self.span.set_status(trace.Status(trace.StatusCode.ERROR, result.status))
        self.span.end()


def _exporter(config: Config, environ: Mapping[str, str]) -> Any:
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    endpoint = None
    if not any(environ.get(k) for k in ENDPOINTS) and config.telemetry.otlp_endpoint:
        endpoint = config.telemetry.otlp_endpoint.rstrip("/") + "/v1/traces"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()


def _job_attrs(ask: Ask) -> dict[str, Any]:
    text = ask.prompt if ask.messages is None else _input_messages(ask)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "orchestrord",
        "orchestrord.job_id": ask.job_id,
        "orchestrord.prompt_sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
        "orchestrord.pipeline": ask.pipeline or "default",
    }
    if ask.strategy:
        attrs["orchestrord.strategy"] = ask.strategy
    if ask.models:
        attrs["orchestrord.models"] = list(ask.models)
    return attrs


def _result_attrs(result: JobResult) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "orchestrord.status": result.status,
        "orchestrord.strategy": result.strategy,
        "orchestrord.cost_usd": result.cost_usd,
        "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens,
        "gen_ai.response.finish_reasons": [result.finish_reason],
    }
    optional = {
        "orchestrord.synthesizer": result.synthesizer,
        "orchestrord.synthesizer_reason": result.synthesizer_reason,
        "orchestrord.confidence": result.confidence,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if result.escalations:
        attrs["orchestrord.escalations"] = [str(e.get("stage")) for e in result.escalations]
    if result.cached:
        attrs["orchestrord.cached"] = True
    return attrs


def _model_attrs(model: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(model.provider, model.options),
        "gen_ai.request.model": model.model,
        "gen_ai.request.max_tokens": model.max_tokens,
        "gen_ai.request.temperature": model.temperature,
        "orchestrord.model": model.name,
    }


def _call_attrs(static: dict[str, Any] | None, reply: ModelReply) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(static or {"gen_ai.operation.name": "chat"})
    attrs["orchestrord.model"] = reply.model
    if reply.attempts > 1:
        attrs["orchestrord.attempts"] = reply.attempts
    if reply.usage is not None:
        attrs["gen_ai.usage.input_tokens"] = reply.usage.input_tokens
        attrs["gen_ai.usage.output_tokens"] = reply.usage.output_tokens
    if reply.ok:
        reason = "tool_calls" if reply.tool_calls else "stop"
        attrs["gen_ai.response.finish_reasons"] = [reason]
        attrs["orchestrord.cost_usd"] = reply.cost_usd
    else:
        attrs["error.type"] = _error_type(reply)
    return attrs


def _call_events(span: Any, reply: ModelReply, start_ns: int) -> None:
    """Retries and the limiter's wait, as the call reported them."""
    waited_ms = reply.waited_ms
    if waited_ms > 0:
        span.add_event(
            "orchestrord.limiter_wait", {"orchestrord.wait_ms": waited_ms}, timestamp=start_ns
        )
    for attempt in range(2, max(1, reply.attempts) + 1):
        span.add_event("orchestrord.retry", {"orchestrord.attempt": attempt})


def _error_type(reply: ModelReply) -> str:
    return reply.error.code if reply.error is not None else reply.status


def _input_messages(ask: Ask) -> str:
    if ask.messages is None:
        return _text_messages("user", ask.prompt)
    return json.dumps([m.to_dict() for m in ask.messages], ensure_ascii=False)


def _text_messages(role: str, text: str) -> str:
    """The GenAI conventions' message shape: role and parts."""
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])
