"""The final answer streamed: every adapter streams its synthesis call, each piece goes
out at once as a ``delta`` event, a void stream is ``reset``, and the deltas joined are
the answer."""

from __future__ import annotations

import json
import threading

from daemon_helpers import connect
from helpers import (
    SSE,
    WAIT,
    LoopbackServer,
    Recorder,
    Reply,
    chunks,
    fake_models,
    gemini_content,
    ollama_stream,
    sse,
)


def streamed(start_orch, config: dict, environ: dict | None = None, **ask):
    """Run one job with a listener; (result, [(type, text)] of its delta/reset events)."""
    events = []
    lock = threading.Lock()

    def listen(event) -> None:
        if event.type in ("delta", "reset"):
            with lock:
                events.append((event.type, event.text))

    orch = start_orch(config, environ=environ or {})
    result = orch.submit(ask.pop("prompt", "q"), listener=listen, timeout=WAIT, **ask).get(
        timeout=WAIT
    )
    return result, events


def after_last_reset(events) -> str:
    types = [t for t, _ in events]
    start = len(types) - types[::-1].index("reset") if "reset" in types else 0
    return "".join(text for _, text in events[start:])


def test_the_synthesis_streams_word_by_word_and_the_deltas_are_the_answer(start_orch) -> None:
    recorder = Recorder(
        lambda r: "Canberra is the capital of Australia." if r.round_name == "synthesis" else "C"
    )
    result, events = streamed(
        start_orch,
        {"models": fake_models(("a", "b"), reply=recorder)},
        rounds=["initial", "synthesis"],
    )
    assert [t for t, _ in events] == ["delta"] * 6  # one per word
    assert "".join(text for _, text in events) == result.answer


def test_a_strategy_without_synthesis_sends_the_answer_as_one_delta(start_orch) -> None:
    result, events = streamed(
        start_orch,
        {"models": fake_models(("a", "b"), reply="forty two")},
        rounds=["initial"],
        strategy="vote",
    )
    assert events == [("delta", "forty two")] and result.answer == "forty two"


def test_a_schema_repair_resets_the_stream(start_orch) -> None:
    attempts = []

    def answer(r):
        if r.round_name != "synthesis":
            return "x"
        attempts.append(r)
        return "not json at all" if len(attempts) == 1 else '{"city": "Canberra"}'

    schema = {"type": "object", "required": ["city"]}
    result, events = streamed(
        start_orch,
        {"models": fake_models(("a",), reply=Recorder(answer))},
        rounds=["initial", "synthesis"],
        schema=schema,
    )
    assert result.status == "ok" and len(attempts) == 2
    assert "".join(t for _, t in events[: events.index(("reset", None))]) == "not json at all"
    assert after_last_reset(events) == result.answer == '{"city": "Canberra"}'


def test_a_label_taken_off_the_answer_is_corrected_with_a_reset(start_orch) -> None:
    result, events = streamed(
        start_orch,
        {
            "models": fake_models(
                ("a",),
                reply=Recorder(
                    lambda r: "Candidate 1: Rome" if r.round_name == "synthesis" else "R"
                ),
            )
        },
        rounds=["initial", "synthesis"],
    )
    assert result.answer == "Rome"
    assert events[-2:] == [("reset", None), ("delta", "Rome")]


def test_a_stream_cut_by_a_provider_error_resets_and_the_next_synthesizer_streams(
    start_orch,
) -> None:
    with LoopbackServer() as server:
        # the first synthesizer streams two pieces, then its connection drops
        server.default = Reply(body=sse(chunks("Canberra is")[:2], done=False), headers=SSE)
        server.default.truncate = True
        config = {
            "models": [
                {
                    "name": "gpt",
                    "provider": "openai",
                    "base_url": server.base_url,
                    "max_attempts": 1,
                },
                *fake_models(("backup",), reply="Canberra, the capital."),
            ],
            "pipeline": {"synthesizer": "gpt", "rounds": ["initial", "synthesis"]},
        }
        result, events = streamed(start_orch, config, models=["backup"])
    assert result.status == "ok" and result.synthesizer == "backup"
    assert events == [
        ("delta", "Canberra "),
        ("delta", "is"),
        ("reset", None),  # what gpt streamed is void: backup streams from the start
        ("delta", "Canberra, "),
        ("delta", "the "),
        ("delta", "capital."),
    ]
    assert after_last_reset(events) == result.answer == "Canberra, the capital."


def test_the_socket_sends_delta_events_before_the_result(daemon) -> None:
    d = daemon({"models": fake_models(("a",), reply="one two three")})
    with connect(d) as client:
        request_id = client.send("ask", {"prompt": "q", "rounds": ["initial"], "stream": True})
        deltas = []
        while True:
            message = client.read()
            if message.get("method") == "event" and message["params"]["type"] == "delta":
                deltas.append(message["params"]["text"])
            if message.get("id") == request_id:
                break
    assert "".join(deltas) == message["result"]["answer"] == "one two three"


