"""OpenTelemetry traces (issue 21): a span per job, per stage and per provider call with
the GenAI attributes, the caller's traceparent as the parent, content only when asked,
and nothing at all when no endpoint is configured."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from actors.config import config_from_dict
from actors.tracing import Tracing, enabled
from messages.commands import Ask
from messages.events import JobEvent
from messages.results import ErrorInfo, JobResult, ModelReply, RoundResult, Usage

CONFIG = config_from_dict(
    {
        "models": [
            {"name": "gpt", "provider": "openai", "model": "gpt-4o-mini", "max_tokens": 256},
            {"name": "gem", "provider": "gemini", "model": "gemini-2.5-flash"},
        ]
    }
)
PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PARENT_TRACE}-b7ad6b7169203331-01"


def _tracing(capture: bool = False) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(CONFIG, provider, capture=capture), exporter


def _run_job(tracing: Tracing, ask: Ask) -> None:
    ok = ModelReply(
        model="gpt", status="ok", text="Paris", latency_ms=120.0,
        usage=Usage(input_tokens=12, output_tokens=3), cost_usd=0.0001, attempts=2,
        prompt="What is the capital of France?",
    )  # fmt: skip
    failed = ModelReply(
        model="gem", status="error", latency_ms=30.0, attempts=1,
        error=ErrorInfo(code="rate_limited", message="429"),
    )  # fmt: skip
    trace = tracing.job(ask)
    trace.on_event(
        JobEvent(type="round_started", job_id=ask.job_id, round="initial", round_index=0)
    )
    for reply in (ok, failed):
        trace.on_event(
            JobEvent(type="reply", job_id=ask.job_id, round="initial", round_index=0, reply=reply)
        )
    trace.on_event(
        JobEvent(type="round_finished", job_id=ask.job_id, round="initial", round_index=0)
    )
    trace.finish(
        JobResult(
            job_id=ask.job_id, status="ok", answer="Paris", strategy="vote", confidence=1.0,
            cost_usd=0.0001, usage=Usage(input_tokens=12, output_tokens=3),
            rounds=(RoundResult(name="initial", replies=(ok, failed)),),
            synthesizer_reason="the vote's winner",
        )
    )  # fmt: skip


def test_a_job_is_a_span_with_a_stage_span_and_a_span_per_call() -> None:
    tracing, exporter = _tracing()
    _run_job(tracing, Ask(prompt="What is the capital of France?", strategy="vote"))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {
        "orchestrord.job", "orchestrord.stage initial", "chat gpt-4o-mini", "chat gemini-2.5-flash",
    }  # fmt: skip
    job, stage = spans["orchestrord.job"], spans["orchestrord.stage initial"]
    call, failed = spans["chat gpt-4o-mini"], spans["chat gemini-2.5-flash"]
    assert stage.parent.span_id == job.context.span_id
    assert call.parent.span_id == stage.context.span_id
    assert call.kind is SpanKind.CLIENT
    assert (
        dict(call.attributes).items()
        >= {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.max_tokens": 256,
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 3,
            "orchestrord.model": "gpt",
        }.items()
    )
    assert tuple(call.attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert (call.end_time - call.start_time) == 120_000_000  # the call's own latency
    assert [e.name for e in call.events] == ["orchestrord.retry"]  # attempt 2
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "rate_limited"
    assert failed.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert job.attributes["orchestrord.strategy"] == "vote"
    assert job.attributes["orchestrord.confidence"] == 1.0
    assert job.attributes["orchestrord.synthesizer_reason"] == "the vote's winner"
    assert len(job.attributes["orchestrord.prompt_sha256"]) == 16


def test_the_callers_traceparent_is_the_jobs_parent() -> None:
    tracing, exporter = _tracing()
    _run_job(tracing, Ask(prompt="q", traceparent=TRACEPARENT))
    job = next(s for s in exporter.get_finished_spans() if s.name == "orchestrord.job")
    assert format(job.context.trace_id, "032x") == PARENT_TRACE
    assert format(job.parent.span_id, "016x") == "b7ad6b7169203331"


def test_message_content_only_when_capture_is_on() -> None:
    tracing, exporter = _tracing(capture=False)
    _run_job(tracing, Ask(prompt="What is the capital of France?"))
    for span in exporter.get_finished_spans():
        assert "gen_ai.input.messages" not in span.attributes
        assert "gen_ai.output.messages" not in span.attributes
        assert "France" not in json.dumps(dict(span.attributes))
    tracing, exporter = _tracing(capture=True)
    _run_job(tracing, Ask(prompt="What is the capital of France?"))
    call = next(s for s in exporter.get_finished_spans() if s.name == "chat gpt-4o-mini")
    messages = json.loads(call.attributes["gen_ai.output.messages"])
    assert messages == [{"role": "assistant", "parts": [{"type": "text", "content": "Paris"}]}]


def test_a_job_that_could_not_start_ends_its_span_with_the_error() -> None:
    from messages.errors import InvalidParams

    tracing, exporter = _tracing()
    tracing.job(Ask(prompt="q")).finish(InvalidParams("models: unknown 'x'"))
    [job] = exporter.get_finished_spans()
    assert job.status.status_code is StatusCode.ERROR
    assert job.attributes["error.type"] == "invalid_params"


@pytest.mark.parametrize(
    ("environ", "toml", "expected"),
    [
        ({}, {}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, {}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, {}, True),
        ({}, {"otlp_endpoint": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, {}, False),
    ],
)
def test_traces_are_on_only_when_an_endpoint_is_set(environ, toml, expected) -> None:
    config = config_from_dict({"models": [{"name": "a", "provider": "fake"}], "telemetry": toml})
    assert enabled(config, environ) is expected
    assert (Tracing.from_config(config, environ) is not None) is expected


def test_a_bad_endpoint_or_traceparent_is_refused_by_name() -> None:
    from messages.errors import ConfigError, InvalidParams
    from messages.options import OPTIONS_BY_NAME

    with pytest.raises(ConfigError, match=r"telemetry\.otlp_endpoint"):
        config_from_dict(
            {"models": [{"name": "a", "provider": "fake"}], "telemetry": {"otlp_endpoint": "x"}}
        )
    with pytest.raises(InvalidParams, match="traceparent"):
        OPTIONS_BY_NAME["traceparent"].validate("00-zz-11-01")
    assert OPTIONS_BY_NAME["traceparent"].validate(TRACEPARENT) == TRACEPARENT


def test_a_limiter_wait_is_an_event_on_the_call_span() -> None:
    tracing, exporter = _tracing()
    ask = Ask(prompt="q")
    trace = tracing.job(ask)
    reply = ModelReply(model="gpt", status="ok", text="a", latency_ms=900.0, waited_ms=750.0)
    trace.on_event(
        JobEvent(type="reply", job_id=ask.job_id, round="initial", round_index=0, reply=reply)
    )
    trace.finish(JobResult(job_id=ask.job_id, status="ok", answer="a"))
    call = next(s for s in exporter.get_finished_spans() if s.name == "chat gpt-4o-mini")
    [wait] = [e for e in call.events if e.name == "orchestrord.limiter_wait"]
    assert wait.attributes["orchestrord.wait_ms"] == 750.0
    assert wait.timestamp == call.start_time


def test_a_streamed_call_measures_its_time_to_first_token(start_orch) -> None:
    orch = start_orch({"models": [{"name": "a", "provider": "fake", "reply": "one two three"}]})
    events: list[JobEvent] = []
    result = orch.ask("q", rounds=["initial"], listener=events.append)  # one model: streams
    assert result.status == "ok" and any(e.type == "delta" for e in events)
    text = orch.metrics.telemetry.exposition().decode()
    line = next(
        x for x in text.splitlines()
        if x.startswith("orchestrord_call_time_to_first_token_seconds_count{")
    )  # fmt: skip
    assert 'orchestrord_model="a"' in line and float(line.split()[-1]) == 1.0
