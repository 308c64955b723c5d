"""The HTTP server of one daemon (``FrontDoor``): its routes, and uvicorn on the
daemon's loop. Chat Completions is here; the Responses and Messages doors live in
``responses.py`` and ``anthropic.py``, each exposing ``routes(door) -> list[BaseRoute]``,
which ``FrontDoor`` mounts beside these (``DOOR_MODULES``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import uvicorn
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from actors.config import Config
from actors.daemon.http import core, models
from actors.daemon.http.auth import api_key, authorise
from actors.daemon.http.body import read_json
from actors.daemon.http.errors import (
    HttpError,
    StreamFailed,
    on_http_error,
    on_not_allowed,
    on_not_found,
    on_unexpected,
)
from actors.daemon.http.light import LightTasks
from actors.daemon.http.observe import Observed
from actors.daemon.http.serving import Server, bind, protocol_for
from actors.daemon.http.sse import DONE, HEADERS, KEEPALIVE, data
from actors.daemon.listen import ListenError

# The other doors: each module's ``routes(door) -> list[BaseRoute]`` is mounted (a module,
# or its ``routes``, not written yet is skipped; any other import error stops the daemon).
DOOR_MODULES = (
    "actors.daemon.http.responses",
    "actors.daemon.http.anthropic",
    "actors.daemon.console",  # the web console at / (CONTRACT §14)
)


class FrontDoor:
    """The HTTP server of one daemon: ``start()``, then ``stop_accepting()`` and
    ``wait()``; streams end within the drain budget."""

    def __init__(self, server: Any, config: Config, environ: Mapping[str, str]) -> None:
        self.server = server  # the SocketServer: its run_job, admission and run store
        self.config = config
        self.key, self.key_source = api_key(config, environ)
        self.light = LightTasks(config.http.light_model, config.http.light_patterns)
        self.app = Starlette(
            routes=[*self.routes(), *extra_routes(self)],
            exception_handlers={
                404: on_not_found,
                405: on_not_allowed,
                HttpError: on_http_error,
                Exception: on_unexpected,
            },
        )
        host, port = config.http.address
        self.uvicorn = Server(
            uvicorn.Config(
                Observed(self.app, server.orch.metrics),  # durations, time to first token
                host=host,
                port=port,
                http=protocol_for(config.http.header_timeout_s),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=max(1, round(config.daemon.drain_s)),
            )
        )
        self.task: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz),
            Route("/v1/models", self.models),
            Route("/v1/models/{model_id:path}", self.model),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/metrics", self.metrics),
        ]

    # --- what every door uses ----------------------------------------------------------

    def authorise(self, request: Request, *, x_api_key: bool = False) -> None:
        authorise(request, self.key, x_api_key=x_api_key)

    async def read_json(self, request: Request) -> dict[str, Any]:
        limit = self.config.daemon.max_request_bytes
        return await read_json(request, limit, self.config.http.body_timeout_s)

    # --- serving ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind (a ``ListenError`` saying why not), then serve on this loop."""
        host, port = self.config.http.address
        sock = bind(host, port, str(self.config.http.listen))
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
        self.authorise(request)
        stats = await self._evaluation()
        data = [
            models.entry(self.config, n, stats, self._accuracy) for n in models.names(self.config)
        ]
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        self.authorise(request)
        name = request.path_params["model_id"]
        if name not in models.names(self.config):
            raise HttpError(
                404, f"the model {name!r} does not exist", "model_not_found", param="model"
            )
        stats = await self._evaluation()
        return JSONResponse(models.entry(self.config, name, stats, self._accuracy))

    async def _evaluation(self) -> Mapping[str, Any]:
        try:
            return await asyncio.wrap_future(self.server.store.submit(models.newest_evaluation))
        except Exception as exc:  # the list still answers without it
            logger.warning("the run store could not say how the models did: {!r}", exc)
            return {}

    def _accuracy(self, name: str) -> float | None:
        """``name``'s measured accuracy: the graded evaluation answers the daemon has seen
        (read back from the run store at start), else an embedded evaluation's figure."""
        metrics = self.server.orch.metrics
        measured = metrics.accuracy.of(name)
        if measured is not None:
            return measured
        quality = metrics.quality(name)
        return quality.eval_correct / quality.eval_n if quality.eval_n else None

    async def metrics(self, request: Request) -> Response:
        self.authorise(request)
        from prometheus_client import CONTENT_TYPE_LATEST

        body = self.server.orch.metrics.telemetry.exposition()  # no _created series
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def chat(self, request: Request) -> Response:
        self.authorise(request)
        body = await self.read_json(request)
        if body.get("stream") is not True:
            return JSONResponse(await core.complete(self, body, headers=request.headers))
        items = await core.chunks(self, body, headers=request.headers)
        return StreamingResponse(sse(items), media_type="text/event-stream", headers=HEADERS)


async def sse(items: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[str]:
    """Chat chunks as server-sent events: keep-alive comments, ``data:`` events, then
    ``[DONE]``; a failure after the start is a last ``data:`` event with OpenAI's error
    body (what openai-python raises as ``APIError``)."""
    try:
        async for item in items:
            yield KEEPALIVE if item is None else data(item)
    except StreamFailed as exc:
        yield exc.event()
        return
    yield DONE


def extra_routes(door: FrontDoor) -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for name in DOOR_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        routes = getattr(module, "routes", None)  # a door whose routes are not written yet
        if routes is not None:
            out.extend(routes(door))
    return out
