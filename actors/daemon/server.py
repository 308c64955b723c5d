"""The socket server: JSON-RPC 2.0 over a Unix stream socket, one object per line.

Runs on the daemon's asyncio loop. Each connection may carry many requests at once;
each request is its own task and responses go out by id as they are ready. A job's
result comes back from the coordinator through ``loop.call_soon_threadsafe``, so no
thread ever waits for a job. Bad input is answered (or the connection closed, for an
oversized line or a stalled half line) without touching other connections or jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from actors.config import DaemonConfig
from actors.daemon.peercred import peer_uid
from actors.daemon.store import RunStore
from actors.orchestrator import Orchestrator
from messages.codec import (
    Framer,
    Request,
    ask_params,
    decode_request,
    encode_error,
    encode_exception,
    encode_notification,
    encode_response,
    job_id_param,
    parse_line,
    request_id_of,
    response_error,
    response_exception,
    response_result,
)
from messages.commands import Ask, CancelJob, new_id
from messages.errors import (
    ERRORS_BY_CODE,
    InvalidParams,
    JobCancelled,
    MethodNotFound,
    OrchestratorError,
    OverloadedError,
    ProtocolError,
    RequestTooLarge,
    ShuttingDown,
    UnknownJob,
)
from messages.events import JobEvent
from messages.results import ErrorInfo, JobResult

READ_CHUNK = 65536
MAX_WRITE_BUFFER = 64 * 1024 * 1024  # a client that stops reading is dropped past this
OVERLOADED_RETRY_AFTER_S = 1.0
RUNS_PARAMS = {"limit", "offset", "status", "since", "until", "metadata", "text", "full"}


class JobFailed(Exception):
    """A job ended without an answer: sent as its error code with the partial result."""

    def __init__(self, result: JobResult) -> None:
        super().__init__(result.error)
        self.result = result


class Connection:
    def __init__(
        self, server: SocketServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.framer = Framer(server.config.max_request_bytes)
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def send(self, line: bytes) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(line)
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            logger.warning("dropping a client that does not read its responses")
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    async def run(self) -> None:
        idle = self.server.config.idle_timeout_s
        try:
            while not self.closed:
                try:
                    timeout = idle if self.framer.pending else None
                    data = await asyncio.wait_for(self.reader.read(READ_CHUNK), timeout)
                except TimeoutError:
                    logger.info("dropping a client stalled mid-request for {:.0f}s", idle)
                    break
                except ConnectionError:
                    break
                if not data:
                    break
                try:
                    lines = self.framer.feed(data)
                except RequestTooLarge as exc:
                    self.send(encode_exception(None, exc))
                    break
                for line in lines:
                    task = asyncio.create_task(self.handle(line))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
        finally:
            if self.tasks:  # let answers already owed to this client go out first
                await asyncio.wait(set(self.tasks))
            await self._flush_and_close()

    async def finish(self) -> None:
        """Wait for the answers this client is owed, send them, close."""
        if self.tasks:
            await asyncio.wait(set(self.tasks))
        await self._flush_and_close()

    def abort(self) -> None:
        """Drop the connection now, unsent data and all."""
        self.closed = True
        for task in self.tasks:
            task.cancel()
        self.writer.transport.abort()

    async def _flush_and_close(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
        self.close()

    async def handle(self, line: bytes) -> None:
        """Answer one line: a request, or a batch (an array of them) with an array."""
        try:
            data = parse_line(line)
        except ProtocolError as exc:
            self.send(encode_exception(None, exc))
            return
        if not isinstance(data, list):
            response = await self.answer(data)
            if response is not None:
                self.send(encode_response(response))
            return
        if not data:
            self.send(encode_exception(None, ProtocolError("an empty batch")))
            return
        responses = await asyncio.gather(*(self.answer(item) for item in data))
        answered = [r for r in responses if r is not None]
        if answered:  # a batch of notifications only gets nothing back
            self.send(encode_response(answered))

    async def answer(self, data: Any) -> dict[str, Any] | None:
        """The response object for one request (None for a notification). Never raises:
        whatever goes wrong answers this request and nothing else."""
        try:
            request = decode_request(data)
        except ProtocolError as exc:
            return response_exception(request_id_of(exc), exc)
        try:
            response = response_result(request.id, await self.server.dispatch(request, self))
        except JobFailed as failed:
            error = failed.result.error or ErrorInfo(code="internal_error", message="failed")
            rpc = ERRORS_BY_CODE.get(error.code, OrchestratorError).rpc_code
            response = response_error(request.id, rpc, error.message, failed.result.to_dict())
        except OrchestratorError as exc:
            response = response_exception(request.id, exc)
        except Exception as exc:  # a bug answers this request, nothing else
            logger.exception("internal error handling {}", request.method)
            response = response_error(request.id, -32603, f"internal error: {exc!r}")
        return None if request.is_notification else response


class SocketServer:
    def __init__(
        self,
        orch: Orchestrator,
        store: RunStore,
        config: DaemonConfig,
        *,
        on_shutdown: Callable[[], None],
    ) -> None:
        self.orch = orch
        self.store = store
        self.config = config
        self.on_shutdown = on_shutdown
        self.accepting = True
        self.inflight: dict[str, asyncio.Future[Any]] = {}
        self.cancelled: set[str] = set()  # asked to stop before the coordinator had them
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._uid = os.getuid()
        self.methods: dict[str, Callable[[Request, Connection], Awaitable[Any]]] = {
            "ask": self.ask,
            "status": self.status,
            "job": self.job,
            "runs": self.runs,
            "cancel": self.cancel,
            "ping": self.ping,
            "shutdown": self.shutdown,
        }

    async def start(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._on_connect, path=path)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock)
        if uid != self._uid:
            logger.warning("refused a client with uid {} (the daemon runs as {})", uid, self._uid)
            writer.write(encode_error(None, -32600, "refused: peer uid differs from the daemon's"))
            writer.close()
            return
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    async def dispatch(self, request: Request, conn: Connection) -> Any:
        method = self.methods.get(request.method)
        if method is None:
            raise MethodNotFound(f"no method {request.method!r}; known: {sorted(self.methods)}")
        return await method(request, conn)

    # --- methods ------------------------------------------------------------------------

    async def ask(self, request: Request, conn: Connection) -> Any:
        params = ask_params(request.params)
        stream = params.pop("stream")
        job_id = new_id()
        loop = asyncio.get_running_loop()
        listener = self._streamer(loop, conn, request, job_id) if stream else None
        result = await self.run_job(params, listener, job_id=job_id)
        if result.status != "ok":
            raise JobFailed(result)
        return result.to_dict()

    def admit(self) -> None:
        """Raises why a new job cannot start now (shutting down, too many in flight)."""
        if not self.accepting:
            raise ShuttingDown("the daemon is shutting down")
        if len(self.inflight) >= self.config.max_inflight_jobs:
            raise OverloadedError(
                f"{len(self.inflight)} jobs in flight (max_inflight_jobs)",
                data={"retry_after_s": OVERLOADED_RETRY_AFTER_S},
            )

    async def run_job(
        self,
        params: dict[str, Any],
        listener: Callable[[JobEvent], None] | None = None,
        job_id: str | None = None,
    ) -> JobResult:
        """One job from validated ``ask`` params (without ``stream``), recorded in the run
        store when accepted and, before it is returned, when finished: the socket's ``ask``
        and the HTTP front door's. ``listener`` gets the job's events; a caller that needs
        the job's id before it ends (to stream it, to cancel it) names it with ``job_id``.
        A job that cannot start raises its error (recorded too)."""
        self.admit()
        loop = asyncio.get_running_loop()
        job_id = job_id or new_id()
        outcome: asyncio.Future[Any] = loop.create_future()
        self.inflight[job_id] = outcome  # claimed before any await: admission holds
        try:
            options = {k: v for k, v in params.items() if k not in ("prompt", "metadata")}
            await asyncio.wrap_future(
                self.store.accept(job_id, params["prompt"], options, params["metadata"])
            )
            key = self.orch.cache_key(Ask(**params)) if params["deterministic"] else None
            hit = None if key is None else await asyncio.wrap_future(self.store.cached(key))
            if job_id in self.cancelled:  # cancelled while it was being accepted
                strategy = params["strategy"] or self.orch.config.pipeline.strategy
                error = ErrorInfo.of(JobCancelled("cancelled by request"))
                result = JobResult(
                    job_id=job_id, status="cancelled", strategy=strategy, error=error
                )
            elif hit is not None:  # served from the run store: no provider call
                result = hit.with_changes(job_id=job_id, cached=True)
            else:
                self.orch.start_job(
                    Ask(
                        job_id=job_id,
                        **params,
                        reply_to=lambda r: loop.call_soon_threadsafe(_resolve, outcome, r),
                        listener=listener,
                    )
                )
                result = await outcome
        finally:
            self.inflight.pop(job_id, None)
            self.cancelled.discard(job_id)
        if isinstance(result, OrchestratorError):  # the job could not start (bad params)
            strategy = params["strategy"] or self.orch.config.pipeline.strategy
            failed = JobResult(
                job_id=job_id, status="error", strategy=strategy, error=ErrorInfo.of(result)
            )
            await self._record(failed)
            raise result
        if key is not None and result.ok and not result.cached:
            self.store.cache_result(key, job_id)  # committed with (or before) the finish row
        await self._record(result)
        return result

    async def _record(self, result: JobResult) -> None:
        """Write the finish row and wait for its commit: a client is answered only after
        its result is durable. The writer batches, so a burst of results costs one commit."""
        try:
            await asyncio.wrap_future(self.store.finish(result))
        except Exception:  # the answer still goes out; the row stays "running" -> interrupted
            logger.exception("job {}: the run store could not record the result", result.job_id)

    def _streamer(
        self, loop: asyncio.AbstractEventLoop, conn: Connection, request: Request, job_id: str
    ) -> Callable[[JobEvent], None]:
        def send(event: JobEvent) -> None:
            params = {"id": request.id, **event.to_dict(), "job_id": job_id}
            line = encode_notification("event", params)
            loop.call_soon_threadsafe(conn.send, line)

        return send

    async def status(self, request: Request, conn: Connection) -> Any:
        from actors.evaluation.plan import Setup  # what orchestrctl eval plans with

        status = await asyncio.get_running_loop().run_in_executor(None, self.orch.status)
        return {**status, "eval": Setup.of(self.orch.config).to_status()}

    async def job(self, request: Request, conn: Connection) -> Any:
        job_id = job_id_param(request.params)
        record = await asyncio.wrap_future(self.store.record(job_id))
        if record is None:
            raise UnknownJob(f"no job {job_id!r}")
        return record

    async def runs(self, request: Request, conn: Connection) -> Any:
        unknown = set(request.params) - RUNS_PARAMS
        if unknown:
            raise InvalidParams(f"unknown param(s) {sorted(unknown)}; known: {sorted(RUNS_PARAMS)}")
        return {"runs": await asyncio.wrap_future(self.store.runs(request.params))}

    async def cancel(self, request: Request, conn: Connection) -> Any:
        job_id = job_id_param(request.params)
        if self.cancel_job(job_id):
            return {"cancelled": True}
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, self.orch.cancel, job_id):
            return {"cancelled": True}
        if await asyncio.wrap_future(self.store.get(job_id)) is None:
            raise UnknownJob(f"no job {job_id!r}")
        return {"cancelled": False}  # it had already finished

    def cancel_job(self, job_id: str) -> bool:
        """Cancels a job this daemon is still accepting (True), which the coordinator does
        not know yet; a job it knows is told to stop as well. False: not one of ours."""
        if job_id not in self.inflight:
            return False
        self.cancelled.add(job_id)  # run_job checks it just before starting the job
        self.orch.coordinator.tell(CancelJob(job_id=job_id))  # it may have started already
        return True

    async def ping(self, request: Request, conn: Connection) -> Any:
        return "pong"

    async def shutdown(self, request: Request, conn: Connection) -> Any:
        asyncio.get_running_loop().call_soon(self.on_shutdown)
        return {"stopping": True}

    # --- stopping -----------------------------------------------------------------------

    async def drain(self, budget_s: float) -> int:
        """Stop accepting, then wait up to ``budget_s`` for jobs in flight; returns how many
        are still running (the daemon then stops the actors, which answers them)."""
        self.accepting = False
        if self._server is not None:
            self._server.close()
        pending = set(self.inflight.values())
        if pending:
            logger.info("draining {} job(s) for up to {:.0f}s", len(pending), budget_s)
            await asyncio.wait(pending, timeout=budget_s)
        return len(self.inflight)

    async def close(self, budget_s: float = 10.0) -> None:
        """After the actors stopped: let the last answers go out to every client at once,
        within ``budget_s`` in all; then drop the connections still not done (a client
        that does not read its answers cannot hold the daemon up)."""
        pending = set(self.inflight.values())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        if pending:
            await asyncio.wait(pending, timeout=budget_s)
        connections = list(self.connections)
        if connections:
            closing = [asyncio.create_task(conn.finish()) for conn in connections]
            await asyncio.wait(closing, timeout=max(0.0, deadline - loop.time()))
            for task in closing:
                task.cancel()
        for conn in connections:
            conn.abort()


def _resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    if not future.done():
        future.set_result(outcome)
