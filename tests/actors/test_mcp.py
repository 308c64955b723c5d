"""``orchestrctl mcp``: the real MCP SDK client launches ``bin/orchestrctl mcp`` over stdio
against a real daemon (fake providers) on a short /tmp socket path."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_helpers import ROOT, DaemonProcess, rpc
from helpers import WAIT
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import LATEST_PROTOCOL_VERSION, CallToolResult

from actors.daemon.mcpserver import Progress, report

ORCHESTRCTL = str(ROOT / "bin" / "orchestrctl")
HANG_MS = 600_000
CONFIG = {
    "daemon": {"drain_s": 0.5},  # the hanging job must not hold up teardown
    "models": [
        {"name": "a", "provider": "fake", "reply": "Paris"},
        {"name": "b", "provider": "fake", "reply": "Paris"},
        {"name": "broken", "provider": "fake", "fail_rate": 1},
        {"name": "slow", "provider": "fake", "latency_ms": HANG_MS},
    ],
    "pipelines": {
        "quick": {"stages": [{"kind": "initial", "models": ["a", "b"]}, {"kind": "vote"}]}
    },
}
PANEL = ["a", "b"]


@pytest.fixture(scope="module")
def d() -> Iterator[DaemonProcess]:
    proc = DaemonProcess(CONFIG)
    try:
        yield proc.start()
    finally:
        proc.cleanup()


@contextlib.asynccontextmanager
async def session(socket_path: str, workdir: Path) -> AsyncIterator[ClientSession]:
    """An initialised MCP session with ``orchestrctl --socket PATH mcp`` (its stderr in
    ``workdir/mcp.log``; ``workdir`` is its working directory, so no .env is read)."""
    server = StdioServerParameters(
        command=ORCHESTRCTL, args=["--socket", socket_path, "mcp"], cwd=workdir
    )
    with (workdir / "mcp.log").open("a") as errlog:
        async with (
            stdio_client(server, errlog=errlog) as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            yield client


def drive(d: DaemonProcess, body: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Run ``body(session)`` against ``d``, the whole of it bounded by WAIT."""

    async def main() -> Any:
        with anyio.fail_after(WAIT):
            async with session(d.socket_path, d.dir) as client:
                return await body(client)

    return anyio.run(main)


def call(d: DaemonProcess, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    return drive(d, lambda client: client.call_tool(tool, arguments))  # type: ignore[no-any-return]


def texts(result: CallToolResult) -> list[str]:
    return [block.text for block in result.content if block.type == "text"]


# --- the tools ------------------------------------------------------------------------------


def test_three_tools_are_listed_with_their_input_schemas(d) -> None:
    tools = {tool.name: tool for tool in drive(d, lambda c: c.list_tools()).tools}
    assert set(tools) == {"ask", "runs", "job"}
    ask = tools["ask"].input_schema
    assert ask["required"] == ["prompt"]
    assert set(ask["properties"]) == {"prompt", "pipeline", "models", "system"}
    models = ask["properties"]["models"]["anyOf"][0]
    assert models["type"] == "array" and models["items"] == {"type": "string"}
    assert not tools["runs"].input_schema.get("required")
    assert set(tools["runs"].input_schema["properties"]) == {"limit", "status", "text"}
    assert tools["job"].input_schema["required"] == ["job_id"]
    account = tools["ask"].output_schema
    assert {"answer", "models", "agreement", "dissenters", "cost_usd", "job_id"} <= set(
        account["properties"]
    )
    assert tools["runs"].annotations.read_only_hint and not tools["ask"].annotations.read_only_hint


def test_ask_answers_with_an_account_and_reports_progress(d) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    result = drive(
        d,
        lambda c: c.call_tool(
            "ask",
            {"prompt": "Capital of France?", "models": PANEL},
            progress_callback=on_progress,
        ),
    )
    assert not result.is_error, texts(result)
    account = result.structured_content
    stored = rpc(d, "job", {"job_id": account["job_id"]})["result"]
    assert texts(result)[0] == account["answer"] == stored["answer"] == "Paris"
    assert account["status"] == "ok" and account["models"] == PANEL and account["failed"] == []
    assert account["agreement"] == stored["agreement"]["score"]
    assert account["dissenters"] == stored["agreement"]["dissenters"]
    assert account["synthesizer"] == stored["synthesizer"] in PANEL
    assert account["confidence"] == stored["confidence"]
    assert account["cost_usd"] == stored["cost_usd"]
    assert "answered by a, b" in texts(result)[1] and account["job_id"] in texts(result)[1]
    messages = [message for _, message in progress]
    assert f"job {account['job_id']}: initial round started" in messages, messages
    assert "a answered (initial" in " ".join(m or "" for m in messages)
    values = [value for value, _ in progress]
    assert values == sorted(set(values))  # progress only ever grows


def test_ask_runs_a_named_pipeline_with_a_system_prompt(d) -> None:
    result = call(d, "ask", {"prompt": "Capital?", "pipeline": "quick", "system": "Be brief."})
    assert not result.is_error, texts(result)
    account = result.structured_content
    assert account["pipeline"] == "quick" and account["strategy"] == "vote"
    assert account["answer"] == "Paris" and account["confidence"] == 1.0
    stored = rpc(d, "job", {"job_id": account["job_id"]})["result"]
    assert stored["options"]["system"] == "Be brief."


def test_a_failed_job_is_a_tool_error_carrying_its_partial_account(d) -> None:
    result = call(d, "ask", {"prompt": "Anything?", "models": ["broken"]})
    assert result.is_error
    account = result.structured_content
    assert account["status"] == "error" and account["failed"] == ["broken"]
    assert account["models"] == [] and account["error"]["code"]
    assert texts(result)[0].startswith("the job failed: ")
    assert account["job_id"] in texts(result)[1]
    assert rpc(d, "job", {"job_id": account["job_id"]})["result"]["status"] == "error"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prompt": "q", "models": ["nobody"]}, "nobody"),
        ({"prompt": "q", "pipeline": "nowhere"}, "nowhere"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "q", "models": []}, "models"),
        ({"models": PANEL}, "prompt"),
        ({"prompt": 42}, "prompt"),
    ],
)
def test_bad_ask_arguments_are_tool_errors_naming_them(d, arguments, expected) -> None:
    result = call(d, "ask", arguments)
    assert result.is_error and expected in texts(result)[0], texts(result)


