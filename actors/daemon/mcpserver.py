"""``orchestrctl mcp``: the ensemble as an MCP server on stdio (the ``mcp`` extra).

An MCP host (Claude Desktop, Claude Code, VS Code, Cursor, …) starts it as a subprocess
and calls its tools:

- ``ask``: the ensemble answers a prompt; the result is the answer and a short account
  (the models that answered, their agreement and dissenters, the confidence, the
  synthesizer, the cost, the job id), as text and as structured content. While the rounds
  run, the daemon's stream events become progress notifications (when the host sent a
  progress token); a call the host cancels cancels its job on the daemon.
- ``runs``: past jobs, newest first; ``job``: one stored job.

Each call opens its own connection to the daemon's socket, found as every ``orchestrctl``
command finds it, through :class:`actors.daemon.connection.Client` in a worker thread. A
daemon that is not running, a refused request and a failed job are tool errors
(``isError``), never a crash of the server. While it serves, the SDK points file
descriptor 1 at stderr: stdout carries the protocol and nothing else; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from actors.daemon.connection import HOW_TO_START, Client, RpcError, Unreachable, Untrusted
from actors.version import VERSION

logger = logging.getLogger("orchestrord.mcp")

CALL_TIMEOUT_S = 30.0  # runs, job and cancel: the daemon answers these at once
SYNTHESIS = "synthesis"
INSTRUCTIONS = (
    "orchestrord asks several LLMs the same question, lets them critique each other's "
    "answers and has one of them write the final answer. Use `ask` for a question that "
    "deserves more than one model's opinion (it takes longer and costs more than one "
    "model); `runs` and `job` show past questions and how they were answered."
)


class Account(BaseModel):
    """How the ensemble reached an answer: the ``ask`` tool's structured content."""

    job_id: str = Field(description="the daemon's job id (the `job` tool shows it in full)")
    status: str = Field(description="ok, or why the job failed: error, timeout, cancelled")
    answer: str | None = Field(description="the final answer")
    models: list[str] = Field(description="the models that answered")
    failed: list[str] = Field(description="the models that were asked and did not answer")
    agreement: float | None = Field(description="how far the last round agreed, 0 to 1")
    dissenters: list[str] = Field(description="models whose last answer differs from it")
    confidence: float | None = Field(description="the strategy's confidence, 0 to 1")
    strategy: str | None = Field(description="synthesize, vote or rank")
    synthesizer: str | None = Field(description="the model that wrote the final answer")
    pipeline: str | None = Field(default=None, description="the named pipeline, if any")
    cost_usd: float | None = Field(description="what the job cost, in US dollars")
    elapsed_ms: float | None = Field(description="how long the job took")
    error: dict[str, Any] | None = Field(default=None, description="why the job failed")


class RunList(BaseModel):
    """The ``runs`` tool's structured content."""

    runs: list[dict[str, Any]] = Field(
        description="job_id, created, status, strategy, models, elapsed_ms, cost_usd, "
        "prompt_preview and metadata of each job, newest first"
    )


# --- the account of a job ---------------------------------------------------------------


def account(result: dict[str, Any]) -> dict[str, Any]:
    """The short account of a job result (a partial one too): who answered, how far they
    agreed, what it cost."""
    seen: dict[str, bool] = {}  # model -> answered at least once, in order of appearance
    for round_ in result.get("rounds") or ():
        if round_.get("name") == SYNTHESIS:
            continue
        for reply in round_.get("replies") or ():
            seen[reply["model"]] = seen.get(reply["model"], False) or reply["status"] == "ok"
    agreement = result.get("agreement") or {}
    out = {
        "job_id": result.get("job_id"),
        "status": result.get("status"),
        "answer": result.get("answer"),
        "models": [name for name, ok in seen.items() if ok],
        "failed": [name for name, ok in seen.items() if not ok],
        "agreement": agreement.get("score"),
        "dissenters": list(agreement.get("dissenters") or ()),
        "confidence": result.get("confidence"),
        "strategy": result.get("strategy"),
        "synthesizer": result.get("synthesizer"),
        "pipeline": result.get("pipeline"),
        "cost_usd": result.get("cost_usd"),
        "elapsed_ms": result.get("elapsed_ms"),
    }
    if result.get("error") is not None:
        out["error"] = result["error"]
    return out


