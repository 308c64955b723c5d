"""The OpenAI-compatible front door (CONTRACT §9), driven by the real openai SDK (sync
and async, streaming and not), by curl and by raw HTTP, against a real daemon."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from daemon_helpers import ROOT, rpc
from helpers import WAIT, fake_models

KEY = "test-http-key-0123456789"
ENV = {"ORCHESTRORD_API_KEY": KEY}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(spawn, models=None, env=ENV, http_extra=None, **extra):
    port = free_port()
    config = {
        "models": models or fake_models(("a", "b"), reply="Canberra is the capital."),
        "http": {"listen": f"127.0.0.1:{port}", **(http_extra or {})},
        **extra,
    }
    d = spawn(config, env=env)
    d.url = f"http://127.0.0.1:{port}"
    return d


def client(d, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{d.url}/v1", api_key=key, max_retries=0, timeout=WAIT)


QUESTION = [{"role": "user", "content": "Capital of Australia?"}]


def test_the_openai_sdk_asks_and_gets_a_completion_with_the_job_result(daemon) -> None:
    d = start(daemon)
    reply = client(d).chat.completions.create(model="orchestrord", messages=QUESTION)
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == "Canberra is the capital."
    job = reply.model_extra["orchestrord"]
    assert job["status"] == "ok" and [r["name"] for r in job["rounds"]] == [
        "initial",
        "meta",
        "synthesis",
    ]
    assert reply.usage.total_tokens == job["usage"]["input_tokens"] + job["usage"]["output_tokens"]
    stored = rpc(d, "job", {"job_id": job["job_id"]})["result"]  # the run store has it
    assert stored["messages"] == QUESTION


def test_the_sdk_streams_the_answer_as_chunks(daemon) -> None:
    d = start(daemon)
    stream = client(d).chat.completions.create(
        model="orchestrord", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    # an ensemble's answer may be replaced until the job ends: it is held, then sent whole
    assert pieces == ["Canberra is the capital."]
    assert usage is not None and usage.total_tokens > 0


def test_a_failed_job_ends_its_stream_with_an_openai_error_the_sdk_raises(daemon) -> None:
    d = start(daemon, models=fake_models(("a", "b"), fail_rate=1.0, max_attempts=1))
    stream = client(d).chat.completions.create(model="orchestrord", messages=QUESTION, stream=True)
    with pytest.raises(openai.APIError) as caught:
        for _chunk in stream:
            pass
    assert caught.value.body is not None and "code" in caught.value.body
    failed = client(d).with_options(max_retries=0)
    with pytest.raises(openai.APIStatusError) as status:  # not streamed: the status says it
        failed.chat.completions.create(model="orchestrord", messages=QUESTION)
    assert status.value.status_code in (502, 503)
    assert status.value.body["code"] == caught.value.body["code"]  # type: ignore[index]


def test_single_model_passthrough_streams_that_models_tokens(daemon) -> None:
    d = start(daemon)
    stream = client(d).chat.completions.create(model="b", messages=QUESTION, stream=True)
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["Canberra ", "is ", "the ", "capital."]  # as the provider wrote them


def test_the_async_sdk_streams_and_not(daemon) -> None:
    d = start(daemon)

    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=f"{d.url}/v1", api_key=KEY, max_retries=0, timeout=WAIT
        ) as api:
            whole = await api.chat.completions.create(model="orchestrord/vote", messages=QUESTION)
            stream = await api.chat.completions.create(
                model="orchestrord", messages=QUESTION, stream=True
            )
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return whole.choices[0].message.content, "".join(parts)

    whole, streamed = asyncio.run(run())
    assert whole == streamed == "Canberra is the capital."


def test_model_names_pick_a_pipeline_a_strategy_or_one_model(daemon) -> None:
    d = start(
        daemon,
        models=[
            {"name": "a", "provider": "fake", "reply": "from a"},
            {"name": "b", "provider": "fake", "reply": "from b"},
        ],
        pipelines={"quick": {"stages": [{"kind": "initial"}, {"kind": "vote"}]}},
    )
    api = client(d)
    one = api.chat.completions.create(model="b", messages=QUESTION)
    assert one.choices[0].message.content == "from b"
    rounds = one.model_extra["orchestrord"]["rounds"]
    assert [[r["model"] for r in rnd["replies"]] for rnd in rounds] == [["b"]]  # b alone
    quick = api.chat.completions.create(model="orchestrord/quick", messages=QUESTION)
    assert quick.model_extra["orchestrord"]["pipeline"] == "quick"
    rank = api.chat.completions.create(model="orchestrord/rank", messages=QUESTION)
    assert rank.model_extra["orchestrord"]["strategy"] == "rank"
    listed = [m.id for m in api.models.list()]
    assert listed == [
        "orchestrord",
        "orchestrord/quick",
        "orchestrord/synthesize",
        "orchestrord/vote",
        "orchestrord/rank",
        "a",
        "b",
    ]
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        api.chat.completions.create(model="gpt-9", messages=QUESTION)


def test_response_format_json_schema_becomes_the_jobs_schema(daemon) -> None:
    d = start(daemon, models=fake_models(("a",), reply='{"city": "Canberra"}'))
    reply = client(d).chat.completions.create(
        model="orchestrord",
        messages=QUESTION,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "city",
                "schema": {"type": "object", "required": ["city"]},
            },
        },
    )
    assert json.loads(reply.choices[0].message.content) == {"city": "Canberra"}
    record = rpc(d, "job", {"job_id": reply.model_extra["orchestrord"]["job_id"]})["result"]
    assert record["options"]["schema"] == {"type": "object", "required": ["city"]}


def test_a_wrong_or_missing_key_is_401_and_healthz_needs_none(daemon) -> None:
    d = start(daemon)
    with pytest.raises(openai.AuthenticationError):
        client(d, key="wrong").chat.completions.create(model="orchestrord", messages=QUESTION)
    bare = httpx2.get(f"{d.url}/v1/models", timeout=WAIT)
    assert bare.status_code == 401 and bare.json()["error"]["type"] == "authentication_error"
    metrics = httpx2.get(f"{d.url}/metrics", timeout=WAIT)
    assert metrics.status_code == 401
    health = httpx2.get(f"{d.url}/healthz", timeout=WAIT)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    for odd in (b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer \xff\xfe", b"Basic " + KEY.encode()):
        response = httpx2.get(f"{d.url}/v1/models", headers={"Authorization": odd}, timeout=WAIT)
        assert response.status_code == 401, odd  # a key that is not ASCII is wrong, not a 500


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "not valid JSON"),
        (b'{"model": "orchestrord", "messages": [1]', 400, "not valid JSON"),
        (b'{"model": "orchestrord"}', 400, "messages is required"),
        (b'{"messages": [{"role": "user", "content": "q"}]}', 400, "model is required"),
        (b'{"model": "orchestrord", "messages": []}', 400, "non-empty list"),
        (
            b'{"model": "orchestrord/nope", "messages": [{"role": "user", "content": "q"}]}',
            404,
            "nope",
        ),
        (
            b'{"model": "orchestrord", "n": 2, "messages": [{"role": "user", "content": "q"}]}',
            400,
            "n is not supported (only 1)",
        ),
        (
            b'{"model": "orchestrord", "tools": [{}], '
            b'"messages": [{"role": "user", "content": "q"}]}',
            400,
            "tools[0]",
        ),
        (
            b'{"model": "orchestrord", "messages": [{"role": "user", "content": "\\ud800"}]}',
            400,
            "surrogate",
        ),
        (
            b'{"model": "orchestrord", "temperature": 9, '
            b'"messages": [{"role": "user", "content": "q"}]}',
            400,
            "temperature",
        ),
        (
            b'{"model": "orchestrord", "stream": "yes", '
            b'"messages": [{"role": "user", "content": "q"}]}',
            400,
            "stream must be a boolean",
        ),
        (
            b'{"model": "orchestrord", "user": 5, "messages": [{"role": "user", "content": "q"}]}',
            400,
            "user must be a string",
        ),
    ],
)
def test_bad_bodies_get_openai_error_bodies(daemon, body, status, words) -> None:
    d = start(daemon)
    response = httpx2.post(
        f"{d.url}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        timeout=WAIT,
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert rpc(d, "ping")["result"] == "pong"  # nothing else is disturbed


def test_an_oversized_body_is_413(daemon) -> None:
    d = start(daemon, daemon={"max_request_bytes": 2000})
    response = httpx2.post(
        f"{d.url}/v1/chat/completions",
        json={"model": "orchestrord", "messages": [{"role": "user", "content": "x" * 5000}]},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=WAIT,
    )
    assert response.status_code == 413


def test_overloaded_is_429_with_retry_after(daemon) -> None:
    d = start(
        daemon,
        models=fake_models(("slow",), reply="late", latency_ms=3000),
        daemon={"max_inflight_jobs": 1},
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"model": "orchestrord", "messages": QUESTION}
    with (
        httpx2.Client(timeout=WAIT) as http,
        http.stream(
            "POST", f"{d.url}/v1/chat/completions", json={**body, "stream": True}, headers=headers
        ) as first,
    ):
        lines = first.iter_lines()  # kept: a dropped iterator closes the stream (a disconnect)
        next(lines)  # the job is running
        second = http.post(f"{d.url}/v1/chat/completions", json=body, headers=headers)
        streamed = http.post(  # a stream is refused before it starts, with the same status
            f"{d.url}/v1/chat/completions", json={**body, "stream": True}, headers=headers
        )
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1, second.text[:600]
    assert second.json()["error"]["code"] == "overloaded"
    assert streamed.status_code == 429, streamed.text
    assert streamed.json()["error"]["code"] == "overloaded"


def open_stream(http: httpx2.Client, d) -> Any:
    return http.stream(
        "POST",
        f"{d.url}/v1/chat/completions",
        json={"model": "orchestrord", "messages": QUESTION, "stream": True},
        headers={"Authorization": f"Bearer {KEY}"},
    )


def test_a_client_that_disconnects_mid_stream_cancels_its_job(daemon) -> None:
    d = start(daemon, models=fake_models(("slow",), reply="late", latency_ms=5000))
    with httpx2.Client(timeout=WAIT) as http, open_stream(http, d) as response:
        first = json.loads(next(response.iter_lines()).removeprefix("data: "))
    job_id = first["id"].removeprefix("chatcmpl-")
    deadline = time.monotonic() + WAIT
    while True:  # the daemon's own record says what became of the job
        record = rpc(d, "job", {"job_id": job_id})["result"]
        if record["status"] != "running":
            break
        assert time.monotonic() < deadline, record
    assert record["status"] == "cancelled"
    assert rpc(d, "status")["result"]["inflight_jobs"] == 0  # nothing leaks


def test_sigterm_lets_an_open_stream_finish(daemon) -> None:
    d = start(daemon, models=fake_models(("slow",), reply="done at last", latency_ms=400))
    lines = []
    with httpx2.Client(timeout=WAIT) as http, open_stream(http, d) as response:
        iterator = response.iter_lines()
        lines.append(next(iterator))  # started
        d.signal(signal.SIGTERM)
        lines.extend(iterator)
    lines = [line for line in lines if line]  # SSE events end with a blank line
    assert lines[-1] == "data: [DONE]", lines
    pieces = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in pieces if p["choices"])
    assert text == "done at last"
    assert d.wait() == 0


def test_metrics_use_the_genai_names(daemon) -> None:
    d = start(daemon)
    client(d).chat.completions.create(model="orchestrord", messages=QUESTION)
    text = httpx2.get(
        f"{d.url}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=WAIT
    ).text
    assert 'gen_ai_client_operation_duration_seconds_bucket{error_type="",' in text
    assert 'gen_ai_provider_name="fake"' in text and 'orchestrord_model="a"' in text
    assert "gen_ai_system" not in text and "_created" not in text
    assert "gen_ai_client_token_usage_count{" in text and 'gen_ai_token_type="output"' in text
    assert 'orchestrord_jobs_total{status="ok",strategy="synthesize"} 1.0' in text
    assert 'orchestrord_rounds_total{round="meta"} 1.0' in text
    assert "orchestrord_inflight_jobs 0.0" in text
    assert "orchestrord_limiter_wait_seconds_count" in text


def test_curl_works_streaming_and_not(daemon) -> None:
    d = start(daemon)
    common = [
        "curl",
        "-sS",
        f"{d.url}/v1/chat/completions",
        "-H",
        f"Authorization: Bearer {KEY}",
        "-H",
        "Content-Type: application/json",
    ]
    body = {"model": "orchestrord", "messages": QUESTION}
    plain = subprocess.run(
        [*common, "-d", json.dumps(body)], capture_output=True, text=True, timeout=WAIT, check=True
    )
    assert json.loads(plain.stdout)["choices"][0]["message"]["content"] == (
        "Canberra is the capital."
    )
    streamed = subprocess.run(
        [*common, "-N", "-d", json.dumps({**body, "stream": True})],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    )
    assert streamed.stdout.rstrip().endswith("data: [DONE]")


def test_without_a_key_variable_the_daemon_makes_one_and_orchestrctl_prints_it(daemon) -> None:
    d = start(daemon, env={"ORCHESTRORD_API_KEY": ""})
    path = Path(d.dir) / "state" / "http.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    printed = subprocess.run(
        [str(ROOT / "bin" / "orchestrctl"), "http-key", "--config", str(d.config_path)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "ORCHESTRORD_API_KEY": ""},
    )
    assert printed.returncode == 0 and printed.stdout.strip() == key
    reply = client(d, key=key).chat.completions.create(model="orchestrord", messages=QUESTION)
    assert reply.choices[0].message.content
