"""What the evaluation recommends (CONTRACT §16): the Pareto front of accuracy against
cost per question, the cheapest system as good as the best, and, for vote-like systems,
accuracy against the number of calls.

- ``frontier``: the systems no other system beats on both counts (at least as accurate
  and at most as dear, better on one), cheapest first. Cost is USD per question when
  any system cost something; with no prices known (local models) it is calls per
  question, and ``cost_basis`` says which.
- ``recommended``: the best system is the most accurate (ties: the cheaper); the
  recommendation is the cheapest system whose accuracy is not distinguishable from the
  best's by the same paired tests as the comparisons (exact McNemar and the paired
  bootstrap, on the questions both answered). The oracle is a ceiling, never a system.
- ``calls_curve``: for each vote-like system (``self:MODEL``, ``vote``, a pipeline whose
  answers are one ``initial`` round voted), the expected accuracy of a vote over ``k``
  of its stored answers, for every ``k``: a random ``k``-subset's majority by the
  grader's key (a tie counted as a fair draw among the tied), over every subset (or
  ``MAX_SUBSETS`` of them, drawn with a fixed seed). ``worth`` is the smallest ``k``
  within ``WORTH_WITHIN`` of the best: more calls than that buy nothing measurable.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from actors.evaluation import stats

if TYPE_CHECKING:
    from actors.evaluation.answers import Answers
    from actors.evaluation.dataset import Dataset, Item
    from actors.evaluation.plan import Setup, System


class Outcome(Protocol):
    """A system's graded answer to one question (``score.Outcome``: score imports this
    module, so it is named by its shape here)."""

    @property
    def correct(self) -> bool: ...


MAX_SUBSETS = 200  # per question and k
WORTH_WITHIN = 0.01  # a k this close to the best accuracy is worth as much
SUBSET_SEED = 20261206


def _cost(row: Mapping[str, Any], basis: str) -> float:
    n = row["n"] or 1
    return (row["cost_usd"] if basis == "usd" else row["calls"]) / n


def cost_basis(rows: Sequence[Mapping[str, Any]]) -> str:
    """``usd`` when any system cost something, else ``calls`` (no prices known)."""
    return "usd" if any(r["cost_usd"] > 0 for r in rows) else "calls"


def frontier(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Pareto-optimal systems (accuracy up, cost down), cheapest first."""
    basis = cost_basis(rows)
    done = [r for r in rows if r["n"] and r["kind"] != "oracle"]

    def beats(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        ca, cb = _cost(a, basis), _cost(b, basis)
        return (
            a["accuracy"] >= b["accuracy"]
            and ca <= cb
            and (a["accuracy"] > b["accuracy"] or ca < cb)
        )

    front = [r for r in done if not any(beats(o, r) for o in done if o is not r)]
    return [r["name"] for r in sorted(front, key=lambda r: (_cost(r, basis), -r["accuracy"]))]


def recommend(
    dataset: Dataset, rows: Sequence[Mapping[str, Any]], per: Mapping[str, Mapping[str, Outcome]]
) -> dict[str, Any]:
    """``recommended`` (a name, None with nothing run) and why."""
    basis = cost_basis(rows)
    done = [r for r in rows if r["n"] and r["kind"] != "oracle"]
    if not done:
        return {"recommended": None, "recommendation": None}
    best = max(done, key=lambda r: (r["accuracy"], -_cost(r, basis)))
    tested = []
    for row in sorted(done, key=lambda r: (_cost(r, basis), -r["accuracy"])):
        test = paired(dataset, per[row["name"]], per[best["name"]])
        tested.append((row, test))
        if row is best or not test["verdict"].startswith("worse"):
            break
    chosen, test = tested[-1]
    why = (
        "the most accurate system"
        if chosen is best
        else f"not distinguishable from {best['name']} ({test['verdict']}) and cheaper"
    )
    return {
        "recommended": chosen["name"],
        "recommendation": {
            "system": chosen["name"],
            "best": best["name"],
            "accuracy": chosen["accuracy"],
            "best_accuracy": best["accuracy"],
            "cost_per_question": round(_cost(chosen, basis), 8),
            "best_cost_per_question": round(_cost(best, basis), 8),
            "cost_basis": basis,
            "vs_best": None if chosen is best else test,
            "why": why,
        },
    }


def paired(dataset: Dataset, a: Mapping[str, Outcome], b: Mapping[str, Outcome]) -> dict[str, Any]:
    """The comparisons' paired tests of ``a`` against ``b`` on the questions both did."""
    ids = [i.id for i in dataset.items if i.id in a and i.id in b]
    x, y = [a[i].correct for i in ids], [b[i].correct for i in ids]
    n = len(ids)
    delta = (sum(x) - sum(y)) / n if n else 0.0
    only_a = sum(1 for p, q in zip(x, y, strict=True) if p and not q)
    only_b = sum(1 for p, q in zip(x, y, strict=True) if q and not p)
    low, high = stats.paired_bootstrap(x, y)
    p_value = stats.mcnemar_exact(only_a, only_b)
    return {
        "n": n,
        "delta": round(delta, 4),
        "ci95": [round(low, 4), round(high, 4)],
        "p_value": round(p_value, 6),
        "verdict": stats.verdict(delta, (low, high), p_value, n),
    }


# --- accuracy against calls ------------------------------------------------------------------


def panel_answers(setup: Setup, system: System, item: Item, answers: Answers) -> list[str | None]:
    """The answers a vote-like system voted on for ``item`` ([] when it is not one)."""
    if system.kind == "self":
        results = [
            answers.results.get((system.name, item.id, s)) for s in range(system.samples(setup))
        ]
        if any(r is None for r in results):
            return []
        return [r.get("answer") if r.get("status") == "ok" else None for r in results if r]
    result = answers.results.get((system.name, item.id, 0))
    if result is None or not result.get("votes"):
        return []
    rounds = result.get("rounds") or []
    if [r.get("name") for r in rounds] != ["initial"]:
        return []  # more than one round (a cascade, meta): not one vote over samples
    return [r.get("text") if r.get("status") == "ok" else None for r in rounds[0]["replies"]]


def vote_accuracy(item: Item, texts: Sequence[str | None], k: int, rng: random.Random) -> float:
    """Expected correctness of a majority vote over a random ``k`` of ``texts``."""
    keys = [item.grader.key(t) for t in texts]
    right = {key: item.grader.correct(t, item.answers) for key, t in zip(keys, texts, strict=True)}
    combos = math.comb(len(texts), k)
    if combos <= MAX_SUBSETS:
        subsets: Any = itertools.combinations(range(len(texts)), k)
    else:
        subsets = (rng.sample(range(len(texts)), k) for _ in range(MAX_SUBSETS))
    total = count = 0.0
    for subset in subsets:
        votes = Counter(keys[i] for i in subset if keys[i] is not None)
        count += 1
        if not votes:
            continue
        top = max(votes.values())
        tied = [key for key, v in votes.items() if v == top]
        total += sum(right[key] for key in tied) / len(tied)
    return total / count if count else 0.0


def calls_curve(
    setup: Setup, dataset: Dataset, chosen: Sequence[System], answers: Answers
) -> dict[str, dict[str, Any]]:
    """Per vote-like system: [{calls, accuracy}] for each k, and the k worth paying for."""
    out = {}
    rng = random.Random(SUBSET_SEED)
    for system in chosen:
        if system.hidden or system.kind not in ("self", "strategy", "pipeline"):
            continue
        panels = [(item, panel_answers(setup, system, item, answers)) for item in dataset.items]
        sizes = {len(texts) for _, texts in panels if texts}
        if len(sizes) != 1 or not all(texts for _, texts in panels):
            continue  # not vote-like, or panels of different sizes (models down)
        size = sizes.pop()
        points = []
        for k in range(1, size + 1):
            accuracy = sum(vote_accuracy(i, t, k, rng) for i, t in panels) / len(panels)
            points.append({"calls": k, "accuracy": round(accuracy, 4)})
        top = max(p["accuracy"] for p in points)
        worth = next(p["calls"] for p in points if p["accuracy"] >= top - WORTH_WITHIN)
        out[system.name] = {"points": points, "worth": worth}
    return out