def account_line(acc: dict[str, Any]) -> str:
    """The account in one line, for the host's model and its user to read."""
    parts = [f"answered by {', '.join(acc['models']) or 'no model'}"]
    if acc["failed"]:
        parts[0] += f" ({', '.join(acc['failed'])} failed)"
    if acc["agreement"] is not None:
        dissent = ", ".join(acc["dissenters"]) or "none"
        parts.append(f"agreement {acc['agreement']:.2f} (dissenting: {dissent})")
    if acc["confidence"] is not None:
        parts.append(f"confidence {acc['confidence']:.2f}")
    for key in ("pipeline", "synthesizer"):
        if acc.get(key):
            parts.append(f"{key} {acc[key]}")
    parts.append(f"${acc['cost_usd'] or 0:.6f}")
    if acc["elapsed_ms"] is not None:
        parts.append(f"{acc['elapsed_ms'] / 1000:.1f} s")
    parts.append(f"job {acc['job_id']}")
    return " · ".join(parts)


def blocks(*pieces: str) -> list[ContentBlock]:
    return [TextContent(type="text", text=piece) for piece in pieces]


def tool_error(message: str, structured: dict[str, Any] | None = None) -> CallToolResult:
    return CallToolResult(content=blocks(message), structured_content=structured, is_error=True)


def refusal(exc: Exception) -> CallToolResult:
    """A call the daemon did not answer with a result, as a tool error saying why."""
    if isinstance(exc, Untrusted):
        return tool_error(str(exc))
    if isinstance(exc, Unreachable):
        return tool_error(f"{exc}; {HOW_TO_START}")
    if isinstance(exc, RpcError):
        data = exc.error.get("data")
        if isinstance(data, dict) and "status" in data:  # the job ran and failed
            acc = account(data)
            message = f"the job failed: {exc.error.get('message')}"
            return CallToolResult(
                content=blocks(message, account_line(acc)), structured_content=acc, is_error=True
            )
        return tool_error(f"orchestrord refused the request: {exc.error.get('message')}")
    return tool_error(f"orchestrord did not answer: {exc}")  # a timeout, a broken socket


# --- progress -----------------------------------------------------------------------------


