"""What the models and evaluations pages read from the run store: run-store operations
(each takes the store's connection, on its writer thread) that return plain values."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Sequence
from typing import Any

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
    digest, "last": Unix time, "systems": [{"name", "questions", "answered",
    "p50_latency_ms", "cost_per_question_usd"}]}``. The store keeps the answers (the
    grades need the dataset's expected answers, which ``orchestrctl eval`` holds)."""
    rows = db.execute(
        "SELECT json_extract(metadata, '$.eval'), json_extract(metadata, '$.eval_key'), "
        "options, status, elapsed_ms, cost_usd, accepted_at FROM jobs "
        "WHERE json_extract(metadata, '$.eval') IS NOT NULL ORDER BY accepted_at"
    ).fetchall()
    per: dict[str, dict[str, list[tuple[str, float, float]]]] = {}
    last: dict[str, float] = {}
    for digest, key, options, status, elapsed, cost, accepted in rows:
        if not isinstance(key, str) or len(key) != EVAL_KEY_LEN:
            continue  # a judge's verdict, not an answer
        system = system_of(json.loads(options))
        per.setdefault(str(digest), {}).setdefault(system, []).append(
            (status, elapsed or 0.0, cost or 0.0)
        )
        last[str(digest)] = accepted
    out = []
    for digest in sorted(per, key=lambda d: -last[d]):
        systems = []
        for name, jobs in sorted(per[digest].items()):
            ok = [j for j in jobs if j[0] == "ok"]
            systems.append(
                {
                    "name": name,
                    "questions": len(jobs),
                    "answered": len(ok),
                    "p50_latency_ms": statistics.median(j[1] for j in ok) if ok else None,
                    "cost_per_question_usd": sum(j[2] for j in jobs) / len(jobs),
                }
            )
        out.append({"dataset": digest, "last": last[digest], "systems": systems})
    return out
