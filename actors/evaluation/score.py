"""Scoring: each system's outcome per question, then accuracy, intervals, cost, latency
and the comparisons with the best single model (the ``--json`` shape of CONTRACT §10),
and what the evaluation recommends (``recommend``: CONTRACT §16)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actors.evaluation import recommend, stats
from actors.evaluation.answers import Answers, Progress, system_answer
from actors.evaluation.dataset import Dataset, Item
from actors.evaluation.plan import Setup, System


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    correct: bool
    answer: str | None
    cost_usd: float
    latency_ms: float
    calls: int


def _calls(result: dict[str, Any]) -> int:
    if result.get("cached"):
        return 0
    return sum(
        1
        for rnd in result.get("rounds") or ()
        for reply in rnd.get("replies") or ()
        if reply.get("status") != "skipped"
    )


def outcome(
    setup: Setup, system: System, item: Item, answers: Answers, singles: Sequence[System]
) -> Outcome | None:
    """``system``'s outcome on ``item`` (None: not run, e.g. stopped by max_cost)."""
    if system.kind == "oracle":
        parts = [outcome(setup, s, item, answers, ()) for s in singles]
        if not parts or any(p is None for p in parts):
            return None
        done = [p for p in parts if p is not None]
        return Outcome(
            correct=any(p.correct for p in done),
            answer=None,
            cost_usd=sum(p.cost_usd for p in done),
            latency_ms=max(p.latency_ms for p in done),
            calls=sum(p.calls for p in done),
        )
    results = [
        answers.results.get((system.name, item.id, sample))
        for sample in range(system.samples(setup))
    ]
    if any(r is None for r in results):
        return None
    found = [r for r in results if r is not None]
    answer = system_answer(setup, system, item, answers)
    cost = sum(float(r.get("cost_usd") or 0.0) for r in found)
    if item.grader.name == "judge":
        verdict = answers.verdicts.get((item.id, answer)) if answer is not None else False
        if verdict is None:
            return None  # the judge was not asked (stopped by max_cost)
        correct = verdict
        cost += answers.judge_costs.get((item.id, answer or ""), 0.0)
    else:
        correct = item.grader.correct(answer, item.answers)
    return Outcome(
        correct=correct,
        answer=answer,
        cost_usd=cost,
        latency_ms=max(float(r.get("elapsed_ms") or 0.0) for r in found),
        calls=sum(_calls(r) for r in found),
    )


def _percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 1)


def report(
    setup: Setup,
    dataset: Dataset,
    chosen: Sequence[System],
    answers: Answers,
    progress: Progress | None = None,
) -> dict[str, Any]:
    singles = [s for s in chosen if s.kind == "model"]
    per: dict[str, dict[str, Outcome]] = {}
    for system in chosen:
        per[system.name] = {}
        for item in dataset.items:
            found = outcome(setup, system, item, answers, singles)
            if found is not None:
                per[system.name][item.id] = found
    rows = []
    for system in chosen:
        if system.hidden:
            continue
        done = per[system.name]
        correct = sum(o.correct for o in done.values())
        n = len(done)
        low, high = stats.wilson(correct, n)
        latencies = [o.latency_ms for o in done.values()]
        rows.append(
            {
                "name": system.name,
                "kind": system.kind,
                "n": n,
                "correct": correct,
                "accuracy": round(correct / n, 4) if n else None,
                "ci95": [round(low, 4), round(high, 4)],
                "cost_usd": round(sum(o.cost_usd for o in done.values()), 8),
                "latency_ms": {
                    "p50": _percentile(latencies, 0.5),
                    "p95": _percentile(latencies, 0.95),
                },
                "calls": sum(o.calls for o in done.values()),
            }
        )
    out: dict[str, Any] = {
        "dataset": dataset.name,
        "n": len(dataset.items),
        "systems": rows,
        "comparisons": comparisons(dataset, chosen, per),
        "cost_basis": recommend.cost_basis(rows),
        "frontier": recommend.frontier(rows),
        **recommend.recommend(dataset, rows, per),
        "calls_curve": recommend.calls_curve(setup, dataset, chosen, answers),
    }
    if progress is not None:
        out["reused"] = progress.reused
        out["stopped_by_max_cost"] = progress.stopped
    return out


def best_single(chosen: Sequence[System], per: dict[str, dict[str, Outcome]]) -> str | None:
    """The single model with the highest accuracy (ties: the first configured)."""
    best, best_accuracy = None, -1.0
    for system in chosen:
        if system.kind != "model" or not per[system.name]:
            continue
        done = per[system.name]
        accuracy = sum(o.correct for o in done.values()) / len(done)
        if accuracy > best_accuracy:
            best, best_accuracy = system.name, accuracy
    return best


def comparisons(
    dataset: Dataset, chosen: Sequence[System], per: dict[str, dict[str, Outcome]]
) -> list[dict[str, Any]]:
    baseline = best_single(chosen, per)
    if baseline is None:
        return []
    out = []
    for system in chosen:
        if system.hidden or system.name == baseline:
            continue
        ids = [i.id for i in dataset.items if i.id in per[system.name] and i.id in per[baseline]]
        a = [per[system.name][i].correct for i in ids]
        b = [per[baseline][i].correct for i in ids]
        n = len(ids)
        delta = (sum(a) - sum(b)) / n if n else 0.0
        only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
        only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
        low, high = stats.paired_bootstrap(a, b)
        p_value = stats.mcnemar_exact(only_a, only_b)
        out.append(
            {
                "system": system.name,
                "baseline": baseline,
                "n": n,
                "delta": round(delta, 4),
                "ci95": [round(low, 4), round(high, 4)],
                "p_value": round(p_value, 6),
                "verdict": stats.verdict(delta, (low, high), p_value, n),
            }
        )
    return out
