"""Asking from the page: the prompt box (``/``), starting a job (``POST /ask``: the
same ``ask`` params the socket takes, admitted and run through ``SocketServer.run_job``
as every door's jobs are), its live events (``/jobs/ID/events``, server-sent) and
cancelling it (``POST /jobs/ID/cancel``)."""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from actors.daemon.console.app import Console
from actors.daemon.console.sessions import Session
from messages.codec import ask_params
from messages.errors import InvalidParams, OrchestratorError
from messages.events import JobEvent

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class Asking:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def server(self) -> Any:
        return self.console.door.server

    def choices(self) -> dict[str, Any]:
        config = self.console.door.config
        return {"pipelines": list(config.pipelines), "models": list(config.model_names)}

    async def form(self, request: Request, session: Session) -> Response:
        return self._form(request, session, {}, None, 200)

    def _form(
        self,
        request: Request,
        session: Session,
        values: dict[str, Any],
        error: str | None,
        status: int,
    ) -> Response:
        body = self.console.render(
            request, "ask.html", session, values=values, error=error, **self.choices()
        )
        return HTMLResponse(body, status)

    async def start(self, request: Request, session: Session) -> Response:
        form = await self.console.form(request)
        values = {
            "prompt": form.get("prompt", ""),
            "system": form.get("system", ""),
            "pipeline": form.get("pipeline", ""),
            "models": [m for m in form.get("models", "").replace(",", " ").split() if m],
        }
        try:
            params = params_of(values, self.choices())
            job_id = self.server.admit()
        except InvalidParams as exc:
            return self._form(request, session, values, str(exc), 400)
        except OrchestratorError as exc:  # overloaded, shutting down
            return self._form(request, session, values, str(exc), 503)
        live = self.console.live.open(job_id)
        loop = asyncio.get_running_loop()

        def listener(event: JobEvent) -> None:  # on the thread that saw it
            loop.call_soon_threadsafe(live.push, event.to_dict())

        task = asyncio.create_task(self._run(params, listener, job_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    async def _run(self, params: dict[str, Any], listener: Any, job_id: str) -> None:
        result: dict[str, Any] = {"job_id": job_id, "status": "error"}
        try:
            result = (await self.server.run_job(params, listener, job_id=job_id)).to_dict()
        except OrchestratorError as exc:
            result["error"] = error_of(exc)
        except Exception as exc:  # a bug ends this job's view, nothing else
            logger.exception("console: job {} failed", job_id)
            result["error"] = error_of(exc)
        finally:  # cancelled too (the daemon stopping): no page waits for ever
            if result["status"] == "error" and "error" not in result:
                result["error"] = {"code": "shutting_down", "message": "the daemon stopped"}
            live = self.console.live.get(job_id)
            if live is not None:
                live.finish(result)

    async def events(self, request: Request, session: Session) -> Response:
        job_id = request.path_params["job_id"]
        live = self.console.live.get(job_id)
        if live is None:  # not started here, or long finished: the job's page has it all
            return Response("no live view of this job", 404, media_type="text/plain")
        after = request.headers.get("last-event-id", "0")
        every = self.console.door.config.http.keepalive_s
        stream = live.follow(int(after) if after.isdigit() else 0, every)
        return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)

    async def cancel(self, request: Request, session: Session) -> Response:
        job_id = request.path_params["job_id"]
        cancelled = self.server.cancel_job(job_id)
        if not cancelled:  # a job of another door, or an embedded one: the coordinator's
            loop = asyncio.get_running_loop()
            cancelled = await loop.run_in_executor(None, self.server.orch.cancel, job_id)
        if request.headers.get("x-csrf-token") is not None:  # the live view's fetch
            return Response(status_code=204 if cancelled else 409)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)


def params_of(values: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """The socket's ``ask`` params from the form (``InvalidParams`` saying what is wrong):
    ``choices`` holds the configured ``pipelines`` and ``models``."""
    if not values["prompt"].strip():
        raise InvalidParams("write a prompt first")
    if values["pipeline"] and values["pipeline"] not in choices["pipelines"]:
        known = ", ".join(choices["pipelines"]) or "none"
        raise InvalidParams(f"no pipeline {values['pipeline']!r} (configured: {known})")
    unknown = [m for m in values["models"] if m not in choices["models"]]
    if unknown:
        known = ", ".join(choices["models"])
        raise InvalidParams(f"no model {', '.join(map(repr, unknown))} (configured: {known})")
    raw: dict[str, Any] = {"prompt": values["prompt"], "metadata": {"source": "console"}}
    if values["system"].strip():
        raw["system"] = values["system"]
    if values["pipeline"]:
        raw["pipeline"] = values["pipeline"]
    if values["models"]:
        raw["models"] = values["models"]
    params = ask_params(raw)
    params.pop("stream")
    return params


def error_of(exc: BaseException) -> dict[str, str]:
    return {"code": getattr(exc, "code", "internal_error"), "message": str(exc)}
