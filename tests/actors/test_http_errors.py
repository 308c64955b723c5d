"""The door's error answers: OpenAI's error body, the field at fault in ``param``, and
``x-should-retry: false`` wherever a retry would run (and pay for) a job again."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request

from actors.daemon.http.errors import HttpError, StreamFailed, on_unexpected
from messages.errors import InvalidParams, JobTimeoutError, OverloadedError, ShuttingDown


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (HttpError(400, "bad"), "false"),
        (HttpError(502, "no round", "round_failed"), "false"),
        (HttpError.of(JobTimeoutError("late")), "false"),
        (HttpError(408, "slow body", "request_timeout"), None),
        (HttpError.of(ShuttingDown("bye")), None),
        (HttpError.of(OverloadedError("full", data={"retry_after_s": 2.4})), None),
    ],
)
def test_only_refusals_before_any_work_invite_a_retry(error: HttpError, retry) -> None:
    response = error.response()
    assert response.headers.get("x-should-retry") == retry
    body = json.loads(bytes(response.body))
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_overloaded_says_when_to_come_back() -> None:
    error = HttpError.of(OverloadedError("full", data={"retry_after_s": 2.4}))
    assert error.status == 429 and error.response().headers["retry-after"] == "2"
    assert error.kind == "rate_limit_error"


def test_the_engines_complaint_names_its_field() -> None:
    error = HttpError.of(InvalidParams("top_p must be a finite number >= 0 and <= 1"))
    assert error.status == 400 and error.param == "top_p"


def test_a_stream_failure_is_a_last_data_event_with_the_error_body() -> None:
    event = StreamFailed.of_error(HttpError(504, "late", "job_timeout")).event()
    assert event.startswith("data: ") and event.endswith("\n\n")
    assert json.loads(event[6:])["error"]["code"] == "job_timeout"


def test_an_unexpected_error_is_an_openai_shaped_500() -> None:
    scope = {"type": "http", "method": "POST", "path": "/v1/x", "headers": [], "query_string": b""}
    response = asyncio.run(on_unexpected(Request(scope), ZeroDivisionError("x")))
    assert response.status_code == 500
    error = json.loads(bytes(response.body))["error"]
    assert error["type"] == "server_error" and error["code"] == "internal_error"
