"""orchestrctl against a real daemon: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
