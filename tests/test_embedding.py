"""The embedding API (CONTRACT.md §7) against an OpenAI-compatible loopback server."""

from __future__ import annotations

from pathlib import Path

import pykka
import pytest
from helpers import WAIT, OpenAIServer, Reply, completion

import actors
from messages.commands import Ask
from messages.results import JobResult

FRUIT = {"m-alpha": "apple", "m-bravo": "banana", "m-charlie": "cherry"}


def stage_of(body: dict) -> str:
    user = body["messages"][-1]["content"]
    if "Candidate 1:" in user:
        return "synthesis"
    return "meta" if "Answer A:" in user else "initial"


def answer(body: dict) -> Reply:
    return Reply(body=completion(f"{FRUIT[body['model']]} {stage_of(body)}"))


def three_models(base_url: str) -> dict:
    return {
        "models": [
            {"name": name, "provider": "openai", "model": f"m-{name}", "base_url": base_url}
            for name in ("alpha", "bravo", "charlie")
        ]
    }


def test_a_three_model_job_makes_seven_calls_with_the_content_flow() -> None:
    with OpenAIServer() as server, actors.start(three_models(server.base_url), environ={}) as orch:
        server.handler = answer
        result = orch.ask("Name a fruit.")
    assert result.status == "ok"
    assert len(server.requests) == 7
    stages = [stage_of(b) for b in server.requests]
    assert stages.count("initial") == 3 and stages.count("meta") == 3
    assert stages[-1] == "synthesis"
    for body in server.requests:
        text = body["messages"][-1]["content"]
        assert "alpha" not in text and "bravo" not in text and "charlie" not in text
        if stage_of(body) == "meta":
            assert all(f"{fruit} initial" in text for fruit in FRUIT.values())
        if stage_of(body) == "synthesis":
            assert all(f"{fruit} meta" in text for fruit in FRUIT.values())
    synthesizer_fruit = FRUIT[f"m-{result.synthesizer}"]
    assert result.answer == f"{synthesizer_fruit} synthesis"
    assert result.usage.input_tokens == 7 * 10 and result.usage.output_tokens == 7 * 5


def test_start_accepts_a_toml_path_and_stop_leaves_host_actors_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[models]]\nname = "a"\nprovider = "fake"\nreply = "from toml"\n')

    class HostActor(pykka.ThreadingActor):
        def on_receive(self, message):
            return "host is alive"

    host = HostActor.start()
    try:
        with actors.start(path, environ={}) as orch:
            assert orch.ask("q").answer == "from toml"
        assert host.ask("ping", timeout=WAIT) == "host is alive"
    finally:
        host.stop()


def test_other_actors_can_ask_the_coordinator_directly() -> None:
    with actors.start({"models": [{"name": "a", "provider": "fake"}]}, environ={}) as orch:
        job_future = orch.coordinator.ask(Ask(prompt="q"), timeout=WAIT)
        result = job_future.get(timeout=WAIT)
        assert isinstance(result, JobResult) and result.status == "ok"

        received: list[JobResult] = []

        class Listener(pykka.ThreadingActor):
            def on_receive(self, message):
                received.append(message)

        listener = Listener.start()
        try:
            done = pykka.ThreadingFuture()
            orch.coordinator.tell(Ask(prompt="q", reply_to=listener))
            orch.coordinator.tell(Ask(prompt="q2", reply_to=done))
            assert done.get(timeout=WAIT).status == "ok"
            listener.stop(block=True, timeout=WAIT)  # handles the result first: FIFO mailbox
        finally:
            if listener.is_alive():
                listener.stop()
        assert len(received) == 1 and received[0].status == "ok"


def test_status_reports_every_model() -> None:
    with actors.start({"models": [{"name": "a", "provider": "fake"}]}, environ={}) as orch:
        orch.ask("q")
        status = orch.status()
    assert set(status) == {
        "version",
        "uptime_s",
        "inflight_jobs",
        "jobs_total",
        "escalations",
        "models",
        "pipelines",
        "limits",
    }
    assert status["escalations"] == {}  # no pipeline ran, no gate fired
    assert status["limits"] == {"backend": "local"}
    assert status["jobs_total"] == 1 and status["inflight_jobs"] == 0
    [model] = status["models"]
    assert model["input_tokens"] > 0 and model["output_tokens"] > 0
    assert model == {
        "name": "a",
        "provider": "fake",
        "state": "up",
        "restarts": 0,
        "inflight": 0,
        "calls_ok": 3,
        "calls_failed": 0,
        "retries": 0,
        "input_tokens": model["input_tokens"],
        "output_tokens": model["output_tokens"],
        "cost_usd": 0.0,
        "p50_latency_ms": model["p50_latency_ms"],
        "reason": None,
        "down_since": None,
        "next_probe": None,
        "cooldown_s": None,
    }


def test_stop_is_idempotent_and_ends_running_jobs_with_shutting_down() -> None:
    import asyncio

    async def never(req):
        await asyncio.Event().wait()

    orch = actors.start({"models": [{"name": "a", "provider": "fake", "reply": never}]}, environ={})
    future = orch.submit("q")
    orch.stop()
    orch.stop()
    result = future.get(timeout=WAIT)
    assert result.status == "error" and result.error.code == "shutting_down"


def test_a_bad_config_fails_at_start() -> None:
    with pytest.raises(actors.config.ConfigError, match="models"):
        actors.start({"models": []})


