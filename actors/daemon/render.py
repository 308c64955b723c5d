"""What ``orchestrctl`` shows people (``--json`` prints the daemon's answer instead): the
footer under an answer, the ``status`` headline and table of models, the ``runs`` table.
rich objects, printed by the commands; rich honours ``NO_COLOR``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

STATE_COLOURS = {"up": "green", "restarting": "yellow"}  # any other state: red


def footer(result: dict[str, Any]) -> Text:
    """What the job cost and how sure it is, in one line for stderr (after a line per
    confidence gate that fired)."""
    text = Text(style="dim")
    for gate in result.get("escalations") or ():
        confidence = "none" if gate["confidence"] is None else f"{gate['confidence']:.2f}"
        text.append(
            f"{gate['stage']}: confidence {confidence} below {gate['threshold']:g}, "
            f"on to {gate['to']}\n"
        )
    return text.append(" · ".join(_facts(result)))


def _facts(result: dict[str, Any]) -> list[str]:
    parts = []
    if result.get("pipeline"):
        parts.append(f"pipeline {result['pipeline']}")
    if result.get("synthesizer"):
        parts.append(f"synthesizer {result['synthesizer']}")
    if result.get("confidence") is not None:
        parts.append(f"confidence {result['confidence']:.2f}")
    usage = result.get("usage") or {}
    tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    parts.append(f"{tokens_in + tokens_out:,} tokens ({tokens_in:,} in, {tokens_out:,} out)")
    parts.append(f"${result.get('cost_usd') or 0:.6f}")
    parts.append(f"{result['elapsed_ms'] / 1000:.1f} s")
    if result.get("cached"):
        parts.append("cached")
    return parts


def status_line(status: dict[str, Any]) -> str:
    """The daemon in one line: version, uptime, jobs."""
    return (
        f"orchestrord {status['version']}, up {status['uptime_s']:.0f}s, "
        f"{status['inflight_jobs']} job(s) in flight, {status['jobs_total']} total"
    )


def status_table(models: Iterable[dict[str, Any]]) -> Table:
    """A row per model: its state (coloured), restarts, calls and why it is down."""
    table = Table("model", "provider", "state", "restarts", "inflight", "ok", "failed", "why")
    for m in models:
        table.add_row(
            m["name"],
            m["provider"],
            Text(m["state"], style=STATE_COLOURS.get(m["state"], "red")),
            str(m["restarts"]),
            str(m["inflight"]),
            str(m["calls_ok"]),
            str(m["calls_failed"]),
            m.get("reason") or "",
        )
    return table


def runs_table(runs: Iterable[dict[str, Any]]) -> Table:
    """A row per stored job, as ``runs`` lists them (newest first)."""
    table = Table("job", "created", "status", "strategy", "models", "s", "$", "prompt")
    for run in runs:
        table.add_row(
            run["job_id"],
            run["created"][:19].replace("T", " "),
            run["status"],
            run.get("strategy") or "",
            ",".join(run.get("models") or []),
            f"{(run.get('elapsed_ms') or 0) / 1000:.1f}",
            f"{run.get('cost_usd') or 0:.4f}",
            run.get("prompt_preview") or "",
        )
    return table
