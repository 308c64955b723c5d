"""Honest streams through the HTTP door (CONTRACT §13, issue 24): keep-alives while the
panel works, only the final answer for a client that concatenates deltas, no SDK retry
of a terminal failure, no task left pending by a dropped stream, no connection held by
a stalled client."""

from __future__ import annotations

import json
import socket
import time

import httpx2
import openai
import pydantic
import pytest
from daemon_helpers import rpc
from helpers import WAIT, fake_models
from test_http import KEY, QUESTION, client, open_stream, start

from actors.daemon.http.core import Text, final_deltas
from actors.daemon.http.errors import StreamFailed
from messages.events import JobEvent
from messages.results import JobResult

HEADERS = {"Authorization": f"Bearer {KEY}"}


def stream_lines(d, body: dict) -> tuple[httpx2.Response, list[str]]:
    with (
        httpx2.Client(timeout=WAIT) as http,
        http.stream("POST", f"{d.url}/v1/chat/completions", json=body, headers=HEADERS) as r,
    ):
        return r, [line for line in r.iter_lines() if line]


def content(lines: list[str]) -> str:
    chunks = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_stream_sends_keepalive_comments_while_the_panel_works(daemon) -> None:
    d = start(
        daemon,
        models=fake_models(("a", "b"), reply="Canberra.", latency_ms=300),
        http_extra={"keepalive_s": 0.05},
    )
    response, lines = stream_lines(
        d, {"model": "orchestrord", "messages": QUESTION, "stream": True}
    )
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-should-retry"] == "false"
    first_content = next(i for i, x in enumerate(lines) if '"content": "Canberra.' in x)
    assert ": keepalive" in lines[:first_content]  # the panel's rounds took 3 x 300 ms
    assert lines[-1] == "data: [DONE]" and content(lines) == "Canberra."
    streamed = client(d).chat.completions.create(  # the SDK skips the comments
        model="orchestrord", messages=QUESTION, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Canberra."


class City(pydantic.BaseModel):
    city: str


def test_a_repaired_answer_streams_as_the_final_answer_only(daemon) -> None:
    # a alone: initial, meta, then a synthesis that is not JSON, repaired on the 4th call
    replies = ["Paris, I think", "Paris", "It is sunny in Paris", '{"city": "Paris"}']
    d = start(daemon, models=fake_models(("a",), reply=replies))
    with client(d).chat.completions.stream(
        model="orchestrord", messages=QUESTION, response_format=City
    ) as stream:
        pieces = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(pieces) == '{"city": "Paris"}'  # not 'It is sunny in Paris{"city"...'
    assert final.choices[0].message.parsed == City(city="Paris")
    job = rpc(d, "job", {"job_id": final.id.removeprefix("chatcmpl-")})["result"]
    synthesis = [r["text"] for r in job["rounds"][-1]["replies"]]
    assert synthesis == ["It is sunny in Paris", '{"city": "Paris"}']  # it was repaired


def jobs(d) -> int:
    return len(rpc(d, "runs", {"limit": 100})["result"]["runs"])


@pytest.mark.parametrize(
    ("models", "pipeline", "status", "code"),
    [
        (fake_models(("a", "b"), fail_rate=1.0, max_attempts=1), {}, 502, "round_failed"),
        (fake_models(("a",), latency_ms=3000), {"job_timeout_s": 0.3}, 504, "job_timeout"),
    ],
)
def test_the_sdk_with_default_retries_runs_a_failed_job_once(
    daemon, models, pipeline, status, code
) -> None:
    d = start(daemon, models=models, pipeline=pipeline)
    api = openai.OpenAI(base_url=f"{d.url}/v1", api_key=KEY, timeout=WAIT)  # max_retries=2
    with pytest.raises(openai.APIStatusError) as caught:
        api.chat.completions.create(model="orchestrord", messages=QUESTION)
    assert caught.value.status_code == status and caught.value.body["code"] == code
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert jobs(d) == 1  # one request, one ensemble paid for


def test_dropped_streams_leave_no_task_pending(daemon) -> None:
    d = start(daemon, models=fake_models(("slow",), reply="late", latency_ms=5000))
    for _ in range(5):
        with httpx2.Client(timeout=WAIT) as http, open_stream(http, d) as response:
            next(response.iter_lines())  # the stream has started; then it is dropped
    deadline = time.monotonic() + WAIT
    while rpc(d, "status")["result"]["inflight_jobs"]:
        assert time.monotonic() < deadline
    for _ in range(20):  # more requests: what was dropped is collected meanwhile
        httpx2.get(f"{d.url}/v1/models", headers=HEADERS, timeout=WAIT)
    assert "Task was destroyed" not in d.stderr()
    assert "never retrieved" not in d.stderr()


def test_a_client_that_never_finishes_its_headers_is_dropped(daemon) -> None:
    d = start(daemon, http_extra={"header_timeout_s": 0.3})
    host, port = d.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # and no more
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the daemon, not by our timeout
        assert time.monotonic() - started < WAIT / 2


def test_a_client_that_stalls_mid_body_gets_408(daemon) -> None:
    d = start(daemon, http_extra={"body_timeout_s": 0.3})
    host, port = d.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"model": ')  # 10 of the 100 bytes
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer
    assert b'"code":"request_timeout"' in rest.replace(b" ", b"")
    assert rpc(d, "ping")["result"] == "pong"


def delta(text: str) -> JobEvent:
    return JobEvent(type="delta", job_id="j", round="initial", round_index=0, text=text)


RESET = JobEvent(type="reset", job_id="j", round="initial", round_index=0)


def test_a_live_stream_sends_only_what_extends_what_was_sent() -> None:
    text = Text()
    assert [text.take(e) for e in (delta("Can"), delta("berra"))] == ["Can", "berra"]
    # the call is retried: it says the same again, then goes on
    assert [text.take(e) for e in (RESET, delta("Can"), delta("berra is"))] == [None, None, " is"]
    done = JobResult(job_id="j", status="ok", answer="Canberra is it.")
    assert final_deltas(done, text) == [{"content": " it."}]  # the rest, once final


def test_a_live_stream_whose_answer_changed_ends_with_answer_replaced() -> None:
    text = Text()
    text.take(delta("Sydney"))
    assert [text.take(e) for e in (RESET, delta("Canberra"))] == [None, None]
    with pytest.raises(StreamFailed) as caught:
        final_deltas(JobResult(job_id="j", status="ok", answer="Canberra"), text)
    assert caught.value.code == "answer_replaced" and caught.value.status == 502
