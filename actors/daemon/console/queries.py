"""What the models and evaluations pages read from the run store: run-store operations
(each takes the store's connection, on its writer thread) that return plain values."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Sequence
from typing import Any

from actors import weights
from actors.daemon.http.models import EVAL_KEY_LEN, system_of

HISTORY_S = 7 * 86400.0  # the models page looks back this far
BUCKETS = 24  # points on each model's chart
MAX_ROWS = 200_000  # replies read at most for the charts (the newest)


def model_history(
    models: Sequence[str], now: float | None = None
) -> Any:  # a run-store operation: (db) -> {model: [bucket, ...]}
    """Per model, over the last ``HISTORY_S`` (from its first reply in that time): the
    calls, p50 latency of ok replies, tokens and spend of each of ``BUCKETS`` spans."""

    def op(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
        end = time.time() if now is None else now
        out: dict[str, list[dict[str, Any]]] = {}
        for model in models:
            rows = db.execute(
                "SELECT finished_at, status, latency_ms, input_tokens, output_tokens, cost_usd "
                "FROM replies WHERE model = ? AND finished_at >= ? "
                "ORDER BY finished_at DESC LIMIT ?",
                (model, end - HISTORY_S, MAX_ROWS),
            ).fetchall()
            out[model] = buckets(rows, end)
        return out

    return op


def buckets(rows: Sequence[tuple[Any, ...]], end: float) -> list[dict[str, Any]]:
    """``rows`` (finished_at, status, latency_ms, in, out, cost) in ``BUCKETS`` equal spans
    from the first row to ``end``."""
    if not rows:
        return []
    start = min(r[0] for r in rows)
    span = max(end - start, 1.0) / BUCKETS
    spans: list[list[tuple[Any, ...]]] = [[] for _ in range(BUCKETS)]
    for row in rows:
        spans[min(BUCKETS - 1, int((row[0] - start) / span))].append(row)
    out = []
    for i, chunk in enumerate(spans):
        latencies = [r[2] for r in chunk if r[1] == "ok" and r[2] is not None]
        out.append(
            {
                "start": start + i * span,
                "calls": len(chunk),
                "p50_latency_ms": statistics.median(latencies) if latencies else None,
                "input_tokens": sum(r[3] or 0 for r in chunk),
                "output_tokens": sum(r[4] or 0 for r in chunk),
                "cost_usd": sum(r[5] or 0.0 for r in chunk),
            }
        )
    return out


def evaluations(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """A run-store operation: every stored evaluation (newest first) as ``{"dataset":
    digest, "name": the dataset's name where known, "last": Unix time, "systems":
    [{"name", "questions", "answered", "graded", "correct", "accuracy",
    "p50_latency_ms", "cost_per_question_usd"}]}``. Accuracy comes from the grades the
    store holds (a single model's jobs carry how to grade them, ``actors.weights``);
    a strategy's answers are stored ungraded (None)."""
    rows = db.execute(
        "SELECT json_extract(metadata, '$.eval'), json_extract(metadata, '$.eval_key'), "
        "options, status, elapsed_ms, cost_usd, accepted_at, metadata, "
        "CASE WHEN json_extract(metadata, '$.eval_grade') IS NOT NULL THEN result END "
        "FROM jobs WHERE json_extract(metadata, '$.eval') IS NOT NULL ORDER BY accepted_at"
    ).fetchall()
    per: dict[str, dict[str, list[tuple[str, float, float, bool | None]]]] = {}
    last: dict[str, float] = {}
    names: dict[str, str] = {}
    for digest, key, options, status, elapsed, cost, accepted, metadata, result in rows:
        if not isinstance(key, str) or len(key) != EVAL_KEY_LEN:
            continue  # a judge's verdict, not an answer
        correct = None
        if result is not None:
            found = weights.grade_of(json.loads(metadata), json.loads(result))
            if found is not None:
                names[str(digest)], correct = found[0], found[3]
        job = (status, elapsed or 0.0, cost or 0.0, correct)
        per.setdefault(str(digest), {}).setdefault(system_of(json.loads(options)), []).append(job)
        last[str(digest)] = accepted
    return [
        {
            "dataset": digest,
            "name": names.get(digest),
            "last": last[digest],
            "systems": [summary(name, jobs) for name, jobs in sorted(per[digest].items())],
        }
        for digest in sorted(per, key=lambda d: -last[d])
    ]


def summary(name: str, jobs: Sequence[tuple[str, float, float, bool | None]]) -> dict[str, Any]:
    """One system's row of an evaluation's table."""
    ok = [j for j in jobs if j[0] == "ok"]
    grades = [j[3] for j in jobs if j[3] is not None]
    return {
        "name": name,
        "questions": len(jobs),
        "answered": len(ok),
        "graded": len(grades),
        "correct": sum(grades),
        "accuracy": sum(grades) / len(grades) if grades else None,
        "p50_latency_ms": statistics.median(j[1] for j in ok) if ok else None,
        "cost_per_question_usd": sum(j[2] for j in jobs) / len(jobs),
    }
