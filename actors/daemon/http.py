"""The OpenAI-compatible front door (CONTRACT §9): uvicorn and starlette on the daemon's
own asyncio loop, so any OpenAI client talks to orchestrord unchanged.

- ``POST /v1/chat/completions``: an OpenAI chat request becomes a job (the same path as
  the socket's ``ask``: admission, the run store, the cache). ``model`` picks the
  workflow: ``orchestrord`` (the default pipeline), ``orchestrord/NAME`` (a named pipeline
  or a strategy) or a configured model's name (that model alone, through its actor: its
  limiter, retries and accounting). ``stream: true`` answers with server-sent
  ``chat.completion.chunk`` events as the final answer is written, then ``[DONE]``.
- ``GET /v1/models``, ``GET /metrics`` (Prometheus text), ``GET /healthz`` (no key).
- Every route but ``/healthz`` needs ``Authorization: Bearer KEY``: KEY from the variable
  ``[http] api_key_env`` names, else one made once in ``state_dir/http.key`` (0600).
- Errors are OpenAI's error bodies with its status codes; a client that disconnects
  mid-stream cancels its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from actors.config import STRATEGIES, Config
from actors.daemon.daemon import ListenError
from messages.codec import ask_params, check_value
from messages.commands import new_id
from messages.errors import InvalidParams, OrchestratorError, OverloadedError
from messages.events import JobEvent
from messages.results import JobResult

KEY_FILE = "http.key"
PREFIX = "orchestrord"
STATUS_OF = {  # a failed job's error code -> its HTTP status
    "invalid_params": 400,
    "overloaded": 429,
    "no_model_available": 503,
    "shutting_down": 503,
    "job_timeout": 504,
    "round_failed": 502,
    "schema_failed": 422,
    "budget_exhausted": 402,
    "cancelled": 499,
}
TYPE_OF = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "error": {
                "message": self.message,
                "type": TYPE_OF.get(
                    self.status, "server_error" if self.status >= 500 else "invalid_request_error"
                ),
                "param": None,
                "code": self.code,
            }
        }
        headers = {}
        if "retry_after_s" in self.extra:
            headers["Retry-After"] = str(max(1, round(self.extra["retry_after_s"])))
        if "result" in self.extra:
            body[PREFIX] = self.extra["result"]
        return JSONResponse(body, status_code=self.status, headers=headers)

    @classmethod
    def of(cls, exc: OrchestratorError) -> HttpError:
        """An error raised before the job ran (bad params, overloaded, shutting down)."""
        extra: dict[str, Any] = {}
        if isinstance(exc, OverloadedError):
            extra["retry_after_s"] = float((exc.data or {}).get("retry_after_s", 1.0))
        return cls(STATUS_OF.get(exc.code, 500), exc.message, exc.code, **extra)

    @classmethod
    def failed(cls, result: JobResult) -> HttpError:
        """A job that ran and failed: its error, with the partial result."""
        code = result.error.code if result.error else result.status
        message = result.error.message if result.error else f"the job ended {result.status}"
        return cls(STATUS_OF.get(code, 500), message, code, result=result.to_dict())


def api_key(config: Config, environ: Mapping[str, str]) -> tuple[str, str]:
    """(the key, where it comes from): the variable ``[http] api_key_env`` names, else
    ``state_dir/http.key``, made once (0600, never replaced) when missing."""
    name = config.http.api_key_env
    if environ.get(name):
        return environ[name], f"${name}"
    path = Path(config.daemon.state_dir).expanduser() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return read_key_file(path), str(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return read_key_file(path), str(path)


def read_key_file(path: Path) -> str:
    """The key in ``path``: a regular file of its owner's, readable by nobody else."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path} must be yours and mode 0600")
        key = fh.read().strip()
    if not key:
        raise PermissionError(f"{path} is empty")
    return key


