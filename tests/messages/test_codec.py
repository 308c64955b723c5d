"""The socket codec, pure: framing, size cap, decoding, params."""

from __future__ import annotations

import json

import pytest

from messages.codec import (
    Framer,
    ask_params,
    decode_failure,
    decode_request,
    encode_error,
    encode_exception,
    encode_notification,
    encode_result,
    parse_line,
    request_id_of,
)
from messages.errors import InvalidParams, ParseError, ProtocolError, RequestTooLarge


def test_framer_splits_lines_across_chunks_and_skips_blank_ones() -> None:
    framer = Framer(max_bytes=100)
    assert framer.feed(b'{"a"') == []
    assert framer.pending == 4
    assert framer.feed(b': 1}\n\n{"b": 2}\n{"c"') == [b'{"a": 1}', b'{"b": 2}']
    assert framer.feed(b": 3}\n") == [b'{"c": 3}']
    assert framer.pending == 0


@pytest.mark.parametrize("chunks", [[b"x" * 101], [b"x" * 60, b"x" * 60], [b"x" * 101 + b"\n"]])
def test_framer_rejects_a_line_over_the_cap(chunks: list[bytes]) -> None:
    framer = Framer(max_bytes=100)
    with pytest.raises(RequestTooLarge):
        for chunk in chunks:
            framer.feed(chunk)


def test_framer_accepts_a_line_exactly_at_the_cap() -> None:
    assert Framer(max_bytes=5).feed(b"12345\n") == [b"12345"]


def test_decode_a_request() -> None:
    request = decode_request(b'{"jsonrpc": "2.0", "id": "x", "method": "ask", "params": {"p": 1}}')
    assert (request.id, request.method, dict(request.params)) == ("x", "ask", {"p": 1})
    assert not request.is_notification
    note = decode_request(b'{"jsonrpc": "2.0", "method": "ping"}')
    assert note.is_notification and note.params == {}


@pytest.mark.parametrize(
    ("line", "error", "request_id"),
    [
        (b"{", ParseError, None),
        (b"\xff", ParseError, None),
        (b"42", ProtocolError, None),
        (b'{"jsonrpc": "1.0", "id": 3, "method": "m"}', ProtocolError, 3),
        (b'{"jsonrpc": "2.0", "id": 3}', ProtocolError, 3),
        (b'{"jsonrpc": "2.0", "id": true, "method": "m"}', ProtocolError, None),
        (b'{"jsonrpc": "2.0", "id": [1], "method": "m"}', ProtocolError, None),
        (b'{"jsonrpc": "2.0", "id": 4, "method": "m", "params": [1]}', InvalidParams, 4),
    ],
)
def test_decode_errors_are_typed_and_keep_the_id_they_can(line, error, request_id) -> None:
    with pytest.raises(error) as info:
        decode_request(line)
    assert request_id_of(info.value) == request_id


@pytest.mark.parametrize(
    "line",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"metadata": {"k": NaN}}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"metadata": [Infinity]}}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"prompt": "q", "x": -Infinity}}',
    ],
)
def test_nan_and_infinity_anywhere_in_params_are_invalid_params(line: bytes) -> None:
    """NaN inside metadata used to be accepted (and stored as a bare NaN, not JSON)."""
    with pytest.raises(InvalidParams, match="not a JSON number") as info:
        decode_request(line)
    assert request_id_of(info.value) == 1


@pytest.mark.parametrize(
    ("line", "answered"),
    [
        (b'{"jsonrpc": "2.0", "method": "ask", "params": [1]}', False),
        (b'{"jsonrpc": "2.0", "method": "ask", "params": {"metadata": {"k": NaN}}}', False),
        (b'{"jsonrpc": "2.0", "id": null, "method": "ask", "params": [1]}', True),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "ask", "params": [1]}', True),
        (b'{"jsonrpc": "2.0", "method": 7}', True),  # not a valid request: answered
        (b'{"method": "ping"}', True),
    ],
)
def test_a_notification_with_bad_params_gets_no_reply(line: bytes, answered: bool) -> None:
    """JSON-RPC 2.0: a notification is never answered, not even with its error."""
    data = parse_line(line)
    with pytest.raises(ProtocolError) as info:
        decode_request(data)
    response = decode_failure(data, info.value)
    assert (response is not None) == answered
    if response is not None:
        assert response["error"]["code"] == info.value.rpc_code


