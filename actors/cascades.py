"""How often each pipeline's gates escalate: a cascade pays when its cheap first step
answers most questions, and these counts say whether it does.

Counted three ways: live in ``status`` (``Escalations``, kept by the coordinator since it
started), in ``/metrics`` (``orchestrord_escalations_total{pipeline,stage}``, via
``Metrics.job_finished``) and over the run store's history (``stored_counts``, a
run-store operation over the results it keeps).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.metrics import Metrics
    from messages.results import JobResult

DEFAULT = "default"  # [pipeline]: the jobs that named no pipeline


class Escalations:
    """Per pipeline: finished jobs, jobs escalated at least once, and the gates that fired
    by stage kind. Owned by the coordinator's thread."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, Any]] = {}

    def count(self, pipeline: str | None, escalations: Iterable[Mapping[str, Any]]) -> None:
        entry = self._counts.setdefault(
            pipeline or DEFAULT, {"jobs": 0, "escalated": 0, "by_stage": {}}
        )
        entry["jobs"] += 1
        fired = [str(e.get("stage")) for e in escalations]
        entry["escalated"] += bool(fired)
        for stage in fired:
            entry["by_stage"][stage] = entry["by_stage"].get(stage, 0) + 1

    def finished(self, metrics: Metrics, result: JobResult, elapsed_s: float) -> None:
        """A job ended: counted here and in ``/metrics`` (its status, rounds, duration
        and the gates that fired, labelled by pipeline)."""
        self.count(result.pipeline, result.escalations)
        metrics.job_finished(
            result.status,
            result.strategy,
            (r.name for r in result.rounds),
            pipeline=result.pipeline or DEFAULT,
            elapsed_s=elapsed_s,
            escalations=[str(e.get("stage")) for e in result.escalations],
        )

    def status(self) -> dict[str, Any]:
        """``status``'s ``escalations``: per pipeline that had a gate to fire, or did."""
        return {"escalations": self.counts()}

    def counts(self) -> dict[str, Any]:
        """A copy of the counts (pipelines whose jobs had a gate to fire, or did)."""
        return {
            name: {**entry, "by_stage": dict(entry["by_stage"])}
            for name, entry in self._counts.items()
            if entry["escalated"] or name != DEFAULT
        }


def stored_counts(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """A run-store operation: the same counts over every finished job it keeps."""
    rows = db.execute(
        "SELECT json_extract(result, '$.pipeline'), json_extract(result, '$.escalations') "
        "FROM jobs WHERE status != 'running' AND result IS NOT NULL"
    ).fetchall()
    counts = Escalations()
    for pipeline, escalations in rows:
        counts.count(pipeline, json.loads(escalations) if escalations else ())
    return counts.counts()