class Progress:
    """The daemon's stream events as progress messages; the count only ever grows. The
    answer's pieces arrive many at a time: the ones already waiting make one message."""

    def __init__(self) -> None:
        self.count = 0
        self.written = 0  # characters of the answer so far

    def messages(self, events: Iterable[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for event in events:
            kind, name = event.get("type"), event.get("round", "")
            if kind == "delta":
                self.written += len(event.get("text") or "")
                message = f"writing the answer: {self.written} characters"
                if out and out[-1].startswith("writing the answer"):
                    out[-1] = message
                    continue
            elif kind == "reset":
                self.written = 0
                message = "the answer starts again"
            elif kind == "round_started":
                message = f"job {event.get('job_id')}: {name} round started"
            elif kind == "round_finished":
                message = f"{name} round finished"
            elif kind == "reply":
                message = reply_message(name, event.get("reply") or {})
            else:
                continue  # a kind this server does not know yet
            out.append(message)
        self.count += len(out)
        return out


def reply_message(round_name: str, reply: dict[str, Any]) -> str:
    model, latency = reply.get("model", "?"), reply.get("latency_ms") or 0
    if reply.get("status") == "ok":
        return f"{model} answered ({round_name}, {latency:.0f} ms)"
    error = reply.get("error") or {}
    return f"{model} failed ({round_name}): {reply.get('status')} {error.get('code', '')}".strip()


async def report(
    receive: MemoryObjectReceiveStream[dict[str, Any]],
    notify: Callable[[int, str], Awaitable[None]],
) -> None:
    """``notify(number, message)`` per event, until the stream is closed and drained."""
    progress = Progress()
    async with receive:
        async for event in receive:
            waiting = [event]
            with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):  # (closed: drained)
                while True:
                    waiting.append(receive.receive_nowait())
            messages = progress.messages(waiting)
            first = progress.count - len(messages) + 1
            for number, message in enumerate(messages, start=first):
                await notify(number, message)


# --- one job on the daemon ------------------------------------------------------------------


class DaemonJob:
    """One streamed ``ask`` on its own connection, run in a worker thread. ``cancel`` may
    come from any thread at any time: before the job's id is known, the cancel goes out
    with the first event that names it."""

    def __init__(self, path: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.path = path
        self.on_event = on_event
        self.lock = threading.Lock()
        self.job_id: str | None = None
        self.cancel_wanted = False
        self.cancel_sent = False
        self.client: Client | None = None

    def run(self, params: dict[str, Any]) -> dict[str, Any]:
        client = Client(self.path)  # no timeout: the daemon's job_timeout_s bounds a job
        with self.lock:
            self.client = client
        try:
            return dict(client.call("ask", params, on_event=self._event))
        finally:
            client.close()

    def _event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.job_id = self.job_id or event.get("job_id")
        self._cancel_if_wanted()
        self.on_event(event)

    def cancel(self) -> None:
        with self.lock:
            self.cancel_wanted = True
        self._cancel_if_wanted()

    def _cancel_if_wanted(self) -> None:
        with self.lock:
            if not self.cancel_wanted or self.cancel_sent or self.job_id is None:
                return
            self.cancel_sent = True
            job_id = self.job_id
        try:
            call_once(self.path, "cancel", {"job_id": job_id})
            logger.info("job %s cancelled by the MCP host", job_id)
        except (Unreachable, RpcError, OSError) as exc:
            logger.warning("cancelling job %s failed: %s", job_id, exc)

    def abandon(self) -> None:
        """The server is stopping: cancel the job and wake the thread reading its answer."""
        self.cancel()
        with self.lock:
            client = self.client
        if client is not None:
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_RDWR)


def call_once(path: str, method: str, params: dict[str, Any]) -> Any:
    client = Client(path, timeout=CALL_TIMEOUT_S)
    try:
        return client.call(method, params)
    finally:
        client.close()


def _offer(send: MemoryObjectSendStream[dict[str, Any]], event: dict[str, Any]) -> None:
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        send.send_nowait(event)  # the call has ended: its progress no longer matters


async def run_job(
    path: str, params: dict[str, Any], ctx: Context, live: set[DaemonJob]
) -> dict[str, Any]:
    """``ask`` on the daemon, its events reported as progress while it runs; a cancelled
    call cancels the job."""
    loop = asyncio.get_running_loop()
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](math.inf)

    def post(event: dict[str, Any]) -> None:  # on the worker thread
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
            loop.call_soon_threadsafe(_offer, send, event)

    job = DaemonJob(path, post)
    live.add(job)
    failure: Exception | None = None  # raised after the group: not in an ExceptionGroup
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(report, receive, lambda n, m: ctx.report_progress(n, None, m))
            try:
                result = await anyio.to_thread.run_sync(job.run, params, abandon_on_cancel=True)
            except (Unreachable, RpcError, OSError) as exc:
                failure = exc
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(job.cancel)
                raise
            finally:
                send.close()  # the reporter sends what is queued, then ends
    finally:
        live.discard(job)
    if failure is not None:
        raise failure
    return result


# --- the server -----------------------------------------------------------------------------