class FrontDoor:
    """The HTTP server of one daemon: ``serve()`` until ``stop()``; streams end within
    the drain budget."""

    def __init__(self, server: Any, config: Config, environ: Mapping[str, str]) -> None:
        self.server = server  # the SocketServer: its run_job, admission and run store
        self.config = config
        self.key, self.key_source = api_key(config, environ)
        self.app = Starlette(
            routes=[
                Route("/healthz", self.healthz),
                Route("/v1/models", self.models),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/metrics", self.metrics),
            ],
            exception_handlers={
                404: _not_found,
                405: _not_allowed,
                HttpError: _http_error,
            },
        )
        host, port = config.http.address
        self.uvicorn = _Server(
            uvicorn.Config(
                self.app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=max(1, round(config.daemon.drain_s)),
            )
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind (a ``ListenError`` saying why not), then serve on this loop."""
        host, port = self.config.http.address
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            raise ListenError(f"cannot listen on {self.config.http.listen}: {exc}") from None
        sock.set_inheritable(True)
        self.task = asyncio.create_task(self.uvicorn.serve(sockets=[sock]))
        ready = asyncio.ensure_future(self.uvicorn.ready.wait())
        await asyncio.wait({ready, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not self.uvicorn.started:
            ready.cancel()
            raise ListenError(f"cannot serve HTTP on {self.config.http.listen}")
        logger.info(
            "HTTP front door on http://{} (key from {})", self.config.http.listen, self.key_source
        )

    def stop_accepting(self) -> None:
        self.uvicorn.should_exit = True

    async def wait(self, timeout: float) -> None:
        if self.task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
            if not self.task.done():
                self.uvicorn.force_exit = True
                self.task.cancel()

    # --- routes -------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        ok = self.server.accepting
        status = 200 if ok else 503
        return JSONResponse({"status": "ok" if ok else "draining"}, status_code=status)

    async def models(self, request: Request) -> Response:
        self._authorise(request)
        names = [PREFIX, *(f"{PREFIX}/{n}" for n in (*self.config.pipelines, *STRATEGIES))]
        names += list(self.config.model_names)
        data = [{"id": n, "object": "model", "created": 0, "owned_by": PREFIX} for n in names]
        return JSONResponse({"object": "list", "data": data})

    async def metrics(self, request: Request) -> Response:
        self._authorise(request)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.server.orch.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def chat(self, request: Request) -> Response:
        try:
            self._authorise(request)
            body = await self._json(request)
            params, model, stream, usage_chunk = self._params(body)
            if stream:
                return self._stream(request, params, model, usage_chunk)
            result = await self.server.run_job(params)
        except HttpError as exc:
            return exc.response()
        except OrchestratorError as exc:
            return HttpError.of(exc).response()
        if not result.ok:
            return HttpError.failed(result).response()
        return JSONResponse(completion(result, model))

    # --- the request ---------------------------------------------------------------------

    def _authorise(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode("utf-8", "surrogateescape")  # any bytes: never a 500
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.key.encode()):
            raise HttpError(
                401, "a valid API key is needed: Authorization: Bearer KEY", "invalid_api_key"
            )

    async def _json(self, request: Request) -> dict[str, Any]:
        limit = self.config.daemon.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"the body is larger than {limit} bytes", "request_too_large")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise HttpError(413, f"the body is larger than {limit} bytes", "request_too_large")
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise HttpError(400, f"the body is not valid JSON: {exc}", "invalid_json") from None
        problem = check_value(body)
        if problem is not None:
            raise HttpError(400, f"the body is not usable: {problem}", "invalid_json")
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object", "invalid_json")
        return body

    def _params(self, body: dict[str, Any]) -> tuple[dict[str, Any], str, bool, bool]:
        """(validated ask params, the model named, stream, usage in a last chunk)."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise HttpError(400, "model is required: orchestrord, orchestrord/NAME or a model")
        params: dict[str, Any] = {"messages": body.get("messages")}
        if model == PREFIX:
            pass
        elif model.startswith(PREFIX + "/"):
            name = model[len(PREFIX) + 1 :]
            if name in self.config.pipelines:
                params["pipeline"] = name
            elif name in STRATEGIES:
                params["strategy"] = name
            else:
                raise HttpError(404, f"no pipeline or strategy {name!r}", "model_not_found")
        elif model in self.config.model_names:
            params.update(models=[model], rounds=["initial"])
        else:
            raise HttpError(404, f"the model {model!r} does not exist", "model_not_found")
        for unsupported in ("tools", "functions", "tool_choice", "audio", "modalities"):
            if body.get(unsupported):
                raise HttpError(400, f"{unsupported} are not supported", "unsupported_parameter")
        if body.get("n") not in (None, 1):
            raise HttpError(400, "n must be 1", "unsupported_parameter")
        tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if tokens is not None:
            params["max_tokens"] = tokens
        if body.get("temperature") is not None:
            params["temperature"] = body["temperature"]
        schema = _schema(body.get("response_format"))
        if schema is not None:
            params["schema"] = schema
        metadata = body.get("metadata")
        if metadata is not None:
            params["metadata"] = metadata
        if isinstance(body.get("user"), str):
            params["metadata"] = {**(params.get("metadata") or {}), "user": body["user"]}
        if body.get("messages") is None:
            raise HttpError(400, "messages is required")
        try:
            validated = ask_params(params)
        except InvalidParams as exc:
            raise HttpError(400, exc.message, "invalid_params") from None
        validated.pop("stream")
        stream = body.get("stream") is True
        options = body.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        return validated, model, stream, usage

    # --- streaming ---------------------------------------------------------------------

    def _stream(
        self, request: Request, params: dict[str, Any], model: str, usage_chunk: bool
    ) -> Response:
        self.server.admit()  # a full or draining daemon answers 429 or 503, not a stream
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[JobEvent] = asyncio.Queue()

        def listener(event: JobEvent) -> None:
            if event.type in ("delta", "reset"):
                loop.call_soon_threadsafe(events.put_nowait, event)

        job_id = new_id()
        job = asyncio.create_task(self.server.run_job(params, listener, job_id=job_id))
        watcher = asyncio.create_task(self._watch(request, job, job_id))
        return StreamingResponse(
            self._chunks(job, watcher, events, job_id, model, usage_chunk),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    async def _watch(self, request: Request, job: asyncio.Task[JobResult], job_id: str) -> None:
        """Cancels the job when the client disconnects. The stream itself would only notice
        at its next write, which a job waiting on a slow model may not make for minutes."""
        while not job.done():
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if not job.done():
                    self.server.cancel_job(job_id)
                return

    async def _chunks(
        self,
        job: asyncio.Task[JobResult],
        watcher: asyncio.Task[None],
        events: asyncio.Queue[JobEvent],
        job_id: str,
        model: str,
        usage_chunk: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())
        chunk_id = f"chatcmpl-{job_id}"

        def chunk(delta: dict[str, Any], finish: str | None = None, extra: Any = None) -> str:
            body = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if extra is not None:
                body[PREFIX] = extra
            return f"data: {json.dumps(body)}\n\n"

        try:
            yield chunk({"role": "assistant", "content": ""})
            async for event in _until_done(events, job):
                if event.type == "reset":  # void: clients that know it start again
                    yield chunk({"content": ""}, None, {"reset": True})
                elif event.text:
                    yield chunk({"content": event.text})
            try:
                result = job.result()
            except OrchestratorError as exc:
                yield _error_event(HttpError.of(exc))
                return
            if not result.ok:
                yield _error_event(HttpError.failed(result))
                return
            yield chunk({}, "stop", result.to_dict())
            if usage_chunk:
                last = {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage(result),
                }
                yield f"data: {json.dumps(last)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            watcher.cancel()
            if not job.done():  # the client went away: the job is cancelled, not paid on
                self.server.cancel_job(job_id)
                job.add_done_callback(_quiet)


async def _until_done(
    events: asyncio.Queue[JobEvent], job: asyncio.Task[JobResult]
) -> AsyncIterator[JobEvent]:
    """The job's events as they come, until it is done and every event is out."""
    while True:
        getter = asyncio.ensure_future(events.get())
        done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            yield getter.result()
            continue
        getter.cancel()
        await asyncio.sleep(0)  # the listener's last call_soon_threadsafe callbacks run
        while not events.empty():
            yield events.get_nowait()
        return


def _quiet(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning


def _error_event(error: HttpError) -> str:
    body = json.loads(bytes(error.response().body))
    return f"data: {json.dumps(body)}\n\n"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _schema(response_format: Any) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` as the job's JSON Schema (None: free text)."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise HttpError(400, "response_format must be an object")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise HttpError(400, "response_format.json_schema.schema must be an object")
        return schema
    raise HttpError(400, f"response_format type {kind!r} is not supported")


def usage(result: JobResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.usage.input_tokens,
        "completion_tokens": result.usage.output_tokens,
        "total_tokens": result.usage.total,
    }


def completion(result: JobResult, model: str) -> dict[str, Any]:
    """A finished job as a ``chat.completion``, with the job result under ``orchestrord``."""
    return {
        "id": f"chatcmpl-{result.job_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer or ""},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(result),
        PREFIX: result.to_dict(),
    }


class _Server(uvicorn.Server):
    """uvicorn on the daemon's loop: the daemon owns the signals (SIGTERM drains)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()  # set once it listens: start() waits on it, no polling

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return exc.response()


async def _not_found(request: Request, exc: Exception) -> Response:
    return HttpError(404, f"no route {request.url.path}", "not_found").response()


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return HttpError(405, f"{request.method} is not allowed on {request.url.path}").response()
