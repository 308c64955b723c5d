"""The web console's parts without a daemon or a browser: sessions and their expiry,
one-time login tokens, the login's rate limit, the sanitiser, the charts, the history's
filters, and the console's handlers on an in-process app (session expiry, CSRF, CSP)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from actors.config import config_from_dict
from actors.daemon.console import charts, queries, site
from actors.daemon.console.app import Console, safe_next
from actors.daemon.console.pages import metadata_filter
from actors.daemon.console.render import markdown
from actors.daemon.console.security import COOKIE, CSP
from actors.daemon.console.sessions import LoginLimiter, LoginTokens, Sessions
from messages.errors import InvalidParams

KEY = "unit-test-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- sessions, tokens, the rate limit -------------------------------------------------


def test_a_session_expires_after_its_ttl_and_is_gone_for_good() -> None:
    clock = Clock()
    sessions = Sessions(clock, ttl_s=60)
    session = sessions.create()
    clock.now += 59.9
    assert sessions.get(session.id) == session
    clock.now += 0.1
    assert sessions.get(session.id) is None
    clock.now -= 30  # a clock that steps back does not bring it back
    assert sessions.get(session.id) is None


def test_unknown_and_dropped_sessions_are_none() -> None:
    sessions = Sessions(Clock())
    session = sessions.create()
    assert sessions.get(None) is None and sessions.get("") is None
    assert sessions.get(session.id + "x") is None
    sessions.drop(session.id)
    assert sessions.get(session.id) is None


def test_a_sessions_csrf_token_is_checked_exactly() -> None:
    session = Sessions(Clock()).create()
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf[:-1])
    assert not session.csrf_ok(session.csrf + "\udcff")  # not UTF-8: refused, not a 500


def test_a_login_token_opens_once_and_only_before_it_expires() -> None:
    clock = Clock()
    tokens = LoginTokens(clock, ttl_s=10)
    first, second = tokens.issue(), tokens.issue()
    assert tokens.redeem(first)
    assert not tokens.redeem(first)  # spent
    clock.now += 10
    assert not tokens.redeem(second)  # expired
    assert not tokens.redeem(None) and not tokens.redeem("made-up")


def test_wrong_keys_are_limited_per_client_then_for_everyone() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock, per_client=3, in_all=5, window_s=60)
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(60)
    assert limiter.retry_after("b") == 0  # another client is not held up by a
    limiter.failed("b")
    limiter.failed("c")
    assert limiter.retry_after("d") == pytest.approx(60)  # 5 in all: everyone waits
    clock.now += 60
    assert limiter.retry_after("a") == 0 and limiter.retry_after("d") == 0


# --- model output is hostile ----------------------------------------------------------

HOSTILE = (
    "# Title\n\n<script>window.pwned = 1</script>\n\n"
    '<img src="x" onerror="window.pwned = 2">\n\n'
    "[click](javascript:window.pwned=3) and [ok](https://example.com/a)\n\n"
    "![remote](https://evil.example/track.png)\n\n"
    '<a href="javascript:alert(1)" onclick="alert(2)">raw link</a>\n\n'
    "<svg onload=alert(4)></svg> `<b>code</b>`"
)


class Elements(HTMLParser):
    """Every element and attribute of a fragment, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def test_markdown_keeps_formatting_and_drops_every_way_to_run_or_fetch() -> None:
    html = str(markdown(HOSTILE))
    elements = Elements(html).found
    tags = {tag for tag, _ in elements}
    assert tags <= {"h1", "p", "a", "code"}, tags  # no script, img, svg, iframe, style
    for _, attrs in elements:
        assert not [a for a in attrs if a.startswith("on")]  # no event handler
        assert not (attrs.get("href") or "").lower().startswith("javascript")
    links = [attrs["href"] for tag, attrs in elements if tag == "a"]
    assert links == ["https://example.com/a"]
    assert "<h1>Title</h1>" in html and "&lt;script&gt;" in html  # the script is text
    assert "evil.example" not in [a.get("src") for _, a in elements]


def test_markdown_of_nothing_is_empty() -> None:
    assert str(markdown(None)) == "" and str(markdown("")) == ""