# --- every adapter streams ---------------------------------------------------------------


def synthesis_through(start_orch, model: dict, environ: dict | None = None):
    config = {
        "models": [{"name": "m", "max_attempts": 1, **model}],
        "pipeline": {"rounds": ["initial", "synthesis"]},
    }
    return streamed(start_orch, config, environ)


def test_openai_streams_with_usage(start_orch) -> None:
    with LoopbackServer() as server:
        server.handler = lambda body: (
            Reply(body=sse(chunks("Canberra is the capital", 12, 4)), headers=SSE)
            if body.get("stream")
            else Reply(body={**json.loads(json.dumps(_completion("Canberra")))})
        )
        result, events = synthesis_through(
            start_orch, {"provider": "openai", "base_url": server.base_url}
        )
        synthesis_body = server.requests[-1]
    assert synthesis_body["stream"] is True
    assert synthesis_body["stream_options"] == {"include_usage": True}
    assert [t for _, t in events] == ["Canberra ", "is ", "the ", "capital"]
    reply = result.rounds[-1].replies[0]
    assert reply.text == "Canberra is the capital" and reply.usage.input_tokens == 12


def test_ollama_streams_its_ndjson(start_orch) -> None:
    with LoopbackServer() as server:
        server.default = Reply(body=ollama_stream("Canberra it is"))
        result, events = synthesis_through(
            start_orch, {"provider": "llama", "base_url": server.root_url}
        )
    assert [t for _, t in events] == ["Canberra ", "it ", "is"]
    assert result.answer == "Canberra it is"


def test_llama_openai_dialect_streams_server_sent_events(start_orch) -> None:
    with LoopbackServer() as server:
        server.handler = lambda body: (
            Reply(body=sse(chunks("Canberra it is")), headers=SSE)
            if body.get("stream")
            else Reply(body=_completion("C"))
        )
        result, events = synthesis_through(
            start_orch, {"provider": "llama", "api": "openai", "base_url": server.base_url}
        )
    assert [t for _, t in events] == ["Canberra ", "it ", "is"]
    assert result.rounds[-1].replies[0].usage.output_tokens == 5


def test_gemini_streams_with_generate_content_stream(start_orch) -> None:
    with LoopbackServer() as server:

        def reply(body):
            if "streamGenerateContent" in server.paths[-1]:
                parts = [gemini_content("Canberra "), gemini_content("it is", 7, 3)]
                return Reply(body=sse(parts, done=False), headers=SSE)
            return Reply(body=gemini_content("C"))

        server.handler = reply
        result, events = synthesis_through(
            start_orch,
            {"provider": "gemini", "base_url": server.root_url},
            {"GEMINI_API_KEY": "test-key-123"},
        )
    assert [t for _, t in events] == ["Canberra ", "it is"]
    assert result.answer == "Canberra it is"
    assert result.rounds[-1].replies[0].usage.input_tokens == 7


def _completion(text: str) -> dict:
    from helpers import completion

    return completion(text)


def test_a_single_model_job_streams_that_models_call(start_orch) -> None:
    """One model, one initial round: the daemon is a gateway to that model, and its reply
    streams as the provider writes it (not as one delta at the end)."""
    result, events = streamed(
        start_orch,
        {"models": fake_models(("a", "b"), reply="forty two and more")},
        models=["a"],
        rounds=["initial"],
    )
    assert events == [("delta", "forty "), ("delta", "two "), ("delta", "and "), ("delta", "more")]
    assert result.answer == "forty two and more"


def test_a_single_model_call_cut_and_retried_resets_its_stream(start_orch) -> None:
    with LoopbackServer() as server:
        cut = Reply(body=sse(chunks("Canberra is")[:2], done=False), headers=SSE)
        cut.truncate = True  # two pieces, then the connection drops: the actor retries
        server.script = [cut]
        server.default = Reply(body=sse(chunks("Canberra, the capital.")), headers=SSE)
        config = {
            "models": [
                {"name": "gpt", "provider": "openai", "base_url": server.base_url},
            ],
        }
        result, events = streamed(start_orch, config, rounds=["initial"])
    assert result.status == "ok" and len(server.requests) == 2
    assert events == [
        ("delta", "Canberra "),
        ("delta", "is"),
        ("reset", None),  # the first attempt's pieces are void
        ("delta", "Canberra, "),
        ("delta", "the "),
        ("delta", "capital."),
    ]
    assert after_last_reset(events) == result.answer
