"""The pages that read: the history (``/jobs``, filtered and paged), a job's page and
its JSON export, the models (``/models``) and the stored evaluations (``/evaluations``).
All from the run store and the daemon's own status, nothing from a provider."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from actors.daemon.console import charts, queries
from actors.daemon.console.app import Console, Refused
from actors.daemon.console.sessions import Session
from actors.store.runs import STATUSES
from messages.errors import InvalidParams

PAGE_SIZE = 25
FILTERS = ("status", "text", "metadata", "since", "until")


class Pages:
    def __init__(self, console: Console) -> None:
        self.console = console

    @property
    def server(self) -> Any:
        return self.console.door.server

    async def _store(self, op: Any) -> Any:
        return await asyncio.wrap_future(self.server.store.submit(op))

    # --- the history ----------------------------------------------------------------

    async def history(self, request: Request, session: Session) -> Response:
        values = {k: request.query_params.get(k, "").strip() for k in FILTERS}
        number = request.query_params.get("page", "1")
        page = int(number) if number.isdigit() and int(number) >= 1 else 1
        runs: list[dict[str, Any]] = []
        error, status = None, 200
        try:
            params = runs_params(values)
            params.update(limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
            runs = await asyncio.wrap_future(self.server.store.runs(params))
        except InvalidParams as exc:
            error, status = str(exc), 400
        more = len(runs) > PAGE_SIZE
        body = self.console.render(
            request,
            "jobs.html",
            session,
            runs=runs[:PAGE_SIZE],
            values=values,
            statuses=STATUSES,
            error=error,
            page=page,
            previous=query(values, page - 1) if page > 1 else None,
            next=query(values, page + 1) if more else None,
        )
        return HTMLResponse(body, status)

    # --- one job --------------------------------------------------------------------

    async def _record(self, request: Request) -> dict[str, Any]:
        job_id = request.path_params["job_id"]
        record = await asyncio.wrap_future(self.server.store.record(job_id))
        if record is None:
            raise Refused(404, "There is no such job.")
        return dict(record)

    async def job(self, request: Request, session: Session) -> Response:
        record = await self._record(request)
        live = self.console.live.get(record["job_id"])
        body = self.console.render(
            request,
            "job.html",
            session,
            job=record,
            live=live is not None and not live.done,
            running=record.get("status") == "running",
            share=str(request.url.replace(query="", fragment="")),
        )
        return HTMLResponse(body)

    async def export(self, request: Request, session: Session) -> Response:
        try:
            record = await self._record(request)
        except Refused:
            return JSONResponse({"error": "no such job"}, 404)
        name = f"orchestrord-{record['job_id']}.json"
        return Response(
            json.dumps(record, indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # --- models and evaluations -----------------------------------------------------

    async def models(self, request: Request, session: Session) -> Response:
        door = self.console.door
        orch = self.server.orch
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(None, orch.status)
        names = [m["name"] for m in status["models"]]
        history = await self._store(queries.model_history(names))
        rows = []
        for model in status["models"]:
            name = model["name"]
            config = door.config.model(name)
            points = history.get(name, [])
            rows.append(
                {
                    **model,
                    "config": config,
                    "breaker_open": orch.metrics.stats(name).circuit_open,
                    "waits": limiter_waits(orch, name),
                    "history": points,
                    "chart": charts.line([p["p50_latency_ms"] for p in points]),
                }
            )
        body = self.console.render(request, "models.html", session, models=rows, status=status)
        return HTMLResponse(body)

    async def evaluations(self, request: Request, session: Session) -> Response:
        stored = await self._store(queries.evaluations)
        for evaluation in stored:
            evaluation["plot"] = charts.scatter(
                [
                    (s["name"], s["cost_per_question_usd"], s["accuracy"])
                    for s in evaluation["systems"]
                    if s["accuracy"] is not None
                ]
            )
        body = self.console.render(request, "evaluations.html", session, evaluations=stored)
        return HTMLResponse(body)


def runs_params(values: dict[str, str]) -> dict[str, Any]:
    """The run store's ``runs`` filters from the history's form (``InvalidParams``)."""
    params: dict[str, Any] = {}
    if values["status"]:
        params["status"] = values["status"]
    if values["text"]:
        params["text"] = values["text"]
    for key in ("since", "until"):
        if values[key]:
            params[key] = values[key]
    if values["metadata"]:
        params["metadata"] = metadata_filter(values["metadata"])
    return params


def metadata_filter(text: str) -> dict[str, Any]:
    """``{"k": "v"}`` (JSON), or ``k=v`` pairs separated by commas (a value that is
    JSON, as ``3`` or ``true``, is taken as such)."""
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise InvalidParams("metadata must be a JSON object or key=value pairs") from None
        if not isinstance(value, dict):
            raise InvalidParams("metadata must be a JSON object or key=value pairs")
        return value
    out: dict[str, Any] = {}
    for pair in text.split(","):
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise InvalidParams(f"metadata: {pair.strip()!r} is not key=value")
        try:
            out[key.strip()] = json.loads(raw.strip())
        except ValueError:
            out[key.strip()] = raw.strip()
    return out


def query(values: dict[str, str], page: int) -> str:
    return "?" + urlencode({**{k: v for k, v in values.items() if v}, "page": page})


def limiter_waits(orch: Any, name: str) -> dict[str, float | None]:
    """How many calls of ``name`` waited for its limits, for how long in all, and its
    429s, from the daemon's metrics (None where the metrics cannot say)."""
    try:
        registry = orch.metrics.telemetry.registry
        labels = {"orchestrord_model": name}
        return {
            "count": registry.get_sample_value("orchestrord_limiter_wait_seconds_count", labels),
            "seconds": registry.get_sample_value("orchestrord_limiter_wait_seconds_sum", labels),
            "rate_limited": registry.get_sample_value("orchestrord_rate_limited_total", labels),
        }
    except Exception:  # metrics off or shaped otherwise: the page shows dashes
        return {"count": None, "seconds": None, "rate_limited": None}