# --- charts, filters, redirects -------------------------------------------------------


def test_a_line_chart_scales_to_its_largest_value_and_breaks_at_gaps() -> None:
    chart = charts.line([100.0, None, 50.0, 200.0])
    assert chart is not None and chart["max"] == 200.0
    assert len(chart["runs"]) == 2 and len(chart["dots"]) == 3
    top = min(y for _, y in chart["dots"])
    assert top == pytest.approx(charts.PAD)  # the largest value touches the top
    assert charts.line([None, None]) is None and charts.line([]) is None


def test_a_scatter_puts_accuracy_up_and_cost_right() -> None:
    plot = charts.scatter([("cheap", 0.001, 0.5), ("dear", 0.01, 1.0)])
    assert plot is not None
    cheap, dear = plot["dots"]
    assert cheap["x"] < dear["x"] and cheap["y"] > dear["y"]
    assert charts.scatter([]) is None


def test_history_buckets_spread_replies_over_time_with_their_median() -> None:
    rows = [
        (0.0, "ok", 100.0, 1, 2, 0.5),
        (1.0, "ok", 300.0, 1, 2, 0.5),
        (240.0, "error", 5.0, 0, 0, 0),
    ]
    spans = queries.buckets(rows, end=240.0)
    assert len(spans) == queries.BUCKETS
    assert spans[0]["calls"] == 2 and spans[0]["p50_latency_ms"] == 200.0
    assert spans[0]["cost_usd"] == 1.0 and spans[0]["input_tokens"] == 2
    assert spans[-1]["calls"] == 1 and spans[-1]["p50_latency_ms"] is None  # no ok reply
    assert queries.buckets([], end=1.0) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"team": "search", "n": 3}', {"team": "search", "n": 3}),
        ("team=search, n=3", {"team": "search", "n": 3}),
        ("flag=true", {"flag": True}),
    ],
)
def test_the_metadata_filter_takes_json_or_pairs(text: str, expected: dict) -> None:
    assert metadata_filter(text) == expected


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "team", "=x", "a=1,,b=2"])
def test_a_bad_metadata_filter_says_what_is_wrong(text: str) -> None:
    with pytest.raises(InvalidParams, match="metadata"):
        metadata_filter(text)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/jobs?status=ok", "/jobs?status=ok"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("jobs", "/"),
    ],
)
def test_after_the_login_only_a_path_of_this_console(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


# --- the handlers, in process ---------------------------------------------------------


@pytest.fixture
def app(tmp_path) -> tuple[TestClient, Console, Clock]:
    config = config_from_dict(
        {
            "models": [{"name": "a", "provider": "fake"}],
            "daemon": {"state_dir": str(tmp_path)},
        }
    )
    door = SimpleNamespace(config=config, key=KEY, server=None)
    console = Console(door)
    clock = Clock()
    console.sessions.clock = clock
    client = TestClient(Starlette(routes=site(console)), follow_redirects=False)
    return client, console, clock


def log_in(client: TestClient) -> str:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf": csrf, "key": KEY, "next": "/"})
    assert answer.status_code == 303, answer.text
    home = client.get("/")
    return re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]


def test_an_expired_session_is_sent_back_to_the_login(app) -> None:
    client, console, clock = app
    log_in(client)
    assert client.get("/").status_code == 200
    clock.now += console.sessions.ttl_s
    answer = client.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_the_session_cookie_is_httponly_strict_and_expires(app) -> None:
    client, console, _ = app
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/login", data={"csrf": csrf, "key": KEY})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert f"Max-Age={int(console.sessions.ttl_s)}" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; https sets it


def test_a_post_without_the_csrf_token_is_refused(app) -> None:
    client, _, _ = app
    csrf = log_in(client)
    for data, headers in (
        ({"prompt": "hi"}, {}),
        ({"prompt": "hi", "csrf": csrf[:-2]}, {}),
        ({"prompt": "hi"}, {"x-csrf-token": "nope"}),
    ):
        answer = client.post("/ask", data=data, headers=headers)
        assert answer.status_code == 403
        assert "did not come from this console" in answer.text
    assert client.post("/logout").status_code == 403  # logging out needs it too


