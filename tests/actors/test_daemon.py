"""The real daemon on a real Unix socket, with fake providers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from daemon_helpers import ROOT, DaemonProcess, RawClient, connect, rpc
from helpers import WAIT

FAST = {
    "models": [
        {"name": "a", "provider": "fake", "reply": "A in {round}"},
        {"name": "b", "provider": "fake", "reply": "B in {round}"},
    ]
}
HANG_MS = 600_000


def slow(latency_ms: int = HANG_MS, **daemon: object) -> dict:
    return {
        "daemon": {"drain_s": 0.5, **daemon},  # jobs that hang must not hold up teardown
        "models": [
            {"name": "slow", "provider": "fake", "latency_ms": latency_ms},
            {"name": "fast", "provider": "fake", "reply": "fast answer"},
        ],
    }


def first_event(client: RawClient) -> dict:
    message = client.read()
    assert message is not None and message["method"] == "event", message
    return message["params"]


# --- methods --------------------------------------------------------------------------


def test_ask_status_job_ping(daemon) -> None:
    d = daemon(FAST)
    answer = rpc(d, "ask", {"prompt": "hi", "metadata": {"user": "t"}})["result"]
    assert answer["status"] == "ok" and answer["answer"] in ("A in synthesis", "B in synthesis")
    assert [r["name"] for r in answer["rounds"]] == ["initial", "meta", "synthesis"]
    stored = rpc(d, "job", {"job_id": answer["job_id"]})["result"]
    added = {k: stored.pop(k) for k in ("prompt", "metadata", "options", "created")}
    assert stored == answer  # the job result, plus what was asked and when
    assert added["prompt"] == "hi" and added["metadata"] == {"user": "t"}
    assert added["created"].endswith("+00:00")
    status = rpc(d, "status")["result"]
    assert status["jobs_total"] == 1 and {m["name"] for m in status["models"]} == {"a", "b"}
    assert rpc(d, "ping")["result"] == "pong"


def test_many_requests_on_one_connection_are_answered_by_id(daemon) -> None:
    d = daemon(slow(latency_ms=300))
    with connect(d) as c:
        slow_id = c.send("ask", {"prompt": "slow", "models": ["slow"], "rounds": ["initial"]})
        ping_id = c.send("ping")
        fast_id = c.send("ask", {"prompt": "fast", "models": ["fast"], "rounds": ["initial"]})
        order = [c.read()["id"] for _ in range(3)]
    assert order[-1] == slow_id and set(order) == {slow_id, ping_id, fast_id}


def test_stream_events_come_in_order_before_the_result(daemon) -> None:
    d = daemon(FAST)
    with connect(d) as c:
        request_id = c.send("ask", {"prompt": "hi", "stream": True})
        events = []
        while True:
            message = c.read()
            if "method" not in message:
                break
            assert message["method"] == "event" and message["params"]["id"] == request_id
            events.append((message["params"]["type"], message["params"]["round"]))
    assert message["id"] == request_id and message["result"]["status"] == "ok"
    deltas = [i for i, e in enumerate(events) if e[0] == "delta"]
    assert deltas and events[deltas[0] - 1] == ("round_started", "synthesis")
    assert events[deltas[-1] + 1] == ("reply", "synthesis")  # the answer streamed, then ended
    assert [e for e in events if e[0] != "delta"] == [
        ("round_started", "initial"),
        ("reply", "initial"),
        ("reply", "initial"),
        ("round_finished", "initial"),
        ("round_started", "meta"),
        ("reply", "meta"),
        ("reply", "meta"),
        ("round_finished", "meta"),
        ("round_started", "synthesis"),
        ("reply", "synthesis"),
        ("round_finished", "synthesis"),
    ]


def test_cancel_answers_the_asker_with_cancelled(daemon) -> None:
    d = daemon(slow())
    with connect(d) as asker:
        request_id = asker.send("ask", {"prompt": "q", "models": ["slow"], "stream": True})
        job_id = first_event(asker)["job_id"]
        assert rpc(d, "cancel", {"job_id": job_id})["result"] == {"cancelled": True}
        error = asker.response(request_id)["error"]
    assert error["code"] == -32004 and error["data"]["status"] == "cancelled"
    assert rpc(d, "cancel", {"job_id": job_id})["result"] == {"cancelled": False}
    assert rpc(d, "job", {"job_id": job_id})["result"]["status"] == "cancelled"


# --- errors from real bad input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json\n", -32700),
        (b"\xff\xfe\n", -32700),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"prompt": "\\ud800"}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "job", "params": {"job_id": "\\udfff"}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "cancel", "params": {"job_id": "\\ud800"}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "max_cost_usd": NaN}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "metadata": {"score": NaN}}}\n',
            -32602,
        ),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", -32700),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"n": '
            + b"7" * 5000
            + b"}}\n",
            -32700,
        ),
        (b'{"id": 1, "method": "ping"}\n', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 7}\n', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "fly"}\n', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"prompt": 5}}\n', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": [1]}\n', -32602),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "models": ["ghost"]}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "timeout_s": -1}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "deterministic": "yes"}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "schema": {"type": 5}}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "strategy": "magic"}}\n',
            -32602,
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", '
            b'"params": {"prompt": "q", "answer_pattern": "("}}\n',
            -32602,
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "job", "params": {"job_id": "nope"}}\n', -32007),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "job", "params": {}}\n', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "cancel", "params": {"job_id": "x"}}\n', -32007),
    ],
)
def test_bad_requests_get_their_error_code_and_the_connection_lives_on(daemon, raw, code) -> None:
    d = daemon(FAST)
    with connect(d) as c:
        c.send_raw(raw)
        reply = c.read()
        assert reply["error"]["code"] == code, reply
        assert c.request("ping")["result"] == "pong"  # same connection still served


def test_a_notification_with_bad_params_gets_no_reply(daemon) -> None:
    """JSON-RPC 2.0 says a notification is never answered; one whose params were bad
    used to get an error back."""
    d = daemon(FAST)
    with connect(d) as c:
        c.send_raw(b'{"jsonrpc": "2.0", "method": "ask", "params": [1]}\n')
        c.send_raw(b'{"jsonrpc": "2.0", "method": "ask", "params": {"metadata": {"k": NaN}}}\n')
        c.send_raw(b'[{"jsonrpc": "2.0", "method": "ask", "params": 5}]\n')
        request_id = c.send("ping")  # each line is answered in turn: an error would be first
        assert c.read() == {"jsonrpc": "2.0", "id": request_id, "result": "pong"}


def test_a_batch_is_answered_with_an_array_of_responses(daemon) -> None:
    d = daemon(FAST)
    with connect(d) as c:
        c.send_raw(
            b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, 1,'
            b' {"jsonrpc": "2.0", "method": "ping"},'
            b' {"jsonrpc": "2.0", "id": "x", "method": "nope"},'
            b' {"jsonrpc": "2.0", "id": 2, "method": "ask", "params": {"prompt": "q"}}]\n'
        )
        replies = c.read()
        assert isinstance(replies, list) and len(replies) == 4  # the notification: nothing
        by_id = {r["id"]: r for r in replies}
        assert by_id[1]["result"] == "pong"
        assert by_id[None]["error"]["code"] == -32600
        assert by_id["x"]["error"]["code"] == -32601
        assert by_id[2]["result"]["status"] == "ok"
        c.send_raw(b"[]\n")
        assert c.read()["error"]["code"] == -32600  # an empty batch: one error, no array
        c.send_raw(b'[{"jsonrpc": "2.0", "method": "ping"}]\n')
        assert c.request("ping")["result"] == "pong"  # a batch of notifications: no reply


def test_the_daemon_survives_a_surrogate_in_every_place_and_still_stores_jobs(daemon) -> None:
    """A lone surrogate used to kill the run store's writer: from then on every ask and
    job hung while ping stayed green."""
    d = daemon(FAST)
    with connect(d) as c:
        for params in ({"prompt": "\ud800"}, {"prompt": "q", "metadata": {"k": "\udc00"}}):
            assert c.request("ask", params)["error"]["code"] == -32602
        ok = c.request("ask", {"prompt": "fine"})
        assert ok["result"]["status"] == "ok"
        stored = c.request("job", {"job_id": ok["result"]["job_id"]})
        assert stored["result"]["status"] == "ok"


def test_an_oversized_line_gets_32006_and_the_connection_closes(daemon) -> None:
    d = daemon({**FAST, "daemon": {"max_request_bytes": 1000}})
    with connect(d) as c:
        c.send_raw(
            b'{"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"prompt": "' + b"x" * 5000
        )
        reply = c.read()
        assert reply["error"]["code"] == -32006
        assert c.read() is None  # closed
    assert rpc(d, "ping")["result"] == "pong"  # others unaffected


def test_a_half_line_that_stalls_is_dropped_after_the_idle_timeout(daemon) -> None:
    d = daemon({**FAST, "daemon": {"idle_timeout_s": 0.3}})
    with connect(d) as stalled, connect(d) as waiting:
        request_id = waiting.send("ask", {"prompt": "q"})
        stalled.send_raw(b'{"jsonrpc": "2.0", "id": 1, "meth')
        assert stalled.read() is None  # dropped (the read itself is bounded by WAIT)
        assert waiting.response(request_id)["result"]["status"] == "ok"


def test_an_idle_connection_without_a_partial_line_is_kept(daemon) -> None:
    d = daemon({**slow(latency_ms=800), "daemon": {"idle_timeout_s": 0.2}})
    with connect(d) as c:
        result = c.request("ask", {"prompt": "q", "models": ["slow"], "rounds": ["initial"]})
    assert result["result"]["status"] == "ok"  # waited longer than the idle timeout


def test_a_job_timeout_returns_32003_with_the_partial_result(daemon) -> None:
    d = daemon(slow())
    error = rpc(d, "ask", {"prompt": "q", "timeout_s": 2.0})["error"]
    assert error["code"] == -32003
    replies = {r["model"]: r["status"] for r in error["data"]["rounds"][0]["replies"]}
    assert replies == {"slow": "timeout", "fast": "ok"}


def test_a_failed_round_returns_32008_with_the_partial_result(daemon) -> None:
    d = daemon(
        {"models": [{"name": "bad", "provider": "fake", "fail_rate": 1.0, "max_attempts": 1}]}
    )
    error = rpc(d, "ask", {"prompt": "q"})["error"]
    assert error["code"] == -32008
    assert error["data"]["rounds"][0]["replies"][0]["error"]["code"] == "provider_unavailable"


def test_no_live_model_returns_32002(daemon) -> None:
    d = daemon(
        {"models": [{"name": "gpt", "provider": "openai"}], "supervision": {"max_restarts": 0}},
        env={"OPENAI_API_KEY": ""},
    )
    for _ in range(1000):  # the model goes down right after start; ask until it is
        if rpc(d, "status")["result"]["models"][0]["state"] == "down":
            break
    assert rpc(d, "ask", {"prompt": "q"})["error"]["code"] == -32002


def test_admission_control_refuses_beyond_max_inflight_jobs(daemon) -> None:
    d = daemon(slow(max_inflight_jobs=2))
    with connect(d) as c:
        for _ in range(2):
            c.send("ask", {"prompt": "q", "models": ["slow"], "stream": True})
            first_event(c)  # the job is in flight
        error = c.request("ask", {"prompt": "q"})["error"]
    assert error["code"] == -32001 and error["data"]["retry_after_s"] > 0


def test_100_concurrent_clients_are_all_answered(daemon) -> None:
    d = daemon(FAST)

    def one(i: int) -> str:
        with connect(d) as c:
            return c.request("ask", {"prompt": f"q{i}"})["result"]["status"]

    with ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(one, range(100)))
    assert statuses == ["ok"] * 100


# --- lifecycle --------------------------------------------------------------------------


def test_the_socket_is_0600_in_a_0700_directory(daemon) -> None:
    d = daemon(FAST)
    assert stat.S_IMODE(os.stat(d.socket_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(Path(d.socket_path).parent).st_mode) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another uid")
def test_a_client_with_another_uid_is_refused(daemon) -> None:
    d = daemon(FAST)
    os.chmod(d.dir, 0o711)  # let the other uid reach the socket file,
    os.chmod(Path(d.socket_path).parent, 0o711)
    os.chmod(d.socket_path, 0o666)  # so that only the peer-uid check stands in its way
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, connect, report what the daemon said
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(WAIT)
                s.connect(d.socket_path)  # refused at once: the daemon speaks first, then closes
                os.write(write_end, s.makefile("rb").readline())
        except Exception as exc:
            os.write(write_end, f"child failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    out = subprocess.CompletedProcess([], 0, stdout=said)
    assert "refused" in out.stdout and "pong" not in out.stdout
    assert rpc(d, "ping")["result"] == "pong"


def test_sigterm_lets_short_jobs_finish_and_answers_the_rest_with_32005(daemon) -> None:
    d = daemon(slow(latency_ms=HANG_MS, drain_s=0.5))
    with connect(d) as c:
        long_id = c.send("ask", {"prompt": "long", "stream": True})
        first_event(c)
        d.signal(signal.SIGTERM)
        error = c.response(long_id)["error"]
    assert error["code"] == -32005
    assert error["data"]["status"] == "error" and error["data"]["rounds"]  # partial result
    assert d.wait() == 0
    assert not os.path.exists(d.socket_path)


def test_sigterm_drains_jobs_that_finish_within_the_budget(daemon) -> None:
    d = daemon(slow(latency_ms=500, drain_s=20))
    with connect(d) as c:
        request_id = c.send("ask", {"prompt": "q", "models": ["slow"], "stream": True})
        first_event(c)
        d.signal(signal.SIGTERM)
        assert c.response(request_id)["result"]["status"] == "ok"
    assert d.wait() == 0


def test_shutdown_method_stops_the_daemon(daemon) -> None:
    d = daemon(FAST)
    assert rpc(d, "shutdown")["result"] == {"stopping": True}
    assert d.wait() == 0
    assert not os.path.exists(d.socket_path)


def test_kill_9_mid_job_then_restart_marks_the_job_interrupted(daemon) -> None:
    d = daemon(slow())
    with connect(d) as c:
        c.send("ask", {"prompt": "q", "models": ["slow"], "stream": True})
        job_id = first_event(c)["job_id"]
        d.proc.kill()
        d.wait()
    assert os.path.exists(d.socket_path)  # stale socket left behind
    again = DaemonProcess(slow(), workdir=d.dir).start()
    try:
        stored = rpc(again, "job", {"job_id": job_id})["result"]
        assert stored["status"] == "interrupted" and stored["error"]["code"] == "interrupted"
    finally:
        again.stop()


def test_kill_9_keeps_the_rounds_that_had_finished(daemon) -> None:
    """A job killed by kill -9 used to read ``interrupted`` with ``rounds: []``: its
    finished rounds were only written with the whole result."""
    d = daemon(slow())
    ask = {
        "prompt": "q",
        "models": ["fast"],
        "rounds": ["initial", "synthesis"],
        "synthesizer": "slow",  # the synthesis hangs: the initial round is all there is
        "stream": True,
    }
    with connect(d) as c:
        c.send("ask", ask)
        while (event := first_event(c))["type"] != "round_finished":
            pass
        job_id = event["job_id"]
        running = c.request("job", {"job_id": job_id})["result"]  # read after the write
        assert running["status"] == "running" and running["rounds"][0]["name"] == "initial"
        d.proc.kill()
        d.wait()
    again = DaemonProcess(slow(), workdir=d.dir).start()
    try:
        stored = rpc(again, "job", {"job_id": job_id})["result"]
        assert stored["status"] == "interrupted" and stored["error"]["code"] == "interrupted"
        [initial] = stored["rounds"]
        assert initial["name"] == "initial"
        assert [(r["model"], r["status"], r["text"]) for r in initial["replies"]] == [
            ("fast", "ok", "fast answer")
        ]
        runs = rpc(again, "runs", {"status": "interrupted"})["result"]["runs"]
        assert [r["job_id"] for r in runs] == [job_id]
    finally:
        again.stop()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_run_store_is_one_line_exit_2_and_left_untouched(daemon, damage) -> None:
    """A corrupt runs.sqlite3 used to stop the daemon with a raw traceback and exit 1."""
    d = daemon(FAST)
    rpc(d, "ask", {"prompt": "fill the store"})
    rpc(d, "shutdown")
    assert d.wait() == 0
    path = d.dir / "state" / "runs.sqlite3"
    if damage == "garbage":
        path.write_bytes(os.urandom(3000))
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = path.read_bytes()
    d.stderr_path.unlink()
    again = DaemonProcess(FAST, workdir=d.dir).spawn()
    assert again.wait(timeout=WAIT) == 2
    lines = d.stderr().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert str(path) in lines[0] and "move it aside" in lines[0], lines[0]
    assert path.read_bytes() == before


def test_a_second_daemon_on_the_same_socket_is_refused(daemon) -> None:
    d = daemon(FAST)
    second = DaemonProcess(FAST, workdir=d.dir).spawn()
    assert second.wait(timeout=WAIT) == 2
    assert "another orchestrord is serving" in d.stderr()
    assert rpc(d, "ping")["result"] == "pong"


def test_log_json_writes_one_object_per_line_and_never_a_key(daemon) -> None:
    secret = "sk-test-do-not-log-1234567890"
    d = daemon(FAST, args=["--log-json"], env={"OPENAI_API_KEY": secret})
    rpc(d, "ask", {"prompt": f"my key is {secret}"})
    rpc(d, "shutdown")
    d.wait()
    lines = [line for line in d.stderr().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["text"] for line in lines)
    assert secret not in d.stderr()


def test_check_config_prints_the_setup_or_names_the_bad_key(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    env.pop("OPENAI_API_KEY", None)
    good = tmp_path / "good.toml"
    good.write_text('[[models]]\nname = "a"\nprovider = "fake"\n')
    run = subprocess.run(
        [sys.executable, "-m", "actors.daemon.daemon", "--config", str(good), "--check-config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
    )
    assert run.returncode == 0 and "a" in run.stdout and "initial -> meta" in run.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[models]]\nname = "a"\nprovider = "fake"\nrpm = "fast"\n')
    run = subprocess.run(
        [sys.executable, "-m", "actors.daemon.daemon", "--config", str(bad), "--check-config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
    )
    assert run.returncode == 2 and "models[0].rpm" in run.stderr


def test_the_default_socket_refuses_paths_longer_than_107_bytes(tmp_path: Path) -> None:
    from actors.daemon.daemon import SocketInUse, prepare_socket_path

    with pytest.raises(SocketInUse, match="longer than 107"):
        prepare_socket_path(Path("/tmp/" + "x" * 120))


def test_a_regular_file_at_the_socket_path_is_never_replaced(tmp_path: Path) -> None:
    from actors.daemon.daemon import SocketInUse, prepare_socket_path

    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    with pytest.raises(SocketInUse, match="not a socket"):
        prepare_socket_path(path)
    assert path.read_text() == "precious"


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    from actors.daemon.daemon import prepare_socket_path

    private = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))  # 0700, ours
    short = private / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(short))  # bound, never listening: a connect is refused
    try:
        prepare_socket_path(short)
        assert not short.exists()
    finally:
        shutil.rmtree(private, ignore_errors=True)


# --- strategies and options through the socket -------------------------------------------

TRIO = {
    "models": [
        {"name": "a", "provider": "fake", "reply": "42"},
        {"name": "b", "provider": "fake", "reply": "42.0"},
        {"name": "c", "provider": "fake", "reply": "41"},
    ]
}


def calls_ok(d) -> int:
    return sum(m["calls_ok"] for m in rpc(d, "status")["result"]["models"])


def test_vote_rank_and_early_exit_through_the_socket(daemon) -> None:
    d = daemon(TRIO)
    voted = rpc(d, "ask", {"prompt": "6x7", "strategy": "vote", "rounds": ["initial"]})["result"]
    assert voted["strategy"] == "vote" and voted["votes"][0]["count"] == 2
    assert abs(voted["confidence"] - 2 / 3) < 1e-9
    rankers = daemon(
        {
            "models": [
                {"name": n, "provider": "fake", "reply": [f"answer {n}", "Ranking: A > B > C"]}
                for n in ("a", "b", "c")
            ]
        }
    )
    params = {"prompt": "6x7", "strategy": "rank", "rounds": ["initial"]}
    ranked = rpc(rankers, "ask", params)["result"]
    assert ranked["strategy"] == "rank" and set(ranked["ranking"]["rankings"]) == {"a", "b", "c"}
    assert ranked["answer"].startswith("answer ") and ranked["confidence"] is not None
    same = rpc(d, "ask", {"prompt": "q", "models": ["a", "b"], "early_exit": True})["result"]
    assert same["early_exit"] is True and same["confidence"] == 1.0
    assert [r["name"] for r in same["rounds"]] == ["initial"]


def test_deterministic_results_are_cached_in_the_run_store_across_restarts(daemon) -> None:
    d = daemon(TRIO)
    first = rpc(d, "ask", {"prompt": "2+2", "deterministic": True})["result"]
    before = calls_ok(d)
    again = rpc(d, "ask", {"prompt": "2+2", "deterministic": True})["result"]
    assert again["cached"] is True and again["answer"] == first["answer"]
    assert calls_ok(d) == before  # no provider call
    assert rpc(d, "job", {"job_id": again["job_id"]})["result"]["cached"] is True
    rpc(d, "shutdown")
    d.wait()
    restarted = DaemonProcess(TRIO, workdir=d.dir).start()
    try:
        third = rpc(restarted, "ask", {"prompt": "2+2", "deterministic": True})["result"]
        assert third["cached"] is True and calls_ok(restarted) == 0
    finally:
        restarted.stop()


def test_schema_failure_returns_32009_with_the_answer_and_errors(daemon) -> None:
    d = daemon(
        {
            "models": [
                {"name": "a", "provider": "fake", "reply": "not json"},
                {"name": "b", "provider": "fake", "reply": "still not json"},
            ]
        }
    )
    error = rpc(d, "ask", {"prompt": "q", "schema": {"type": "object"}})["error"]
    assert error["code"] == -32009
    assert error["data"]["answer"] and error["data"]["schema_errors"]


def test_a_budget_returns_32010_with_the_best_answer_so_far(daemon) -> None:
    priced = [
        {**m, "price_in_per_mtok": 1000.0, "price_out_per_mtok": 1000.0, "max_tokens": 100}
        for m in TRIO["models"]
    ]
    d = daemon({"models": priced})
    error = rpc(d, "ask", {"prompt": "2+2?", "max_cost_usd": 0.45})["error"]
    assert error["code"] == -32010
    assert error["data"]["answer"] in ("42", "42.0", "41")
    assert [r["name"] for r in error["data"]["rounds"]] == ["initial"]


def test_a_second_signal_exits_at_once_without_waiting_for_the_drain(daemon) -> None:
    d = daemon(slow(drain_s=600))  # the first SIGTERM would wait up to ten minutes
    with connect(d) as c:
        c.send("ask", {"prompt": "q", "models": ["slow"], "stream": True})
        first_event(c)
        d.signal(signal.SIGTERM)
        assert c.request("ping")["result"] == "pong"  # draining: still serving this client
        d.signal(signal.SIGINT)
        assert d.wait() == 1  # bounded by WAIT, far below the drain budget
    assert not os.path.exists(d.socket_path)
    assert "exiting now" in d.stderr()


def test_a_failure_after_start_stops_the_actors_instead_of_hanging(tmp_path, monkeypatch) -> None:
    import asyncio
    import threading

    import actors.daemon.server
    from actors.config import config_from_dict
    from actors.daemon.daemon import Daemon

    async def cannot_bind(self, path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(actors.daemon.server.SocketServer, "start", cannot_bind)
    short = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
    config = config_from_dict(
        {**FAST, "daemon": {"socket": str(short / "s.sock"), "state_dir": str(tmp_path)}}
    )
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(PermissionError):
        asyncio.run(Daemon(config).run())
    left = [
        t for t in threading.enumerate() if t.name not in before and t.is_alive() and not t.daemon
    ]
    assert left == []  # no actor thread keeps the process alive


# --- nobody else's socket, nobody else's directory --------------------------------------


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to create another user's directory")
def test_the_daemon_refuses_a_socket_directory_another_user_created(tmp_path) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
    try:
        (workdir / "run").mkdir(mode=0o700)
        os.chown(workdir / "run", 65534, 65534)  # squatted by nobody before we started
        proc = DaemonProcess(FAST, workdir=workdir).spawn()
        assert proc.wait(timeout=WAIT) == 2
        err = (workdir / "stderr.log").read_text()
        assert "belongs to uid 65534" in err
        assert not (workdir / "run" / "o.sock").exists()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_daemon_refuses_a_socket_directory_others_can_write_to() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
    try:
        (workdir / "run").mkdir()
        os.chmod(workdir / "run", 0o777)
        proc = DaemonProcess(FAST, workdir=workdir).spawn()
        assert proc.wait(timeout=WAIT) == 2
        assert "writable by others" in (workdir / "stderr.log").read_text()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to serve a socket as another uid")
def test_the_client_never_sends_a_prompt_to_a_socket_another_user_serves(capsys) -> None:
    """The hijack: another user's process on the expected path got the prompt and forged
    an answer that orchestrctl printed with exit 0."""
    from actors.daemon import client

    workdir = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
    os.chmod(workdir, 0o777)
    path = str(workdir / "o.sock")
    ready_r, ready_w = os.pipe()
    got_r, got_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the squatter: nobody, serving the socket, reporting what it receives
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(path)
                os.chmod(path, 0o777)
                server.listen(1)
                server.settimeout(WAIT)
                os.write(ready_w, b"r")
                conn, _ = server.accept()
                conn.settimeout(WAIT)
                os.write(got_w, conn.recv(65536) or b"<nothing>")
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(got_w)
    try:
        assert os.read(ready_r, 1) == b"r"
        code = client.main(["--socket", path, "ask", "my secret prompt"])
        assert code == client.EXIT_UNREACHABLE
        assert "served by uid 65534" in capsys.readouterr().err
        with os.fdopen(got_r, "rb") as got:
            assert got.read() == b"<nothing>"  # the prompt never left
    finally:
        os.waitpid(pid, 0)
        shutil.rmtree(workdir, ignore_errors=True)


def test_shutdown_is_not_held_up_by_clients_that_do_not_read(daemon) -> None:
    """Each stuck client used to cost 10 s, one after another (321 s with 28 of them)."""
    d = daemon({**FAST, "daemon": {"drain_s": 1}})
    ping = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n'
    stuck = []
    for _ in range(6):
        c = connect(d)
        c.send_raw(ping * 20_000)  # ~1 MB of answers it will never read
        stuck.append(c)
    assert rpc(d, "ping")["result"] == "pong"
    d.signal(signal.SIGTERM)
    try:
        assert d.wait() == 0  # bounded by WAIT: one stuck client used to cost 10 s
    finally:
        for c in stuck:
            c.close()


# --- a model that cannot work: said once, clearly, never a restart loop ------------------

NO_KEY = {
    "models": [
        {"name": "gpt", "provider": "openai"},  # no OPENAI_API_KEY in its environment
        {"name": "a", "provider": "fake", "reply": "A"},
    ]
}


def run_check_config(tmp_path: Path, toml: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "actors.daemon", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), **env},
    )


def test_check_config_names_a_model_whose_key_is_missing(tmp_path: Path) -> None:
    run = run_check_config(tmp_path, '[[models]]\nname = "gpt"\nprovider = "openai"\n', {})
    assert run.returncode == 2
    assert "models[0] (gpt): no API key: set $OPENAI_API_KEY" in run.stderr
    ok = run_check_config(
        tmp_path, '[[models]]\nname = "gpt"\nprovider = "openai"\n', {"OPENAI_API_KEY": "sk-x"}
    )
    assert ok.returncode == 0, ok.stderr


def test_check_config_names_a_missing_local_model_file(tmp_path: Path) -> None:
    toml = '[[models]]\nname = "l"\nprovider = "local"\nmodel_path = "/nope.gguf"\n'
    run = run_check_config(tmp_path, toml, {})
    assert (
        run.returncode == 2 and "models[0] (l): model_path '/nope.gguf' is not a file" in run.stderr
    )


@pytest.mark.parametrize("log_args", [[], ["--log-json"]], ids=["text", "json"])
def test_a_model_without_its_key_is_down_with_a_reason_and_never_restarted(
    daemon, log_args: list[str]
) -> None:
    """It used to pass --check-config, then crash-loop: 18 tracebacks in 10 s, with a key
    printed 8 times (4 with --log-json) by loguru's diagnose."""
    secret = "g-secret-value-1234567"
    d = daemon(NO_KEY, args=log_args, env={"OPENAI_API_KEY": "", "GEMINI_API_KEY": secret})
    status = {m["name"]: m for m in rpc(d, "status")["result"]["models"]}
    assert status["gpt"]["state"] == "down" and status["gpt"]["restarts"] == 0
    assert "no API key: set $OPENAI_API_KEY" in status["gpt"]["reason"]
    result = rpc(d, "ask", {"prompt": "q", "rounds": ["initial"]})["result"]
    gpt = next(r for r in result["rounds"][0]["replies"] if r["model"] == "gpt")
    assert gpt["status"] == "skipped" and "OPENAI_API_KEY" in gpt["error"]["message"]
    alone = rpc(d, "ask", {"prompt": "q", "models": ["gpt"]})
    assert alone["error"]["code"] == -32002
    assert "no API key: set $OPENAI_API_KEY" in alone["error"]["message"]
    rpc(d, "shutdown")
    d.wait()
    log = d.stderr()
    assert sum("model gpt is down" in line for line in log.splitlines()) == 1
    assert "Traceback" not in log
    assert secret not in log


