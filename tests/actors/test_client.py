"""orchestrctl against a real daemon: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from daemon_helpers import ROOT
from helpers import WAIT

FAST = {
    "models": [
        {"name": "a", "provider": "fake", "reply": "A in {round}"},
        {"name": "b", "provider": "fake", "reply": "B in {round}"},
    ]
}


def ctl(socket_path: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "bin" / "orchestrctl"), "--socket", socket_path, *args],
        capture_output=True,
        text=True,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        timeout=WAIT,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_ask_prints_the_answer_on_stdout_and_progress_on_stderr(daemon) -> None:
    d = daemon(FAST)
    run = ctl(d.socket_path, "ask", "What is up?")
    assert run.returncode == 0
    assert run.stdout.strip() in ("A in synthesis", "B in synthesis")
    assert "initial" in run.stderr and "meta" in run.stderr and "✓ a" in run.stderr


def test_ask_reads_stdin_and_prints_json(daemon) -> None:
    d = daemon(FAST)
    run = ctl(
        d.socket_path,
        "ask",
        "-",
        "--json",
        "--models",
        "a",
        "--rounds",
        "initial",
        stdin="from stdin",
    )
    assert run.returncode == 0
    result = json.loads(run.stdout)
    assert result["answer"] == "A in initial" and run.stderr == ""


def test_ask_takes_a_strategy(daemon) -> None:
    d = daemon(FAST)
    run = ctl(d.socket_path, "ask", "q", "--json", "--strategy", "vote", "--rounds", "initial")
    assert run.returncode == 0 and json.loads(run.stdout)["strategy"] == "vote"


def test_a_failed_job_exits_1(daemon) -> None:
    d = daemon(
        {"models": [{"name": "bad", "provider": "fake", "fail_rate": 1.0, "max_attempts": 1}]}
    )
    run = ctl(d.socket_path, "ask", "q")
    assert run.returncode == 1 and "job failed" in run.stderr


def test_status_job_cancel_ping_shutdown(daemon) -> None:
    d = daemon(FAST)
    job_id = json.loads(ctl(d.socket_path, "ask", "q", "--json").stdout)["job_id"]
    status = ctl(d.socket_path, "status")
    assert status.returncode == 0 and "fake" in status.stdout and "up" in status.stdout
    job = ctl(d.socket_path, "job", job_id)
    assert job.returncode == 0 and json.loads(job.stdout)["job_id"] == job_id
    assert ctl(d.socket_path, "cancel", job_id).returncode == 1  # already finished
    unknown = ctl(d.socket_path, "job", "nope")
    assert unknown.returncode == 1 and "no job" in unknown.stderr
    assert ctl(d.socket_path, "ping").stdout.strip() == "pong"
    assert ctl(d.socket_path, "shutdown").returncode == 0
    assert d.wait() == 0


def test_usage_errors_exit_2() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "actors.daemon.client", "fly"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )
    assert run.returncode == 2


def test_an_unreachable_daemon_exits_3_and_says_how_to_start_it() -> None:
    run = ctl("/tmp/definitely-no-daemon-here.sock", "ping")
    assert run.returncode == 3
    assert "make run" in run.stderr


def test_the_client_does_not_load_the_actor_runtime() -> None:
    """orchestrctl used to load 277 modules (pykka, every SDK) just to find the socket."""
    import subprocess
    import sys

    probe = (
        "import sys, actors.daemon.client as c; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('pykka', 'openai', 'google', 'httpx2', 'loguru', 'jsonschema')"
        " or m in ('actors.orchestrator', 'actors.providers')]; print(heavy)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    assert run.stdout.strip() == "[]"


def test_python_m_actors_daemon_still_runs_the_daemon() -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "actors.daemon", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0 and run.stdout.startswith("orchestrord ")


# --- every ask option, and the job's life on the terminal -------------------------------


def test_every_ask_option_has_a_flag_that_reaches_the_daemon(daemon, tmp_path) -> None:
    from messages.options import ASK_OPTIONS

    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object"}')
    tools = tmp_path / "tools.json"
    tools.write_text('[{"type": "function", "function": {"name": "lookup"}}]')
    values = {
        "--system": "be terse",
        "--max-tokens": "7",
        "--temperature": "0.3",
        "--models": "a,b",
        "--rounds": "initial",
        "--strategy": "vote",
        "--synthesizer": "a",
        "--timeout": "30",
        "--metadata": '{"user": "ann"}',
        "--schema": f"@{schema}",
        "--early-exit": None,
        "--max-cost": "5",
        "--answer-pattern": "(\\{.*\\})",
        "--deterministic": None,
        "--tools": f"@{tools}",
        "--tool-choice": "auto",
        "--stop": "END",
        "--seed": "-3",
        "--top-p": "0.9",
        "--presence-penalty": "0.5",
        "--frequency-penalty": "-0.5",
        "--reasoning-effort": "low",
    }
    conversation = tmp_path / "talk.json"
    conversation.write_text(
        json.dumps(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "And of Italy?"},
            ]
        )
    )
    # a named pipeline excludes --rounds and --strategy; a conversation, the prompt
    alone = {"--pipeline": "quick", "--messages": str(conversation)}
    flags = {o.flag for o in ASK_OPTIONS if o.flag}
    assert flags == set(values) | set(alone)  # a new option gets a flag, and this test a value
    d = daemon(
        {
            "models": [{"name": n, "provider": "fake", "reply": '{"x": 1}'} for n in "ab"],
            "pipelines": {"quick": {"stages": [{"kind": "initial"}, {"kind": "vote"}]}},
        }
    )
    argv = [
        x for flag, value in values.items() for x in ([flag] if value is None else [flag, value])
    ]
    run = ctl(d.socket_path, "ask", "q", "--json", *argv)
    assert run.returncode == 0, run.stderr + run.stdout
    record = json.loads(ctl(d.socket_path, "job", json.loads(run.stdout)["job_id"]).stdout)
    options = record["options"]
    assert options["system"] == "be terse" and options["max_tokens"] == 7
    assert options["temperature"] == 0.3 and options["models"] == ["a", "b"]
    assert options["schema"] == {"type": "object"} and options["max_cost_usd"] == 5.0
    assert options["early_exit"] is True and options["answer_pattern"] == "(\\{.*\\})"
    assert record["metadata"] == {"user": "ann"} and record["prompt"] == "q"
    assert options["tools"] == [{"type": "function", "function": {"name": "lookup"}}]
    assert options["tool_choice"] == "auto"
    assert options["stop"] == ["END"] and options["seed"] == -3 and options["top_p"] == 0.9
    assert options["presence_penalty"] == 0.5 and options["frequency_penalty"] == -0.5
    assert options["reasoning_effort"] == "low"
    run = ctl(d.socket_path, "ask", "q", "--json", "--pipeline", "quick")
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["pipeline"] == "quick" and result["strategy"] == "vote"
    record = json.loads(ctl(d.socket_path, "job", result["job_id"]).stdout)
    assert record["options"]["pipeline"] == "quick"
    both = ctl(d.socket_path, "ask", "q", "--pipeline", "quick", "--strategy", "rank")
    assert both.returncode == 2 and "named pipeline" in both.stderr
    run = ctl(d.socket_path, "ask", "--json", "--messages", str(conversation))
    assert run.returncode == 0, run.stderr + run.stdout
    record = json.loads(ctl(d.socket_path, "job", json.loads(run.stdout)["job_id"]).stdout)
    assert record["prompt"] == "And of Italy?" and record["messages"][2] == {
        "role": "assistant",
        "content": "Paris.",
    }
    assert record["options"]["system"] == "Be brief."
    neither = ctl(d.socket_path, "ask")
    assert neither.returncode == 2 and "give a PROMPT (or --messages FILE)" in neither.stderr


def test_ask_shows_the_job_id_first_and_a_footer_and_no_markup(daemon) -> None:
    d = daemon(
        {
            "models": [
                {"name": "a", "provider": "fake", "reply": "A"},
                {"name": "bad", "provider": "fake", "fail_rate": 1.0, "max_attempts": 1},
            ]
        }
    )
    run = ctl(d.socket_path, "ask", "q", "--rounds", "initial")
    assert run.returncode == 0
    lines = run.stderr.splitlines()
    assert lines[0].startswith("job ")
    assert "✗ bad" in run.stderr and "[red]" not in run.stderr  # the literal markup bug
    assert "tokens (" in lines[-1] and "$0.000000" in lines[-1] and " s" in lines[-1]
    long = ctl(d.socket_path, "ask", "q", "--rounds", "initial,synthesis", "--synthesizer", "a")
    lines = long.stderr.splitlines()
    assert lines[-1].startswith("synthesizer a · ") and lines[-1].endswith(" s"), long.stderr
    assert any(line.endswith("scripted failure (fail_rate)") for line in lines)  # unwrapped
    assert "\x1b[" not in run.stderr  # NO_COLOR is honoured


def test_ask_with_a_pipeline_shows_its_stages_and_each_gate_that_fired(daemon) -> None:
    d = daemon(
        {
            "models": [
                {"name": "a", "provider": "fake", "reply": "Canberra"},
                {"name": "b", "provider": "fake", "reply": "Sydney"},
            ],
            "pipelines": {
                "review": {
                    "stages": [
                        {"kind": "initial"},
                        {"kind": "vote", "min_confidence": 0.9, "fallback": "synthesis"},
                        {"kind": "synthesis", "model": "a"},
                    ]
                }
            },
        }
    )
    run = ctl(d.socket_path, "ask", "Capital?", "--pipeline", "review")
    assert run.returncode == 0 and run.stdout.strip() == "Canberra", run.stderr
    lines = run.stderr.splitlines()
    assert "▶ vote" in lines and not any(line.strip() == "vote: 0/0 ok" for line in lines)
    assert lines[-2] == "vote: confidence 0.50 below 0.9, on to synthesis"
    assert lines[-1].startswith("pipeline review · synthesizer a · ")


def test_invalid_params_exit_2(daemon) -> None:
    d = daemon(FAST)
    run = ctl(d.socket_path, "ask", "q", "--models", "nobody")
    assert run.returncode == 2 and "unknown model" in run.stderr
    assert ctl(d.socket_path, "ask", "q", "--schema", "{not json").returncode == 2


def test_piped_stdin_is_sent_with_the_prompt_as_a_document(daemon) -> None:
    d = daemon(FAST)
    run = ctl(
        d.socket_path,
        "ask",
        "summarize",
        "--json",
        "--rounds",
        "initial",
        stdin="the document body",
    )
    job = json.loads(ctl(d.socket_path, "job", json.loads(run.stdout)["job_id"]).stdout)
    assert job["prompt"] == "summarize\n\nthe document body"


def test_ctrl_c_cancels_the_job_and_exits_130(daemon) -> None:
    import signal

    d = daemon({"models": [{"name": "slow", "provider": "fake", "latency_ms": 600_000}]})
    proc = subprocess.Popen(
        [str(ROOT / "bin" / "orchestrctl"), "--socket", d.socket_path, "ask", "q"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "job …": the job has started
    assert first.startswith("job ")
    job_id = first.split()[1]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=WAIT) == 130
    assert "cancelled" in proc.stderr.read()
    status = json.loads(ctl(d.socket_path, "job", job_id).stdout)["status"]
    assert status == "cancelled"  # it does not run on (and get paid for)


def test_runs_and_export_list_past_jobs_with_filters(daemon) -> None:
    d = daemon(FAST)
    for prompt, user in (("capital of France", "ann"), ("2+2", "bob"), ("capital of Peru", "ann")):
        ctl(
            d.socket_path,
            "ask",
            prompt,
            "--rounds",
            "initial",
            "--metadata",
            json.dumps({"user": user}),
        )
    runs = json.loads(ctl(d.socket_path, "runs", "--json", "--metadata", '{"user": "ann"}').stdout)
    assert [r["prompt_preview"] for r in runs] == ["capital of Peru", "capital of France"]
    grep = json.loads(ctl(d.socket_path, "runs", "--json", "--grep", "2+2").stdout)
    assert [r["metadata"] for r in grep] == [{"user": "bob"}]
    table = ctl(d.socket_path, "runs", "--limit", "1")
    assert table.returncode == 0 and "Peru" in table.stdout and "France" not in table.stdout
    export = ctl(d.socket_path, "export")
    records = [json.loads(line) for line in export.stdout.splitlines()]
    assert len(records) == 3 and all("rounds" in r and "prompt" in r for r in records)
    assert ctl(d.socket_path, "runs", "--since", "yesterday").returncode == 2


def test_the_client_finds_the_socket_like_the_daemon(tmp_path) -> None:
    from actors.daemon.client import socket_path

    config = tmp_path / "c.toml"
    config.write_text('[daemon]\nsocket = "/run/x/o.sock"\n')
    assert socket_path(None, {"ORCHESTRORD_CONFIG": str(config)}) == "/run/x/o.sock"
    assert (
        socket_path(None, {"ORCHESTRORD_SOCKET": "/s", "ORCHESTRORD_CONFIG": str(config)}) == "/s"
    )
    assert socket_path("/flag", {"ORCHESTRORD_SOCKET": "/s"}) == "/flag"
    assert socket_path(None, {"XDG_RUNTIME_DIR": "/run/u", "HOME": str(tmp_path)}) == (
        "/run/u/orchestrord/orchestrord.sock"
    )


def test_help_texts_explain() -> None:
    for command in ("orchestrctl", "orchestrord"):
        run = subprocess.run(
            [str(ROOT / "bin" / command), "--help"], capture_output=True, text=True, timeout=WAIT
        )
        assert run.returncode == 0
        assert "``" not in run.stdout  # no raw docstring
    ask = subprocess.run(
        [str(ROOT / "bin" / "orchestrctl"), "ask", "--help"],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert "--max-cost USD" in ask.stdout and "Ctrl-C cancels" in ask.stdout


def test_on_a_terminal_the_answer_is_written_as_it_streams(daemon) -> None:
    """On a terminal the answer's pieces are written as they arrive (and not again at the
    end); progress lines go below them. In a pipe, the answer is written once, whole."""
    import pty

    d = daemon(
        {
            "models": [{"name": "a", "provider": "fake", "reply": "one two three"}],
            "pipeline": {"rounds": ["initial", "synthesis"]},
        }
    )
    main, secondary = pty.openpty()
    try:
        run = subprocess.run(
            [str(ROOT / "bin" / "orchestrctl"), "--socket", d.socket_path, "ask", "q"],
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
            text=True,
            timeout=WAIT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        os.close(secondary)
        secondary = -1
        written = b""
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not data:
                break
            written += data
    finally:
        os.close(main)
        if secondary != -1:
            os.close(secondary)
    assert run.returncode == 0, run.stderr
    assert written.decode().replace("\r\n", "\n") == "one two three\n"  # once, not twice


def test_json_arguments_from_text_or_files_fail_with_a_usage_error(tmp_path) -> None:
    import argparse

    from actors.daemon import client as c

    good = tmp_path / "schema.json"
    good.write_text('{"type": "object"}')
    assert c._json_value(f"@{good}") == {"type": "object"}
    assert c._json_value('{"a": 1}') == {"a": 1}
    turns = tmp_path / "turns.json"
    turns.write_text('[{"role": "user", "content": "q"}]')
    assert c._messages_file(str(turns)) == [{"role": "user", "content": "q"}]
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe[")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    for call, arg, words in [
        (c._json_value, "{nope", "it is not valid JSON"),
        (c._json_value, "[1]", "expected a JSON object"),
        (c._json_value, f"@{tmp_path / 'missing.json'}", "cannot read"),
        (c._messages_file, str(good), "must hold a JSON array"),
        (c._messages_file, str(binary), "not UTF-8"),
        (c._messages_file, str(deep), "not valid JSON"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            call(arg)
