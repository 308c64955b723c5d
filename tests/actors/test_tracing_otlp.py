"""Traces over real OTLP/HTTP: a daemon exports a job's spans to a loopback collector
(protobuf, decoded with the OpenTelemetry proto package); the socket's traceparent is the
job's parent; a dead collector costs nothing but the spans."""

from __future__ import annotations

import http.server
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helpers import rpc
from helpers import WAIT, fake_models
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Collector(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP protobuf exports at /v1/traces and keeps the spans."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []
        self.got = threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            self.server.resources.append(attrs)
            for scope in resource_spans.scope_spans:
                self.server.spans.extend(scope.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.server.got.set()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.shutdown()
    server.server_close()


def _env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "orchestrord-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export soon after a job, not every 5 s
    }


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_a_daemon_exports_a_jobs_spans_over_otlp_http(daemon, collector) -> None:
    d = daemon({"models": fake_models(("a", "b"), reply="Paris")}, env=_env(collector.url))
    result = rpc(d, "ask", {"prompt": "Capital of France?", "traceparent": TRACEPARENT})
    assert result["result"]["status"] == "ok", result
    d.signal(signal.SIGTERM)  # stopping flushes whatever the batch still holds
    assert d.wait() == 0
    assert collector.got.wait(WAIT)
    names = sorted(s.name for s in collector.spans)
    assert names.count("orchestrord.job") == 1
    assert {"orchestrord.stage initial", "orchestrord.stage meta"} <= set(names)
    assert names.count("chat fake") == 5  # two models in initial and in meta, + synthesis
    job = next(s for s in collector.spans if s.name == "orchestrord.job")
    assert job.trace_id.hex() == TRACE_ID and job.parent_span_id.hex() == "00f067aa0ba902b7"
    assert {s.trace_id.hex() for s in collector.spans} == {TRACE_ID}
    call = next(s for s in collector.spans if s.name == "chat fake")
    attrs = _attrs(call)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "fake"
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert "gen_ai.input.messages" not in attrs  # content only when asked for
    assert collector.resources[0]["service.name"] == "orchestrord-test"


def test_a_dead_collector_costs_only_the_spans(daemon) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as gone:
        dead = f"http://127.0.0.1:{gone.server_address[1]}"  # closed when the block ends
    d = daemon({"models": fake_models(("a",), reply="ok")}, env=_env(dead))
    for _ in range(3):
        assert rpc(d, "ask", {"prompt": "q"})["result"]["status"] == "ok"
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
