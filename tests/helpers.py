"""Test helpers: scripted fake replies, a loopback OpenAI server, roster watching."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pykka

from messages.events import RosterChanged, RosterEntry

WAIT = 20.0  # the longest any test waits for anything


def single_reply(
    start_orch: Callable[..., Any], model: dict[str, Any], environ: dict[str, str] | None = None
) -> Any:
    """Start an orchestrator with one model (fast retries), ask one question in one
    round, return that model's ``ModelReply``: how the adapter tests look at a call."""
    orch = start_orch(
        {
            "models": [{"timeout_s": 5, **model}],
            "supervision": {"backoff_min_s": 0.001, "backoff_max_s": 0.01},
        },
        environ=environ or {},
    )
    result = orch.ask("What is 2+2?", rounds=["initial"])
    [reply] = result.rounds[0].replies
    return reply


def fake_models(names: Iterable[str], **options: Any) -> list[dict[str, Any]]:
    return [{"name": n, "provider": "fake", **options} for n in names]


class Recorder:
    """A fake ``reply`` callable that records every request (thread-safe)."""

    def __init__(self, answer: Callable[[Any], Any] | None = None) -> None:
        self.requests: list[Any] = []
        self._lock = threading.Lock()
        self._answer = answer or (lambda req: f"{req.participant} answer in {req.round_name}")

    def __call__(self, request: Any) -> Any:
        with self._lock:
            self.requests.append(request)
        return self._answer(request)

    def by_round(self, round_name: str) -> list[Any]:
        with self._lock:
            return [r for r in self.requests if r.round_name == round_name]


class RosterWatcher:
    """Follows a supervisor's roster; ``wait_for(predicate)`` returns the first roster
    (a name -> entry dict) that satisfies it. Use through the ``watch_roster`` fixture."""

    def __init__(self, orch: Any) -> None:
        from messages.commands import Subscribe

        self.latest: dict[str, RosterEntry] = {}
        self.changed = threading.Condition()
        self.ref = _RosterForwarder.start(self)
        orch.supervisor.tell(Subscribe(ref=self.ref))

    def update(self, roster: tuple[RosterEntry, ...]) -> None:
        with self.changed:
            self.latest = {e.name: e for e in roster}
            self.changed.notify_all()

    def wait_for(
        self, predicate: Callable[[dict[str, RosterEntry]], bool]
    ) -> dict[str, RosterEntry]:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: bool(self.latest) and predicate(self.latest), timeout=WAIT
            )
            assert ok, f"roster never satisfied the condition; last: {self.latest}"
            return dict(self.latest)

    def stop(self) -> None:
        self.ref.stop()


class _RosterForwarder(pykka.ThreadingActor):
    use_daemon_thread = True  # a forgotten watcher must never keep the test run alive

    def __init__(self, watcher: RosterWatcher) -> None:
        super().__init__()
        self.watcher = watcher

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RosterChanged):
            self.watcher.update(message.roster)
        return None


# --- a loopback server speaking the OpenAI chat-completions wire format -----------------


@dataclass
class Reply:
    """One scripted HTTP answer. ``body`` dict -> JSON; bytes sent as is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    truncate: bool = False  # promise more bytes than are sent, then close


def completion(
    text: str, model: str = "m", prompt_tokens: int = 10, completion_tokens: int = 5
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


SSE = {"content-type": "text/event-stream"}


def sse(events: list[Any], done: bool = True) -> bytes:
    """Server-sent events: one ``data:`` line per event (dicts as JSON), then [DONE]."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def chunks(text: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> list[dict]:
    """``text`` as OpenAI ``chat.completion.chunk`` events word by word, then usage."""
    words = text.split(" ")
    out: list[dict[str, Any]] = [
        {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "delta": {"content": w + (" " if i < len(words) - 1 else "")}}
            ],
        }
        for i, w in enumerate(words)
    ]
    out.append(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )
    return out


def openai_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "test_error", "code": str(status)}}


class LoopbackServer:
    """An HTTP server on 127.0.0.1 answering every POST with scripted ``Reply``s:
    ``script`` in order (then ``default``), or ``handler(body)`` when set. It records
    each request's JSON body, path and headers. Speaks whatever wire format the
    replies carry (OpenAI JSON, Gemini JSON, Ollama NDJSON)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Reply] = []
        self.default = Reply(body=completion("ok"))
        self.handler: Callable[[dict[str, Any]], Reply] | None = None
        self.released = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server._next(body, self.path, dict(self.headers))
                if reply.hang:
                    server.released.wait(WAIT)
                    self.close_connection = True
                    return
                data = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                if "content-type" not in {k.lower() for k in reply.headers}:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data) + 100 * reply.truncate))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
                if reply.truncate:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _next(self, body: dict[str, Any], path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            if self.handler is not None:
                return self.handler(body)
            return self.script.pop(0) if self.script else self.default

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (with ``/v1``)."""
        return f"{self.root_url}/v1"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


OpenAIServer = LoopbackServer  # the name the OpenAI tests read best with


# --- Gemini and Ollama wire formats ----------------------------------------------------


def gemini_content(text: str, prompt_tokens: int = 11, output_tokens: int = 4) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
        },
    }


def gemini_error(code: int, status: str, message: str, retry_delay: str | None = None) -> dict:
    details = []
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


def ollama_stream(
    text: str, prompt_tokens: int = 9, output_tokens: int = 3, done: bool = True
) -> bytes:
    words = text.split(" ")
    lines = [
        {
            "model": "llama3.2",
            "message": {"role": "assistant", "content": w + (" " if i < len(words) - 1 else "")},
            "done": False,
        }
        for i, w in enumerate(words)
    ]
    if done:
        lines.append(
            {
                "model": "llama3.2",
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "prompt_eval_count": prompt_tokens,
                "eval_count": output_tokens,
            }
        )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


# --- valid JSON that Python chokes on: what a provider answering garbage may send --------

HUGE_INT = b"9" * 5000  # over Python's 4,300-digit limit for int()
DEEP = b"[" * 200_000 + b"]" * 200_000  # overflows the parser's recursion


def odd_openai_bodies() -> list[bytes]:
    ok = b'"choices": [{"message": {"role": "assistant", "content": "hi"}}]'
    return [
        b"{" + ok + b', "usage": {"prompt_tokens": 1e999, "completion_tokens": 1}}',
        b"{" + ok + b', "usage": {"prompt_tokens": ' + HUGE_INT + b"}}",
        b"{" + ok + b', "usage": {"prompt_tokens": -5, "completion_tokens": 1}}',
        b'{"choices": ' + DEEP + b"}",
    ]