def build(path: str, live: set[DaemonJob] | None = None) -> MCPServer[Any]:
    """The MCP server whose tools speak to the daemon at ``path``."""
    jobs = live if live is not None else set()
    server: MCPServer[Any] = MCPServer(
        "orchestrord", version=VERSION, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    spends = ToolAnnotations(read_only_hint=False, open_world_hint=True)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(_ask_tool(path, jobs), description=ASK_HELP, annotations=spends)
    server.add_tool(
        _runs_tool(path), description="Past orchestrord jobs, newest first.", annotations=reads
    )
    server.add_tool(_job_tool(path), description=JOB_HELP, annotations=reads)
    return server


# Each tool is a function of its own (MCP reads its name, parameters and return type),
# made for the daemon at ``path``.


def _ask_tool(path: str, jobs: set[DaemonJob]) -> Callable[..., Awaitable[CallToolResult]]:
    async def ask(
        prompt: Annotated[str, Field(min_length=1, description="the question")],
        ctx: Context,
        pipeline: Annotated[str | None, Field(description="a named pipeline")] = None,
        models: Annotated[
            list[str] | None, Field(min_length=1, description="ask only these models")
        ] = None,
        system: Annotated[str | None, Field(description="a system prompt for every model")] = None,
    ) -> Annotated[CallToolResult, Account]:
        params: dict[str, Any] = {"prompt": prompt, "stream": True}
        for key, value in (("pipeline", pipeline), ("models", models), ("system", system)):
            if value is not None:
                params[key] = value
        try:
            result = await run_job(path, params, ctx, jobs)
        except (Unreachable, RpcError, OSError) as exc:
            return refusal(exc)
        acc = account(result)
        return CallToolResult(
            content=blocks(result.get("answer") or "", account_line(acc)), structured_content=acc
        )

    return ask


def _runs_tool(path: str) -> Callable[..., Awaitable[CallToolResult]]:
    async def runs(
        limit: Annotated[int, Field(ge=1, le=500, description="at most this many")] = 20,
        status: Annotated[
            str | None, Field(description="only jobs with this status: ok, error, cancelled…")
        ] = None,
        text: Annotated[str | None, Field(description="only prompts holding this text")] = None,
    ) -> Annotated[CallToolResult, RunList]:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("status", status), ("text", text)):
            if value is not None:
                params[key] = value
        try:
            found = await anyio.to_thread.run_sync(call_once, path, "runs", params)
        except (Unreachable, RpcError, OSError) as exc:
            return refusal(exc)
        lines = [run_line(run) for run in found["runs"]] or ["no runs"]
        return CallToolResult(content=blocks("\n".join(lines)), structured_content=found)

    return runs


def _job_tool(path: str) -> Callable[..., Awaitable[CallToolResult]]:
    async def job(
        job_id: Annotated[str, Field(min_length=1, description="a job id from ask or runs")],
    ) -> CallToolResult:
        try:
            record = await anyio.to_thread.run_sync(call_once, path, "job", {"job_id": job_id})
        except (Unreachable, RpcError, OSError) as exc:
            return refusal(exc)
        return CallToolResult(
            content=blocks(json.dumps(record, indent=1)), structured_content=record
        )

    return job


ASK_HELP = (
    "Ask the ensemble: several models answer, critique each other and one writes the final "
    "answer. Returns the answer and an account: the models that answered, their agreement "
    "and dissenters, the confidence, the synthesizer, the cost and the job id."
)
JOB_HELP = "One stored orchestrord job: its answer, every round's replies, prompt and cost."


def run_line(run: dict[str, Any]) -> str:
    return "  ".join(
        (
            run["job_id"],
            str(run.get("created") or "")[:19].replace("T", " "),
            str(run.get("status")),
            ",".join(run.get("models") or ()),
            f"{(run.get('elapsed_ms') or 0) / 1000:.1f} s",
            f"${run.get('cost_usd') or 0:.4f}",
            run.get("prompt_preview") or "",
        )
    )


def serve(path: str) -> int:
    """Serve MCP on stdin and stdout until the host closes them."""
    live: set[DaemonJob] = set()
    try:
        build(path, live).run("stdio")
    except KeyboardInterrupt:
        return 130
    finally:
        for job in list(live):  # calls still running when the host went away
            job.abandon()
    return 0