def test_a_refused_request_is_stored_with_the_strategy_it_asked_for(daemon) -> None:
    d = daemon(FAST)
    refused = rpc(d, "ask", {"prompt": "q", "strategy": "vote", "models": ["nobody"]})
    assert refused["error"]["code"] == -32602
    [run] = rpc(d, "runs", {})["result"]["runs"]
    assert run["status"] == "error" and run["strategy"] == "vote"


def test_the_daemon_forgets_jobs_older_than_retain_days_at_start(tmp_path) -> None:
    from actors.store import RunStore

    workdir = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))
    try:
        store = RunStore(workdir / "state" / "runs.sqlite3")
        for job_id, when in (("ancient", 1000.0), ("recent", time.time() - 3600)):
            store.accept(job_id, "p", {}, {}).result(WAIT)
            store.submit(
                lambda db, j=job_id, w=when: db.execute(
                    "UPDATE jobs SET accepted_at = ?, status = 'ok' WHERE job_id = ?", (w, j)
                )
            ).result(WAIT)
        store.close()
        d = DaemonProcess({**FAST, "daemon": {"retain_days": 30}}, workdir=workdir).start()
        try:
            assert [r["job_id"] for r in rpc(d, "runs", {})["result"]["runs"]] == ["recent"]
            assert rpc(d, "job", {"job_id": "ancient"})["error"]["code"] == -32007
        finally:
            d.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_sighup_reloads_templates_and_pipeline_and_refuses_a_bad_file(daemon) -> None:
    import sqlite3

    from bench.procs import render_toml

    config = {
        **FAST,
        "templates": {"initial": "OLD: {prompt}"},
        "pipeline": {"rounds": ["initial"]},
    }
    d = daemon(config)

    def prompts_of(job_id: str) -> set[str]:
        db = sqlite3.connect(Path(d.dir) / "state" / "runs.sqlite3")
        try:
            rows = db.execute("SELECT prompt FROM replies WHERE job_id = ?", (job_id,))
            return {row[0] for row in rows}
        finally:
            db.close()

    def ask() -> str:
        return rpc(d, "ask", {"prompt": "q"})["result"]["job_id"]

    assert prompts_of(ask()) == {"OLD: q"}
    fresh = {"prompt": "q", "pipeline": "fresh"}
    assert "unknown pipeline 'fresh'" in rpc(d, "ask", fresh)["error"]["message"]
    daemon_section = {"socket": d.socket_path, "state_dir": str(Path(d.dir) / "state")}
    d.config_path.write_text(
        render_toml(
            {
                **config,
                "daemon": daemon_section,
                "templates": {"initial": "NEW: {prompt}"},
                "pipelines": {"fresh": {"stages": [{"kind": "initial"}, {"kind": "vote"}]}},
            }
        )
    )
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while "reloaded [templates]" not in d.stderr():  # the daemon's own word that it did
        assert time.monotonic() < deadline, d.stderr()
        assert rpc(d, "ping")["result"] == "pong"
    assert prompts_of(ask()) == {"NEW: q"}
    assert rpc(d, "ask", fresh)["result"]["pipeline"] == "fresh"  # a pipeline added by reload
    d.config_path.write_text("[templates]\ninitial = 'BROKEN: {nope}'\n[[models]]\n")
    d.signal(signal.SIGHUP)
    while "reload refused" not in d.stderr():
        assert time.monotonic() < deadline, d.stderr()
        assert rpc(d, "ping")["result"] == "pong"
    assert prompts_of(ask()) == {"NEW: q"}  # the running configuration stayed