def test_the_login_form_needs_its_own_csrf_cookie(app) -> None:
    client, _, _ = app
    answer = client.post("/login", data={"csrf": "guess", "key": KEY})
    assert answer.status_code == 403 and COOKIE not in answer.headers.get("set-cookie", "")


def test_every_console_response_carries_the_csp(app) -> None:
    client, _, _ = app
    anonymous = ["/", "/jobs", "/models", "/login", "/static/console.js", "/static/nope.js"]
    for path in anonymous:
        assert client.get(path).headers["content-security-policy"] == CSP, path
    assert client.get("/jobs/x/export").headers["content-security-policy"] == CSP
    csrf = log_in(client)
    assert client.get("/").headers["content-security-policy"] == CSP
    refused = client.post("/ask", data={"prompt": "hi", "csrf": "bad"})
    assert refused.headers["content-security-policy"] == CSP
    assert (
        client.post("/ask", data={"prompt": " ", "csrf": csrf}).headers["content-security-policy"]
        == CSP
    )
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


def test_an_empty_prompt_is_refused_with_the_form_kept(app) -> None:
    client, _, _ = app
    csrf = log_in(client)
    answer = client.post("/ask", data={"prompt": "  ", "system": "be brief", "csrf": csrf})
    assert answer.status_code == 400
    assert "write a prompt first" in answer.text and "be brief" in answer.text


def test_a_form_larger_than_max_request_bytes_is_refused(app) -> None:
    client, console, _ = app
    csrf = log_in(client)
    limit = console.door.config.daemon.max_request_bytes
    answer = client.post("/ask", data={"csrf": csrf, "prompt": "x" * (limit + 1)})
    assert answer.status_code == 413


def test_a_jobs_page_shows_a_conversation_gates_votes_and_the_ranking() -> None:
    from actors.daemon.console.render import page

    record = {
        "job_id": "j1",
        "status": "ok",
        "answer": "Paris",
        "strategy": "vote",
        "synthesizer": "gpt",
        "synthesizer_reason": "auto: the best answer quality",
        "confidence": 0.5,
        "elapsed_ms": 1234.5,
        "cost_usd": 0.0012,
        "usage": {"input_tokens": 900, "output_tokens": 400},
        "created": "2026-01-02T03:04:05.000+00:00",
        "prompt": "Capital?",
        "options": {"system": "Be brief."},
        "metadata": {"team": "x"},
        "messages": [
            {"role": "user", "content": "<b>Capital?</b>"},
            {"role": "assistant", "content": [{"type": "text", "text": "Which country?"}]},
            {"role": "user", "content": "France"},
        ],
        "escalations": [{"stage": "vote", "confidence": 0.5, "threshold": 0.7, "to": "synthesis"}],
        "votes": [
            {"answer": "Paris", "count": 2, "models": ["a", "b"], "winner": True},
            {"answer": "Lyon", "count": 1, "models": ["c"]},
        ],
        "ranking": {"scores": {"a": 1.0, "b": 0.0}},
        "agreement": {"score": 0.6667, "dissenters": ["c"], "clusters": []},
        "rounds": [
            {
                "name": "initial",
                "replies": [
                    {"model": "c", "status": "error", "text": None, "latency_ms": 5.0,
                     "usage": None, "cost_usd": 0.0,
                     "error": {"code": "provider_unavailable", "message": "down"}},
                ],
            }
        ],
    }  # fmt: skip
    html = page("job.html", session=None, path="/jobs/j1", job=record, live=False,
                running=False, share="http://x/jobs/j1")  # fmt: skip
    assert "Conversation" in html and "&lt;b&gt;Capital?&lt;/b&gt;" in html
    assert "Which country?" in html and "Be brief." in html
    assert "Gates and escalations" in html and "<td>synthesis</td>" in html
    assert '<td class="preview">Paris</td><td>2</td><td>a, b</td><td>yes</td>' in html
    assert "Ranking" in html and "provider_unavailable: down" in html
    assert "gpt" in html and "why: auto: the best answer quality" in html
    assert "1.23 s" in html and "$0.0012" in html and "900 in / 400 out" in html
    assert "<noscript>" not in html  # finished: no refresh