def test_encoders_write_one_json_line() -> None:
    assert json.loads(encode_result(1, {"x": "é"})) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"x": "é"},
    }
    err = json.loads(encode_error(2, -32001, "busy", {"retry_after_s": 1}))
    assert err["error"] == {"code": -32001, "message": "busy", "data": {"retry_after_s": 1}}
    note = json.loads(encode_notification("event", {"id": 1}))
    assert note == {"jsonrpc": "2.0", "method": "event", "params": {"id": 1}}
    assert encode_result(1, "x").count(b"\n") == 1
    exc = json.loads(encode_exception(None, InvalidParams("bad", data={"id": 9})))
    assert "data" not in exc["error"]  # the recovered id is not error data


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": "q", "models": "a"}, "models"),
        ({"prompt": "q", "models": [""]}, "models"),
        ({"prompt": "q", "rounds": [1]}, "rounds"),
        ({"prompt": "q", "timeout_s": 0}, "timeout_s"),
        ({"prompt": "q", "timeout_s": True}, "timeout_s"),
        ({"prompt": "q", "timeout_s": float("inf")}, "timeout_s"),
        ({"prompt": "q", "stream": "yes"}, "stream"),
        ({"prompt": "q", "metadata": [1]}, "metadata"),
        ({"prompt": "q", "strategy": 1}, "strategy"),
        ({"prompt": "q", "colour": "red"}, "unknown param"),
        ({"prompt": "q", "schema": [1]}, "schema"),
        ({"prompt": "q", "deterministic": 1}, "deterministic"),
        ({"prompt": "q", "max_cost_usd": 0}, "max_cost_usd"),
        ({"prompt": "q", "answer_pattern": 5}, "answer_pattern"),
        ({"prompt": "q", "system": ""}, "system"),
        ({"prompt": "q", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "q", "max_tokens": 2.5}, "max_tokens must be a whole number"),
        ({"prompt": "q", "temperature": -0.1}, "temperature"),
        ({"prompt": "q", "temperature": 2.5}, "temperature"),
        ({"prompt": "q", "temperature": float("nan")}, "temperature"),
        ({"prompt": "q", "strategy": "magic"}, r"strategy must be one of"),
    ],
)
def test_ask_params_are_validated(params, match) -> None:
    with pytest.raises(InvalidParams, match=match):
        ask_params(params)


def test_ask_params_normalise() -> None:
    out = ask_params({"prompt": "q", "models": ["a"], "timeout_s": 5, "stream": True})
    assert out == {
        "prompt": "q",
        "messages": None,
        "system": None,
        "max_tokens": None,
        "temperature": None,
        "pipeline": None,
        "models": ("a",),
        "rounds": None,
        "stream": True,
        "metadata": {},
        "strategy": None,
        "synthesizer": None,
        "timeout_s": 5.0,
        "answer_pattern": None,
        "deterministic": False,
        "early_exit": False,
        "schema": None,
        "max_cost_usd": None,
        "tools": None,
        "tool_choice": None,
        "parallel_tool_calls": None,
        "stop": None,
        "seed": None,
        "top_p": None,
        "presence_penalty": None,
        "frequency_penalty": None,
        "reasoning_effort": None,
        "traceparent": None,
    }


# --- hostile input: every line gets an answer -------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 200_000 + b"]" * 200_000,  # nesting that overflows the parser
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"n": ' + b"9" * 5000 + b"}}",
        b"\xed\xa0\x80",  # a surrogate encoded as UTF-8 bytes: invalid UTF-8
    ],
)
def test_lines_python_cannot_parse_are_parse_errors(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_line(line)


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": "\ud800"},
        {"prompt": "ok", "metadata": {"k": ["\udfff"]}},
        {"prompt": "ok", "metadata": {"\ud800": 1}},
        {"job_id": "x\ud800"},
    ],
)
def test_lone_surrogates_in_params_are_invalid_params(params: dict) -> None:
    line = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ask", "params": params}).encode()
    with pytest.raises(InvalidParams) as caught:
        decode_request(line)
    assert request_id_of(caught.value) == 7


def test_a_surrogate_pair_is_valid_text() -> None:
    request = decode_request(
        b'{"jsonrpc":"2.0","id":1,"method":"ask","params":{"prompt":"\\ud83d\\ude00"}}'
    )
    assert request.params["prompt"] == "\U0001f600"


def test_a_surrogate_in_the_id_is_an_invalid_request_without_an_id() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}')
    assert request_id_of(caught.value) is None


def test_params_nested_too_deep_are_rejected() -> None:
    deep: dict = {"prompt": "p", "metadata": {}}
    node = deep["metadata"]
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InvalidParams, match="nesting deeper"):
        decode_request(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ask", "params": deep}).encode()
        )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 0, True, 10**400, "1"])
def test_max_cost_usd_must_be_a_finite_positive_number(value: object) -> None:
    with pytest.raises(InvalidParams, match="max_cost_usd"):
        ask_params({"prompt": "p", "max_cost_usd": value})


def test_an_unencodable_string_in_a_response_is_escaped_not_lost() -> None:
    line = encode_result(1, {"text": "a\ud800b"})
    assert json.loads(line) == {"jsonrpc": "2.0", "id": 1, "result": {"text": "a\ud800b"}}
    line.decode("utf-8")  # valid UTF-8 on the wire
