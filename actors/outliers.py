"""Outliers: a panelist whose answers are persistently far from all the others.

One bad or deceptive panelist can drag a mixture-of-agents down (its answer is in every
meta prompt and every synthesis). Each finished job with answers from three or more
models says, for each of them, whether its answer stood alone (it agreed with no other
model's answer: a cluster of its own in the agreement map). A model is an **outlier**
when, over its last ``WINDOW`` such jobs (at least ``MIN_JOBS``), it stood alone in at
least ``RATE`` of them and ``MARGIN`` more often than the panel's median model: a panel
that disagrees about everything (weak models on hard questions) flags nobody.

The history survives restarts: the run store keeps every job's agreement map, and a
daemon reads the newest back at start (``stored_clusters``). The agreement map names
the outliers among a job's models (``agreement.outliers``), and a ``meta`` or
``synthesis`` stage with ``exclude_outliers = true`` leaves them out (the result's
``excluded_outliers``), never below ``KEEP`` models.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from actors import strategies

if TYPE_CHECKING:
    from actors.jobs import Job
    from actors.stages.base import Run

WINDOW = 50  # the jobs each model is judged on (the newest)
MIN_JOBS = 10  # fewer: no verdict
RATE = 0.5  # stood alone in at least this share of its jobs
MARGIN = 0.3  # and this much more often than the panel's median model
KEEP = 2  # exclusion never leaves fewer models than this
PANEL = 3  # a job says something about outliers with this many models answering
HISTORY_JOBS = 500  # jobs read back from the run store at start


def alone(clusters: Sequence[Mapping[str, Any]]) -> dict[str, bool] | None:
    """Per model (samples folded into their model), whether its answers agreed with no
    other model's; None when fewer than ``PANEL`` models answered."""
    groups = [{strategies.model_of(m) for m in c.get("models") or ()} for c in clusters]
    models = set().union(*groups) if groups else set()
    if len(models) < PANEL:
        return None
    return {m: all(g == {m} for g in groups if m in g) for m in models}


class Panel:
    """Each model's recent record of standing alone (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[bool]] = {}

    def observe(self, clusters: Sequence[Mapping[str, Any]]) -> None:
        """One job's agreement-map clusters."""
        found = alone(clusters)
        if found is None:
            return
        with self._lock:
            for model, stood_alone in found.items():
                self._seen.setdefault(model, deque(maxlen=WINDOW)).append(stood_alone)

    def load(self, history: Iterable[Sequence[Mapping[str, Any]]]) -> None:
        """Clusters of earlier jobs, oldest first."""
        for clusters in history:
            self.observe(clusters)

    def rates(self) -> dict[str, tuple[float, int]]:
        """Per model: (share of its jobs it stood alone in, jobs)."""
        with self._lock:
            return {m: (sum(s) / len(s), len(s)) for m, s in self._seen.items() if s}

    def flagged(self) -> dict[str, float]:
        """The outliers now, with their rate of standing alone."""
        rates = self.rates()
        judged = {m: r for m, (r, n) in rates.items() if n >= MIN_JOBS}
        if len(judged) < PANEL:
            return {}
        median = statistics.median(judged.values())
        return {m: round(r, 4) for m, r in judged.items() if r >= RATE and r - median >= MARGIN}


def among(panel: Panel, models: Iterable[str]) -> list[str]:
    """The flagged outliers among ``models`` (samples folded)."""
    flagged = panel.flagged()
    return sorted({strategies.model_of(m) for m in models} & set(flagged))


def leave_out(run: Run, job: Job) -> tuple[str, ...]:
    """The outliers a stage with ``exclude_outliers`` leaves out of this job (worst
    first, while at least ``KEEP`` answering models stay), recorded on the job."""
    flagged = run.metrics.panel.flagged()
    answering = list(dict.fromkeys(strategies.model_of(k) for k in job.answers()))
    worst = sorted((m for m in answering if m in flagged), key=lambda m: -flagged[m])
    out = tuple(worst[: max(0, len(answering) - KEEP)])
    if out:
        job.excluded.append(
            {
                "stage": job.stage.kind,
                "step": job.step,
                "models": list(out),
                "rates": {m: flagged[m] for m in out},
            }
        )
    return out


def stored_clusters(db: sqlite3.Connection) -> list[list[dict[str, Any]]]:
    """A run-store operation: the newest ok jobs' agreement clusters, oldest first."""
    rows = db.execute(
        "SELECT json_extract(result, '$.agreement.clusters') FROM jobs WHERE status = 'ok' "
        "AND result IS NOT NULL ORDER BY rowid DESC LIMIT ?",
        (HISTORY_JOBS,),
    ).fetchall()
    return [json.loads(raw) for (raw,) in reversed(rows) if raw]