def test_runs_lists_the_jobs_whose_prompt_holds_the_text(d) -> None:
    async def body(client: ClientSession) -> tuple[CallToolResult, CallToolResult]:
        asked = await client.call_tool("ask", {"prompt": "zebra-7 question", "models": PANEL})
        return asked, await client.call_tool("runs", {"text": "zebra-7", "limit": 5})

    asked, runs = drive(d, body)
    assert not runs.is_error, texts(runs)
    [run] = runs.structured_content["runs"]
    assert run["job_id"] == asked.structured_content["job_id"] and run["status"] == "ok"
    assert run["job_id"] in texts(runs)[0] and "zebra-7" in texts(runs)[0]
    none = call(d, "runs", {"text": "no prompt holds this"})
    assert not none.is_error and none.structured_content == {"runs": []}


def test_runs_with_a_bad_limit_or_status_is_a_tool_error(d) -> None:
    assert call(d, "runs", {"limit": 0}).is_error
    bad_status = call(d, "runs", {"status": "sideways"})
    assert bad_status.is_error and "status" in texts(bad_status)[0], texts(bad_status)


def test_job_shows_a_stored_job(d) -> None:
    job_id = rpc(d, "ask", {"prompt": "stored?", "models": PANEL})["result"]["job_id"]
    result = call(d, "job", {"job_id": job_id})
    assert not result.is_error
    assert result.structured_content == rpc(d, "job", {"job_id": job_id})["result"]
    assert f'"job_id": "{job_id}"' in texts(result)[0]


def test_an_unknown_job_is_a_tool_error(d) -> None:
    result = call(d, "job", {"job_id": "no-such-job"})
    assert result.is_error and "no job 'no-such-job'" in texts(result)[0], texts(result)


def settled(d: DaemonProcess, job_id: str) -> dict[str, Any]:
    """The job's stored record once it is no longer running (bounded by WAIT)."""
    deadline = time.monotonic() + WAIT
    while True:  # the daemon's own record says what became of the job
        record: dict[str, Any] = rpc(d, "job", {"job_id": job_id})["result"]
        if record["status"] != "running":
            return record
        assert time.monotonic() < deadline, record


def test_a_call_the_host_cancels_cancels_its_job(d) -> None:
    started = anyio.Event()
    job: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        found = re.match(r"job (\S+): ", message or "")
        if found and not job:
            job.append(found.group(1))
            started.set()

    async def body(client: ClientSession) -> dict[str, Any]:
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: client.call_tool(
                    "ask", {"prompt": "wait", "models": ["slow"]}, progress_callback=on_progress
                )
            )
            await started.wait()
            group.cancel_scope.cancel()  # the SDK sends notifications/cancelled
        # the session stays open: the cancel notification alone stops the job
        record = await anyio.to_thread.run_sync(settled, d, job[0])
        await client.send_ping()  # and the server lives on
        return record

    assert drive(d, body)["status"] == "cancelled"