def test_every_finished_job_logs_one_line_with_its_fields(daemon) -> None:
    """A job used to log nothing unless it failed, even when a model answered 401."""
    from helpers import LoopbackServer, Reply, openai_error

    with LoopbackServer() as server:
        server.default = Reply(status=401, body=openai_error(401, "Incorrect API key"))
        d = daemon(
            {
                "models": [
                    {"name": "a", "provider": "fake", "reply": "fine"},
                    {
                        "name": "gpt",
                        "provider": "openai",
                        "base_url": server.base_url,
                        "api_key_env": "TEST_KEY",
                    },
                ]
            },
            args=["--log-json"],
            env={"TEST_KEY": "sk-test-not-logged-123"},
        )
        result = rpc(d, "ask", {"prompt": "q", "rounds": ["initial"]})["result"]
        rpc(d, "shutdown")
        d.wait()
    records = [json.loads(line)["record"] for line in d.stderr().splitlines() if line.strip()]
    [job] = [
        r
        for r in records
        if r["extra"].get("job_id") == result["job_id"] and "status" in r["extra"]
    ]
    assert job["level"]["name"] == "INFO" and job["extra"]["status"] == "ok"
    assert job["message"].startswith(f"job {result['job_id']} ok in ")
    assert "2 calls" in job["message"] and "failed: gpt provider_rejected" in job["message"]
    [failure] = [r for r in records if r["extra"].get("model") == "gpt"]
    assert failure["level"]["name"] == "WARNING" and failure["extra"]["round"] == "initial"
    assert failure["extra"]["job_id"] == result["job_id"] and "401" in failure["message"]
    assert "sk-test-not-logged-123" not in d.stderr()


