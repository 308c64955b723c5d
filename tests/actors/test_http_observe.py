"""What the HTTP door tells the metrics and the traces (issue 21): each request's duration
by route template and status, a stream's time to the first token, and the caller's W3C
traceparent as the job's parent."""

from __future__ import annotations

import signal

import httpx2
import pytest
from helpers import WAIT
from test_http import ENV, KEY, QUESTION, client, start
from test_tracing_otlp import TRACE_ID, TRACEPARENT, Collector, _env

from actors.daemon.http.observe import traceparent

HEADERS = {"Authorization": f"Bearer {KEY}"}


def _metrics(d) -> list[str]:
    text = httpx2.get(f"{d.url}/metrics", headers=HEADERS, timeout=WAIT).text
    return text.splitlines()


def _count(lines: list[str], name: str, **labels: str) -> float:
    for line in lines:
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_each_request_is_counted_by_route_template_and_status(daemon) -> None:
    d = start(daemon)
    client(d).chat.completions.create(model="orchestrord", messages=QUESTION)
    assert (
        httpx2.get(f"{d.url}/v1/models/no-such", headers=HEADERS, timeout=WAIT).status_code == 404
    )
    assert httpx2.get(f"{d.url}/v1/models/a", headers=HEADERS, timeout=WAIT).status_code == 200
    lines = _metrics(d)
    name = "http_server_request_duration_seconds_count"
    chat = {"http_request_method": "POST", "http_route": "/v1/chat/completions"}
    assert _count(lines, name, http_response_status_code="200", **chat) == 1.0
    model = {"http_request_method": "GET", "http_route": "/v1/models/{model_id:path}"}
    assert _count(lines, name, http_response_status_code="404", **model) == 1.0
    assert _count(lines, name, http_response_status_code="200", **model) == 1.0
    assert not any("no-such" in line for line in lines)  # templates, never raw paths


def test_a_stream_counts_its_time_to_the_first_token(daemon) -> None:
    d = start(daemon)
    stream = client(d).chat.completions.create(model="orchestrord", messages=QUESTION, stream=True)
    assert "Canberra" in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    lines = _metrics(d)
    assert (
        _count(
            lines,
            "gen_ai_server_time_to_first_token_seconds_count",
            http_route="/v1/chat/completions",
            gen_ai_request_model="orchestrord",
        )
        == 1.0
    )


def test_the_callers_traceparent_header_is_the_jobs_parent(daemon) -> None:
    collector = Collector()
    try:
        d = start(daemon, env={**ENV, **_env(collector.url)})
        sdk = client(d).with_options(default_headers={"traceparent": TRACEPARENT})
        sdk.chat.completions.create(model="orchestrord", messages=QUESTION)
        d.signal(signal.SIGTERM)  # stopping flushes the batch
        assert d.wait() == 0
        assert collector.got.wait(WAIT)
        job = next(s for s in collector.spans if s.name == "orchestrord.job")
        assert job.trace_id.hex() == TRACE_ID
    finally:
        collector.shutdown()
        collector.server_close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (TRACEPARENT, TRACEPARENT),
        (TRACEPARENT.upper(), TRACEPARENT),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # all-zero trace
        ("ff-" + TRACEPARENT[3:], None),  # version ff is invalid
        ("00-xyz", None),
        ("", None),
    ],
)
def test_an_invalid_traceparent_is_ignored(header: str, expected: str | None) -> None:
    assert traceparent({"traceparent": header}) == expected
