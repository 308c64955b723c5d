"""The web console's handlers against a real daemon over real HTTP (no browser): no
data without a session, the login (wrong key, rate limit, one-time token from
``orchestrctl console``), logout, CSRF, the security headers on every page, asking and
cancelling, the history's filters and paging, a job's page and export, the models and
the evaluations."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import httpx2
import pytest
from daemon_helpers import ROOT, rpc
from helpers import WAIT, fake_models
from test_http import ENV, KEY, start

from actors.daemon.console.security import CSP

SECRET_PROMPT = "the-secret-prompt-7f3a"
ANSWER = "the answer is 42"


def web(d: Any) -> httpx2.Client:
    return httpx2.Client(base_url=d.url, follow_redirects=False, timeout=WAIT)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def log_in(client: httpx2.Client, key: str = KEY) -> httpx2.Response:
    form = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(form.text), "key": key, "next": "/"})


def logged_in(d: Any) -> tuple[httpx2.Client, str]:
    client = web(d)
    assert log_in(client).status_code == 303
    return client, csrf_of(client.get("/").text)


def ask(d: Any, prompt: str = SECRET_PROMPT, **params: Any) -> dict[str, Any]:
    reply = rpc(d, "ask", {"prompt": prompt, **params})
    assert "result" in reply, reply
    return reply["result"]


@pytest.fixture
def console(daemon) -> Any:
    return start(daemon, models=fake_models(("a", "b"), reply=ANSWER, rpm=600))


def test_without_a_session_nothing_shows_a_prompt_an_answer_or_a_job_id(console) -> None:
    job = ask(console)
    client = web(console)
    for path in ("/", "/jobs", "/models", "/evaluations", f"/jobs/{job['job_id']}"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert answer.text == ""
    for path in (f"/jobs/{job['job_id']}/export", f"/jobs/{job['job_id']}/events"):
        answer = client.get(path)
        assert answer.status_code == 401 and answer.json() == {"error": "log in first"}
    for path in ("/ask", f"/jobs/{job['job_id']}/cancel", "/logout"):
        assert client.post(path, data={"prompt": "x"}).status_code == 303
    login = client.get("/login")
    for secret in (SECRET_PROMPT, ANSWER, job["job_id"]):
        assert secret not in login.text
    assert len(rpc(console, "runs")["result"]["runs"]) == 1  # the POST /ask started nothing


def test_a_wrong_key_is_refused_and_the_right_one_opens_a_session(console) -> None:
    client = web(console)
    refused = log_in(client, key="not-the-key")
    assert refused.status_code == 401 and "That is not the key." in refused.text
    assert "orchestrord_session" not in refused.headers.get("set-cookie", "")
    assert client.get("/").status_code == 303
    accepted = log_in(client)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    assert client.get("/").status_code == 200


def test_the_login_is_rate_limited_even_for_the_right_key(console) -> None:
    client = web(console)
    for _ in range(5):
        assert log_in(client, key="wrong").status_code == 401
    limited = log_in(client)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "orchestrord_session" not in limited.headers.get("set-cookie", "")


def test_logout_ends_the_session(console) -> None:
    client, csrf = logged_in(console)
    cookie = client.cookies.get("orchestrord_session")
    out = client.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    stale = web(console)
    stale.cookies.set("orchestrord_session", cookie)  # the old cookie, replayed
    assert stale.get("/").status_code == 303


def test_a_post_with_a_wrong_csrf_token_starts_nothing(console) -> None:
    client, csrf = logged_in(console)
    refused = client.post("/ask", data={"prompt": "hi", "csrf": csrf + "x"})
    assert refused.status_code == 403
    assert rpc(console, "runs")["result"]["runs"] == []


def test_every_page_has_the_csp_and_security_headers(console) -> None:
    job = ask(console)
    client, _ = logged_in(console)
    pages = [
        "/",
        "/jobs",
        f"/jobs/{job['job_id']}",
        f"/jobs/{job['job_id']}/export",
        "/jobs/nope",
        "/models",
        "/evaluations",
        "/login",
        "/static/console.js",
        "/static/console.css",
    ]
    for path in pages:
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert answer.headers["x-frame-options"] == "DENY", path
    assert client.get("/jobs/nope").status_code == 404


def test_orchestrctl_console_prints_a_one_time_login_url(console) -> None:
    env = {**os.environ, **ENV, "ORCHESTRORD_CONFIG": str(console.config_path)}
    env.pop("DISPLAY", None), env.pop("WAYLAND_DISPLAY", None), env.pop("BROWSER", None)
    done = subprocess.run(
        [str(ROOT / "bin" / "orchestrctl"), "console", "--no-browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"{console.url}/login?token=")
    client = web(console)
    opened = client.get(url)
    assert opened.status_code == 303 and client.get("/").status_code == 200
    again = web(console).get(url)
    assert again.status_code == 403 and "used or expired" in again.text


def test_a_login_token_needs_the_http_key(console) -> None:
    client = web(console)
    assert client.post("/console/login-token").status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert client.post("/console/login-token", headers=wrong).status_code == 401


def test_orchestrctl_console_without_the_http_door_exits_2(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\n[[models]]\nname = "a"\nprovider = "fake"\n'
    )
    done = subprocess.run(
        [str(ROOT / "bin" / "orchestrctl"), "console", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2 and "[http] listen" in done.stderr


def test_asking_from_the_page_runs_a_job_and_streams_its_events(console) -> None:
    client, csrf = logged_in(console)
    started = client.post("/ask", data={"csrf": csrf, "prompt": "What is 6 x 7?", "models": "a"})
    assert started.status_code == 303
    job_path = started.headers["location"]
    events = []
    with client.stream("GET", f"{job_path}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "round_started" and kinds[-1] == "done"
    assert "reply" in kinds and "delta" in kinds
    assert events[-1]["result"]["status"] == "ok" and events[-1]["result"]["answer"] == ANSWER
    stored = rpc(console, "job", {"job_id": job_path.rsplit("/", 1)[1]})["result"]
    assert stored["metadata"] == {"source": "console"}
    assert [r["model"] for r in stored["rounds"][0]["replies"]] == ["a"]


def test_a_page_that_reconnects_resumes_after_the_last_event_it_saw(console) -> None:
    client, csrf = logged_in(console)
    job_path = client.post("/ask", data={"csrf": csrf, "prompt": "hi"}).headers["location"]
    with client.stream("GET", f"{job_path}/events") as stream:
        whole = [line for line in stream.iter_lines() if line.startswith("id: ")]
    with client.stream("GET", f"{job_path}/events", headers={"last-event-id": "3"}) as stream:
        rest = [line for line in stream.iter_lines() if line.startswith("id: ")]
    assert rest == whole[3:]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"prompt": ""}, "write a prompt first"),
        ({"prompt": "hi", "models": "nobody"}, "no model &#39;nobody&#39; (configured: a, b)"),
        ({"prompt": "hi", "pipeline": "nope"}, "no pipeline &#39;nope&#39; (configured: none)"),
    ],
)
def test_a_bad_ask_is_answered_on_the_form(console, form: dict, message: str) -> None:
    client, csrf = logged_in(console)
    answer = client.post("/ask", data={"csrf": csrf, **form})
    assert answer.status_code == 400 and message in answer.text
    assert rpc(console, "runs")["result"]["runs"] == []


def test_a_job_is_cancelled_from_its_page(daemon) -> None:
    slow = start(daemon, models=fake_models(("a", "b"), reply="slow", latency_ms=10_000))
    client, csrf = logged_in(slow)
    job_path = client.post("/ask", data={"csrf": csrf, "prompt": "take your time"}).headers[
        "location"
    ]
    cancelled = client.post(f"{job_path}/cancel", headers={"x-csrf-token": csrf})
    assert cancelled.status_code == 204
    with client.stream("GET", f"{job_path}/events") as stream:
        last = [json.loads(x[6:]) for x in stream.iter_lines() if x.startswith("data: ")][-1]
    assert last["type"] == "done" and last["result"]["status"] == "cancelled"


def test_the_history_filters_and_pages(console) -> None:
    for i in range(27):
        ask(console, f"question {i}", metadata={"team": "red" if i % 2 else "blue"})
    ask(console, "a needle in the haystack", metadata={"team": "green"})
    client, _ = logged_in(console)
    first = client.get("/jobs")
    assert first.text.count('href="/jobs/') == 25 and 'rel="next"' in first.text
    second = client.get("/jobs?page=2")
    assert second.text.count('href="/jobs/') == 3 and 'rel="prev"' in second.text
    needle = client.get("/jobs", params={"text": "needle"})
    assert needle.text.count('href="/jobs/') == 1 and "a needle in the haystack" in needle.text
    green = client.get("/jobs", params={"metadata": "team=green"})
    assert green.text.count('href="/jobs/') == 1
    red = client.get("/jobs", params={"metadata": '{"team": "red"}', "status": "ok"})
    assert red.text.count('href="/jobs/') == 13
    assert client.get("/jobs", params={"status": "error"}).text.count('href="/jobs/') == 0
    future = client.get("/jobs", params={"since": "2999-01-01T00:00:00"})
    assert "No runs match." in future.text
    bad = client.get("/jobs", params={"metadata": "team"})
    assert bad.status_code == 400 and "is not key=value" in bad.text
    bad_time = client.get("/jobs", params={"since": "yesterday"})
    assert bad_time.status_code == 400 and "ISO 8601" in bad_time.text


def test_a_jobs_page_shows_every_stage_and_exports_the_record(console) -> None:
    job = ask(console, "Capital of France?", metadata={"case": "page"})
    client, _ = logged_in(console)
    page = client.get(f"/jobs/{job['job_id']}").text
    for heading in ("1. initial", "2. meta", "3. synthesis", "Agreement map", "Summary"):
        assert heading in page
    assert page.count('class="reply s-ok"') == 5  # 2 initial, 2 meta, 1 synthesis
    assert f"{job['synthesizer']}" in page and "Capital of France?" in page
    assert f"/jobs/{job['job_id']}/export" in page
    exported = client.get(f"/jobs/{job['job_id']}/export")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json() == rpc(console, "job", {"job_id": job["job_id"]})["result"]


def test_a_vote_shows_who_voted_for_what(console) -> None:
    job = ask(console, "Pick one", strategy="vote", rounds=["initial"])
    client, _ = logged_in(console)
    page = client.get(f"/jobs/{job['job_id']}").text
    assert "Votes" in page and "a, b" in page


def test_the_models_page_shows_state_limits_and_latency_over_time(console) -> None:
    ask(console)
    client, _ = logged_in(console)
    page = client.get("/models").text
    for name in ("a", "b"):
        assert f'data-model="{name}"' in page
    assert "600 rpm" in page and "closed" in page and "<polyline" in page
    assert "p50 latency over time" in page


def test_the_evaluations_page_shows_each_evaluations_table_and_plot(console) -> None:
    for i, expected in enumerate((ANSWER, ANSWER, "something else")):
        grade = {"dataset": "geo", "item": f"q{i}", "grader": "exact", "answers": [expected]}
        metadata = {"eval": "d1", "eval_key": f"{i:024d}", "eval_grade": grade}
        ask(console, f"q{i}", models=["a"], rounds=["initial"], metadata=metadata)
    ask(console, "q", strategy="vote", metadata={"eval": "d1", "eval_key": "9" * 24})
    ask(console, "q", metadata={"eval": "d1", "eval_key": "8" * 40})  # a judge's: left out
    client, _ = logged_in(console)
    page = client.get("/evaluations").text
    assert "geo <code>d1</code>" in page
    assert re.search(r"<td>a</td><td>3</td><td>3</td><td>66.7% \(2/3\)</td>", page)
    assert re.search(r"<td>orchestrord/vote</td><td>1</td><td>1</td><td>\u2013</td>", page)
    assert page.count("<tr><td>") == 2
    plot = page[page.index('<svg class="chart scatter"') : page.index("</svg>")]
    assert plot.count("<circle") == 1 and "a: 66.7%" in plot  # the graded system only


def test_without_any_evaluation_the_page_says_how_to_run_one(console) -> None:
    client, _ = logged_in(console)
    assert "No evaluation is stored yet" in client.get("/evaluations").text