# --- admission through the HTTP door ----------------------------------------------------


def test_a_burst_of_streams_past_max_inflight_jobs_is_refused_with_429s(daemon) -> None:
    """At max_inflight_jobs = 5, 34 of a burst's 35 refused streams used to get 200 OK and
    then an in-stream overloaded error: the door's admit() only looked, it reserved
    nothing, so every stream of the burst was admitted before any job had started."""
    import httpx2

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = "test-http-key-0123456789"
    config = {**slow(max_inflight_jobs=5), "http": {"listen": f"127.0.0.1:{port}"}}
    d = daemon(config, env={"ORCHESTRORD_API_KEY": key})
    body = {"model": "orchestrord", "messages": [{"role": "user", "content": "q"}], "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    statuses: list[int] = []

    async def burst() -> None:
        everyone_answered = asyncio.Event()
        limits = httpx2.Limits(max_connections=64)

        async def one(http: httpx2.AsyncClient) -> None:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            async with http.stream("POST", url, json=body, headers=headers) as response:
                statuses.append(response.status_code)
                if len(statuses) == 40:
                    everyone_answered.set()
                if response.status_code == 200:  # held open: its job keeps its slot
                    await asyncio.wait_for(everyone_answered.wait(), WAIT)
                else:
                    assert (await response.aread()) and response.headers["retry-after"]

        async with httpx2.AsyncClient(timeout=WAIT, limits=limits) as http:
            await asyncio.wait_for(asyncio.gather(*(one(http) for _ in range(40))), 2 * WAIT)

    asyncio.run(burst())
    assert sorted(statuses) == [200] * 5 + [429] * 35, d.stderr()[-3000:]