def first_job_id(stdout: Any) -> str:
    """The job id in the first progress notification that names one."""
    while True:
        message = json.loads(stdout.readline())
        found = re.match(r"job (\S+): ", message.get("params", {}).get("message", ""))
        if found:
            return found.group(1)


def test_a_host_that_goes_away_mid_job_cancels_it(d) -> None:
    """No cancel notification: the host just closes the server's stdin."""
    lines = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "ask",
                "arguments": {"prompt": "wait", "models": ["slow"]},
                "_meta": {"progressToken": "p"},
            },
        },
    ]
    with (d.dir / "mcp.log").open("a") as errlog:
        server = subprocess.Popen(
            [ORCHESTRCTL, "--socket", d.socket_path, "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            cwd=d.dir,
        )
    try:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
        server.stdin.flush()
        with ThreadPoolExecutor(1) as pool:  # a pipe read has no timeout of its own
            job_id = pool.submit(first_job_id, server.stdout).result(timeout=WAIT)
        server.stdin.close()
        assert server.wait(timeout=WAIT) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=WAIT)
    assert settled(d, job_id)["status"] == "cancelled"


# --- no daemon, no extra ------------------------------------------------------------------


def test_a_daemon_that_is_down_is_a_tool_error_saying_how_to_start_it() -> None:
    down = DaemonProcess(CONFIG)  # never started: nothing listens on its socket

    async def body(client: ClientSession) -> list[CallToolResult]:
        results = [
            await client.call_tool("ask", {"prompt": "q"}),
            await client.call_tool("runs", {}),
            await client.call_tool("job", {"job_id": "x"}),
        ]
        await client.send_ping()  # the server lives on
        return results

    try:
        results = drive(down, body)
    finally:
        down.cleanup()
    for result in results:
        assert result.is_error, texts(result)
        assert "cannot reach orchestrord" in texts(result)[0]
        assert "start it with `make run`" in texts(result)[0]


def test_without_the_mcp_extra_it_says_how_to_install_it(monkeypatch, capsys) -> None:
    import actors.daemon
    from actors.daemon import client

    for name in [n for n in sys.modules if n.partition(".")[0] == "mcp"]:
        monkeypatch.setitem(sys.modules, name, None)  # import mcp fails, as when not installed
    monkeypatch.delitem(sys.modules, "actors.daemon.mcpserver", raising=False)
    monkeypatch.delattr(actors.daemon, "mcpserver", raising=False)
    assert client.main(["--socket", "/tmp/none.sock", "mcp"]) == 2
    assert "pip install 'orchestrord[mcp]'" in capsys.readouterr().err


def test_the_client_starts_without_importing_mcp() -> None:
    code = "import sys, actors.daemon.client; sys.exit('mcp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=WAIT, check=False)
    assert done.returncode == 0


# --- progress, as a unit ----------------------------------------------------------------------


def test_waiting_answer_pieces_make_one_progress_message() -> None:
    progress = Progress()
    first = progress.messages(
        [
            {"type": "round_started", "job_id": "J", "round": "synthesis"},
            {"type": "delta", "text": "Par"},
            {"type": "delta", "text": "is"},
            {"type": "mystery"},
        ]
    )
    assert first == ["job J: synthesis round started", "writing the answer: 5 characters"]
    assert progress.messages([{"type": "reset"}, {"type": "delta", "text": "Lyon"}]) == [
        "the answer starts again",
        "writing the answer: 4 characters",
    ]
    failed = {"model": "m", "status": "timeout", "latency_ms": 3.0, "error": {"code": "t"}}
    assert progress.messages([{"type": "reply", "round": "meta", "reply": failed}]) == [
        "m failed (meta): timeout t"
    ]
    assert progress.count == 5


def test_events_queued_when_the_job_ends_are_all_reported() -> None:
    """The job's result closes the stream while events may still wait in it: the reporter
    drains them and ends (it once raised EndOfStream, failing the whole ``ask``)."""
    sent: list[tuple[int, str]] = []

    async def notify(number: int, message: str) -> None:
        sent.append((number, message))

    async def main() -> None:
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](10)
        for event in ({"type": "round_finished", "round": "meta"}, {"type": "delta", "text": "ok"}):
            send.send_nowait(event)
        send.close()
        with anyio.fail_after(WAIT):
            await report(receive, notify)

    anyio.run(main)
    assert sent == [(1, "meta round finished"), (2, "writing the answer: 2 characters")]
