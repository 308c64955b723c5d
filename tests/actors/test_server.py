"""The socket server in-process, where its ordering can be observed exactly."""

from __future__ import annotations

import asyncio
import contextvars
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import WAIT, fake_models

from actors.config import DaemonConfig
from actors.daemon import server as server_module
from actors.daemon.server import SocketServer
from actors.store import RunStore
from messages.errors import OverloadedError

NOT_YET_S = 0.5  # how long a reply that must not come yet is given to (wrongly) come


def test_a_result_is_answered_only_after_its_finish_row_is_committed(
    start_orch, monkeypatch
) -> None:
    """kill -9 under load used to turn 4 of 3,817 answered ``ok`` jobs into ``interrupted``:
    the reply went out while the finish row still sat in the writer's queue."""
    orch = start_orch({"models": fake_models(["a"]), "pipeline": {"rounds": ["initial"]}})
    workdir = Path(tempfile.mkdtemp(prefix="os-", dir="/tmp"))
    store = RunStore(workdir / "runs.sqlite3")
    gate, finishing, sent = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []
    real_finish = store.finish

    def held_finish(result: Any) -> Any:
        def hold(db: Any) -> None:
            gate.wait(WAIT)
            order.append("committing")

        store.submit(hold)  # the writer is busy: this finish row cannot commit yet
        finishing.set()
        return real_finish(result)

    real_send = server_module.Connection.send

    def recording_send(self: Any, line: bytes) -> None:
        if b'"result"' in line:
            order.append("answered")
            sent.set()
        real_send(self, line)

    monkeypatch.setattr(store, "finish", held_finish)
    monkeypatch.setattr(server_module.Connection, "send", recording_send)
    path = str(workdir / "o.sock")

    async def scenario() -> dict[str, Any]:
        srv = SocketServer(orch, store, DaemonConfig(socket=path), on_shutdown=lambda: None)
        await srv.start(path)
        reader, writer = await asyncio.open_unix_connection(path)
        request = {"jsonrpc": "2.0", "id": 1, "method": "ask", "params": {"prompt": "q"}}
        writer.write(json.dumps(request).encode() + b"\n")
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, finishing.wait, WAIT)
        assert not await loop.run_in_executor(None, sent.wait, NOT_YET_S)
        gate.set()
        line = await asyncio.wait_for(reader.readline(), WAIT)
        writer.close()
        await srv.drain(1.0)
        await srv.close(1.0)
        return json.loads(line)

    try:
        reply = asyncio.run(scenario())
        assert reply["result"]["status"] == "ok"
        assert order == ["committing", "answered"]
        assert store.get(reply["result"]["job_id"]).result(WAIT).status == "ok"
    finally:
        gate.set()
        store.close()


def test_a_job_cancelled_while_it_is_being_accepted_never_starts(start_orch, monkeypatch) -> None:
    """A client that goes away (or cancels) before the coordinator has its job: the
    coordinator would ignore the cancel, so the server remembers it and never starts it."""
    orch = start_orch({"models": fake_models(["a"]), "pipeline": {"rounds": ["initial"]}})
    workdir = Path(tempfile.mkdtemp(prefix="os-", dir="/tmp"))
    store = RunStore(workdir / "runs.sqlite3")
    gate, accepting = threading.Event(), threading.Event()
    real_accept = store.accept

    def held_accept(*args: Any) -> Any:
        store.submit(lambda db: (accepting.set(), gate.wait(WAIT)))  # the writer is busy
        return real_accept(*args)

    monkeypatch.setattr(store, "accept", held_accept)
    started: list[Any] = []
    monkeypatch.setattr(orch, "start_job", started.append)

    async def scenario() -> Any:
        srv = SocketServer(orch, store, DaemonConfig(socket=""), on_shutdown=lambda: None)
        params = server_module.ask_params({"prompt": "q"})
        params.pop("stream")
        job = asyncio.create_task(srv.run_job(params, job_id="j-accepting"))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, accepting.wait, WAIT)
        assert srv.cancel_job("j-accepting")
        assert not srv.cancel_job("no-such-job")
        gate.set()
        return await asyncio.wait_for(job, WAIT)

    try:
        result = asyncio.run(scenario())
        assert result.status == "cancelled" and started == []
        assert store.get(result.job_id).result(WAIT).status == "cancelled"
    finally:
        gate.set()
        store.close()


