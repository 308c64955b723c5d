"""``GET /v1/models`` and ``GET /v1/models/{id}``: every name ``model`` takes, with what
it can do and, where the run store holds an evaluation, how it did.

Each entry is OpenAI's model object plus ``capabilities`` (``tools``, ``streaming``:
``live`` for one model's tokens as written, ``held`` for an ensemble's final answer,
``context_window`` where known: genai-prices' table, or a local model's ``n_ctx``) and
``evaluation``: from the newest evaluation's jobs in the run store (``orchestrctl
eval``), the questions answered, the p50 of their latency and their mean cost, and the
accuracy where this daemon was told it (the store keeps answers, not grades)."""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections.abc import Mapping
from typing import Any

from actors.config import STRATEGIES, Config, ModelConfig
from actors.daemon.http.errors import PREFIX
from actors.prices import TABLE_PROVIDERS
from actors.providers import provider_class

EVAL_KEY_LEN = 24  # an answer's eval_key; a judge's verdict has a longer one


def names(config: Config) -> list[str]:
    """Every model name a request may give, in the order /v1/models lists them."""
    out = [PREFIX, *(f"{PREFIX}/{n}" for n in (*config.pipelines, *STRATEGIES))]
    return out + list(config.model_names)


def entry(config: Config, name: str, stats: Mapping[str, Any], accuracy: Any) -> dict[str, Any]:
    """The model object of ``name`` (a name from ``names``)."""
    single = name in config.model_names
    members = [config.model(name)] if single else list(config.models)
    window = [context_window(m) for m in members]
    known = [w for w in window if w is not None]
    evaluation = stats.get(name)
    if evaluation is not None:
        evaluation = {**evaluation, "accuracy": accuracy(name)}
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": config.model(name).provider if single else PREFIX,
        "capabilities": {
            "tools": any(takes_tools(m) for m in members),
            "streaming": "live" if single else "held",
            "context_window": min(known) if known and len(known) == len(window) else None,
        },
        "evaluation": evaluation,
    }


def takes_tools(model: ModelConfig) -> bool:
    return provider_class(model.provider).tools_supported(model)


def context_window(model: ModelConfig) -> int | None:
    """Tokens the model reads at most, where known."""
    if model.provider == "local":
        return int(model.options.get("n_ctx", 2048))
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # an install without the table
        return None
    provider = TABLE_PROVIDERS.get(model.provider) if model.base_url is None else None
    try:
        found = calc_price(
            Usage(input_tokens=1, output_tokens=1), model.model, provider_id=provider
        )
    except Exception:  # unknown model, or a table that cannot answer
        return None
    window = getattr(found.model, "context_window", None)
    return int(window) if isinstance(window, int) else None


def newest_evaluation(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """A run-store operation: the newest evaluation's answered jobs, per system name
    (``questions``, ``p50_latency_ms``, ``cost_per_question_usd``, ``dataset``)."""
    row = db.execute(
        "SELECT json_extract(metadata, '$.eval') FROM jobs "
        "WHERE json_extract(metadata, '$.eval') IS NOT NULL "
        "ORDER BY accepted_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return {}
    rows = db.execute(
        "SELECT options, elapsed_ms, cost_usd, json_extract(metadata, '$.eval_key') FROM jobs "
        "WHERE json_extract(metadata, '$.eval') = ? AND status = 'ok'",
        (row[0],),
    ).fetchall()
    per: dict[str, list[tuple[float, float]]] = {}
    for options, elapsed, cost, key in rows:
        if isinstance(key, str) and len(key) == EVAL_KEY_LEN:
            per.setdefault(system_of(json.loads(options)), []).append((elapsed or 0.0, cost or 0.0))
    return {
        name: {
            "dataset": row[0],
            "questions": len(jobs),
            "p50_latency_ms": round(statistics.median(e for e, _ in jobs), 1),
            "cost_per_question_usd": sum(c for _, c in jobs) / len(jobs),
        }
        for name, jobs in per.items()
    }


def system_of(options: Mapping[str, Any]) -> str:
    """The model name a stored job's options amount to."""
    if options.get("pipeline"):
        return f"{PREFIX}/{options['pipeline']}"
    models, rounds = options.get("models") or [], options.get("rounds") or []
    if len(models) == 1 and list(rounds) == ["initial"]:
        return str(models[0])
    if options.get("strategy"):
        return f"{PREFIX}/{options['strategy']}"
    return PREFIX
