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
import contextvars
import os
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from actors.config import DaemonConfig
from actors.daemon.peercred import peer_uid
from actors.orchestrator import Orchestrator
from actors.store import RunStore
from messages.codec import (
    Framer,
    Request,
    ask_params,
    decode_failure,
    decode_request,
    encode_error,
    encode_exception,
    encode_notification,
    encode_response,
    job_id_param,
    parse_line,
    response_error,
    response_exception,
    response_result,
)
from messages.commands import Ask, CancelJob, new_id
from messages.errors import (
    ERRORS_BY_CODE,
    InvalidParams,
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
RESERVATION_TTL_S = 30.0  # a slot admit() reserved and no run_job() took is freed after this
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
        except ProtocolError as exc:  # None for a notification: never answered
            return decode_failure(data, exc)
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
        self.lifecycle = orch.lifecycle_for(store)  # records, caches and starts the jobs
        self.inflight: dict[str, asyncio.Future[Any]] = {}
        self.reserved: dict[str, asyncio.TimerHandle] = {}  # admitted, run_job not yet called
        self.cancelled: set[str] = set()  # reserved jobs cancelled before run_job
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

    def admit(self, job_id: str | None = None) -> str:
        """Reserve a slot for one job now, or raise why it cannot start (shutting down:
        ``ShuttingDown``; ``max_inflight_jobs`` reached: ``OverloadedError``). A door that
        must answer before the job runs (an HTTP stream's 200) admits first, then calls
        ``run_job``, which takes the slot reserved for its ``job_id``, or, when admit was
        given none, the one reserved from the same asyncio context (a task created after
        the admit inherits it). A slot no ``run_job`` takes is freed after
        ``RESERVATION_TTL_S`` (or at once by ``release``). Returns the reservation's id."""
        self._check_room()
        job_id = job_id or new_id()
        loop = asyncio.get_running_loop()
        self.reserved[job_id] = loop.call_later(RESERVATION_TTL_S, self.release, job_id)
        _RESERVATION.set(job_id)
        return job_id

    def _check_room(self) -> None:
        if not self.accepting:
            raise ShuttingDown("the daemon is shutting down")
        taken = len(self.inflight) + len(self.reserved)
        if taken >= self.config.max_inflight_jobs:
            raise OverloadedError(
                f"{taken} jobs in flight (max_inflight_jobs)",
                data={"retry_after_s": OVERLOADED_RETRY_AFTER_S},
            )

    def release(self, job_id: str) -> None:
        """Free a slot ``admit`` reserved for a job that will not run."""
        handle = self.reserved.pop(job_id, None)
        if handle is not None:
            handle.cancel()
            self.cancelled.discard(job_id)

    def _claim(self, job_id: str | None) -> str:
        """The id of the job about to run, its slot taken: the one reserved for it (or in
        this context), else one with room now. Synchronous: nothing runs between the
        check and the claim."""
        for reserved in (job_id, _RESERVATION.get()):
            if reserved is not None and reserved in self.reserved:
                self.reserved.pop(reserved).cancel()
                if job_id not in (None, reserved) and reserved in self.cancelled:
                    # the context's slot, for a job named after the admit: its cancel too
                    self.cancelled.discard(reserved)
                    self.cancelled.add(job_id)
                return job_id or reserved
        self._check_room()
        return job_id or new_id()

    async def run_job(
        self,
        params: dict[str, Any],
        listener: Callable[[JobEvent], None] | None = None,
        job_id: str | None = None,
    ) -> JobResult:
        """One job from validated ``ask`` params (without ``stream``) through the engine's
        life cycle (``actors.lifecycle``): recorded when accepted and, before it is
        returned, when finished: the socket's ``ask`` and the HTTP front door's.
        ``listener`` gets the job's events; a caller that needs the job's id before it
        ends (to stream it, to cancel it) names it with ``job_id``. A job that cannot
        start raises its error (recorded too); one past ``max_inflight_jobs`` raises
        ``OverloadedError`` unless ``admit`` reserved its slot."""
        job_id = self._claim(job_id)
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Any] = loop.create_future()
        self.inflight[job_id] = outcome  # claimed before any await: admission holds
        try:
            ask = Ask(job_id=job_id, **params, listener=listener)

            def done(result: JobResult | Exception) -> None:  # on the thread that ended it
                loop.call_soon_threadsafe(_resolve, outcome, result)

            self.lifecycle.run(ask, done)
            if job_id in self.cancelled:  # cancelled between its admit and now
                self.cancel_job(job_id)
            result = await outcome
        finally:
            self.inflight.pop(job_id, None)
            self.cancelled.discard(job_id)
        if isinstance(result, Exception):  # it could not start; recorded as failed
            raise result
        return result

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
        """Cancels a job of this daemon (True): one admitted but not run yet, one still
        being accepted (which then never starts), or one the coordinator runs. False:
        not one of ours (or already finished)."""
        if job_id in self.reserved:
            self.cancelled.add(job_id)  # run_job ends it at once
            return True
        if job_id not in self.inflight:
            return False
        if not self.lifecycle.cancel(job_id):  # it has started: the coordinator stops it
            self.orch.coordinator.tell(CancelJob(job_id=job_id))
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


_RESERVATION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "orchestrord_reservation", default=None
)


def _resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    if not future.done():
        future.set_result(outcome)