# --- admission: admit() reserves the slot the following run_job() takes ------------------


def held(start_orch, monkeypatch) -> tuple[Any, RunStore, list[Any], threading.Event]:
    """An orchestrator whose jobs are recorded as started and never end, and a store."""
    orch = start_orch({"models": fake_models(["a"]), "pipeline": {"rounds": ["initial"]}})
    store = RunStore(Path(tempfile.mkdtemp(prefix="os-", dir="/tmp")) / "runs.sqlite3")
    started: list[Any] = []
    two = threading.Event()

    def start_job(ask: Any) -> None:  # on the run store's thread, after the accept
        started.append(ask)
        if len(started) == 2:
            two.set()

    monkeypatch.setattr(orch, "start_job", start_job)
    return orch, store, started, two


def ask() -> dict[str, Any]:
    params = server_module.ask_params({"prompt": "q"})
    params.pop("stream")
    return params


def test_admit_reserves_the_slot_its_run_job_takes(start_orch, monkeypatch) -> None:
    """The HTTP door admits a stream before its 200 and runs the job after: admit() used
    to only look, so a burst was admitted whole and refused inside 200 streams."""
    orch, store, started, two = held(start_orch, monkeypatch)

    async def scenario() -> None:
        srv = SocketServer(
            orch, store, DaemonConfig(socket="", max_inflight_jobs=2), on_shutdown=lambda: None
        )
        srv.admit()  # as the door does: no id; the task created next inherits the slot
        first = asyncio.create_task(srv.run_job(ask(), job_id="named-after"))
        assert srv.admit("second") == "second"
        with pytest.raises(OverloadedError):
            srv.admit()  # two reserved: full, though no job has started yet
        stranger = asyncio.create_task(srv.run_job(ask()), context=contextvars.Context())
        with pytest.raises(OverloadedError):
            await stranger  # no reservation of its own: refused
        second = asyncio.create_task(srv.run_job(ask(), job_id="second"))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, two.wait, WAIT)
        assert sorted(srv.inflight) == ["named-after", "second"] and not srv.reserved
        with pytest.raises(OverloadedError):
            srv.admit()
        for job in (first, second):
            job.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        assert srv.admit("third") == "third"  # their slots are free again

    try:
        asyncio.run(scenario())
        assert sorted(a.job_id for a in started) == ["named-after", "second"]
    finally:
        store.close()


def test_a_reservation_never_used_is_released(start_orch, monkeypatch) -> None:
    orch, store, started, _ = held(start_orch, monkeypatch)
    monkeypatch.setattr(server_module, "RESERVATION_TTL_S", 0.0)

    async def scenario() -> None:
        srv = SocketServer(
            orch, store, DaemonConfig(socket="", max_inflight_jobs=1), on_shutdown=lambda: None
        )
        srv.admit("forgotten")
        with pytest.raises(OverloadedError):
            srv.admit()
        for _ in range(10):  # a few turns of the loop: the expiry (due now) runs
            if not srv.reserved:
                break
            await asyncio.sleep(0)
        assert not srv.reserved
        srv.admit("kept")
        srv.release("kept")  # or at once, by the door that will not run it
        assert srv.admit("again") == "again"

    try:
        asyncio.run(scenario())
        assert started == []
    finally:
        store.close()


def test_a_reserved_job_cancelled_before_it_runs_never_starts(start_orch, monkeypatch) -> None:
    orch, store, started, _ = held(start_orch, monkeypatch)

    async def scenario() -> Any:
        srv = SocketServer(orch, store, DaemonConfig(socket=""), on_shutdown=lambda: None)
        assert srv.cancel_job(srv.admit("doomed"))  # the client left before the job ran
        return await asyncio.wait_for(srv.run_job(ask(), job_id="doomed"), WAIT)

    try:
        result = asyncio.run(scenario())
        assert result.status == "cancelled" and started == []
    finally:
        store.close()