def test_an_embedding_with_a_state_dir_records_its_jobs(tmp_path) -> None:
    """state_dir and metadata used to be accepted and dropped by the embedding API."""
    config = {
        "models": [{"name": "a", "provider": "fake", "reply": "Canberra"}],
        "pipeline": {"rounds": ["initial"]},
        "daemon": {"state_dir": str(tmp_path)},
    }
    with actors.start(config, environ={}) as orch:
        first = orch.ask("Capital of Australia?", metadata={"user": "ann"})
        orch.ask("Another", metadata={"user": "bob"})
        runs = orch.runs(metadata={"user": "ann"})
        assert [r["job_id"] for r in runs] == [first.job_id]
        assert runs[0]["status"] == "ok" and runs[0]["metadata"] == {"user": "ann"}
        record = orch.job(first.job_id)
        assert record["prompt"] == "Capital of Australia?" and record["answer"] == "Canberra"
    assert (tmp_path / "runs.sqlite3").is_file()
    with actors.start(config, environ={}) as again:  # it survives the process
        assert len(again.runs()) == 2


def test_an_embedding_without_a_state_dir_keeps_no_store() -> None:
    from messages.errors import OrchestratorError

    with actors.start({"models": [{"name": "a", "provider": "fake"}]}, environ={}) as orch:
        assert orch.store is None
        with pytest.raises(OrchestratorError, match="state_dir"):
            orch.runs()


def test_status_counts_tokens_cost_latency_and_retries_per_model() -> None:
    from messages.errors import ProviderUnavailable

    flaky = {"n": 0}

    def reply(request):
        flaky["n"] += 1
        if flaky["n"] == 1:
            raise ProviderUnavailable("once", status=503)
        return "fine"

    config = {
        "models": [
            {
                "name": "a",
                "provider": "fake",
                "reply": reply,
                "price_in_per_mtok": 1_000_000.0,
                "price_out_per_mtok": 2_000_000.0,
            },
        ],
        "pipeline": {"rounds": ["initial"]},
        "supervision": {"backoff_min_s": 0.001, "backoff_max_s": 0.002},
    }
    with actors.start(config, environ={}) as orch:
        result = orch.ask("q")
        [model] = orch.status()["models"]
    usage = result.usage
    assert model["retries"] == 1 and model["calls_ok"] == 1
    assert (model["input_tokens"], model["output_tokens"]) == (
        usage.input_tokens,
        usage.output_tokens,
    )
    assert model["cost_usd"] == usage.input_tokens * 1.0 + usage.output_tokens * 2.0
    assert model["p50_latency_ms"] is not None


# --- one job life cycle for the embedding and the daemon -------------------------------


def stored_config(tmp_path: Path, **pipeline: object) -> dict:
    return {
        "models": [
            {"name": "a", "provider": "fake", "reply": '{"city": "Canberra"}'},
            {"name": "slow", "provider": "fake", "latency_ms": 600_000},
        ],
        "pipeline": {"rounds": ["initial"], "synthesizer": "a", **pipeline},
        "daemon": {"state_dir": str(tmp_path)},
    }


def test_the_embedding_and_the_daemon_store_a_job_alike(tmp_path: Path) -> None:
    """Both record through one life cycle: the embedding stored a schema as the list
    of its keys (its frozen mapping went through json's default=list)."""
    import asyncio

    from actors.config import DaemonConfig
    from actors.daemon.server import SocketServer
    from actors.store import RunStore
    from messages.codec import ask_params

    asked = {
        "prompt": "Capital?",
        "models": ["a"],
        "schema": {"type": "object", "required": ["city"]},
        "metadata": {"user": {"name": "ann", "tags": ["x"]}},
        "temperature": 0.5,
    }
    with actors.start(stored_config(tmp_path / "embedded"), environ={}) as orch:
        embedded = orch.ask(**asked)
        assert embedded.ok, embedded.error
        from_embedding = orch.job(embedded.job_id)
        store = RunStore(tmp_path / "daemon" / "runs.sqlite3")
        params = ask_params(asked)
        params.pop("stream")

        async def through_the_socket_server() -> JobResult:
            srv = SocketServer(orch, store, DaemonConfig(socket=""), on_shutdown=lambda: None)
            return await srv.run_job(params)

        served = asyncio.run(through_the_socket_server())
        from_daemon = store.record(served.job_id).result(WAIT)
        store.close()
    assert from_embedding["options"]["schema"] == {"type": "object", "required": ["city"]}
    assert from_embedding["options"] == from_daemon["options"]
    assert from_embedding["metadata"] == from_daemon["metadata"] == asked["metadata"]


def test_deterministic_results_are_served_from_the_run_store_after_a_restart(
    tmp_path: Path,
) -> None:
    config = stored_config(tmp_path)
    with actors.start(config, environ={}) as orch:
        first = orch.ask("Capital?", models=["a"], deterministic=True)
        assert first.ok and not first.cached
    with actors.start(config, environ={}) as again:
        second = again.ask("Capital?", models=["a"], deterministic=True)
        assert second.cached and second.answer == first.answer
        assert second.job_id != first.job_id
        assert again.job(second.job_id)["cached"] is True


def test_an_embedded_job_keeps_its_rounds_as_they_end(tmp_path: Path) -> None:
    import threading

    initial_done = threading.Event()

    def listener(event) -> None:
        if event.type == "round_finished":
            initial_done.set()

    config = stored_config(tmp_path, rounds=["initial", "synthesis"], synthesizer="slow")
    with actors.start(config, environ={}) as orch:
        future = orch.submit("Capital?", models=["a"], listener=listener)
        assert initial_done.wait(WAIT)  # the caller's listener still gets every event
        [job] = orch.runs(status="running")
        running = orch.job(job["job_id"])  # read after the round was written
        assert [r["name"] for r in running["rounds"]] == ["initial"]
        assert orch.cancel(job["job_id"])
        assert future.get(timeout=WAIT).status == "cancelled"
