"""What an evaluation has gathered so far: every job's result, the judges' verdicts, the
progress, and the answer each system gave to a question. Running (``runner``) fills it,
scoring (``score``) reads it; neither imports the other."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from actors.evaluation.dataset import Item
from actors.evaluation.plan import Setup, System


@dataclass(slots=True)
class Progress:
    total: int = 0
    done: int = 0
    reused: int = 0
    spent_usd: float = 0.0
    stopped: bool = False  # max_cost reached: jobs were left out


@dataclass(slots=True)
class Answers:
    """Every job's result by (system name, item id, sample), and judges' verdicts by
    (item id, answer text)."""

    results: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], bool] = field(default_factory=dict)
    judge_costs: dict[tuple[str, str], float] = field(default_factory=dict)


def answer_of(result: dict[str, Any]) -> str | None:
    """A job's answer (None unless it succeeded)."""
    return result.get("answer") if result.get("status") == "ok" else None


def system_answer(setup: Setup, system: System, item: Item, answers: Answers) -> str | None:
    """The answer ``system`` gave to ``item`` (None: none, or not run); ``self`` votes
    its samples by the grader's key (ties: the earliest sample's answer)."""
    if system.kind == "self":
        texts = []
        for sample in range(system.samples(setup)):
            result = answers.results.get((system.name, item.id, sample))
            if result is None:
                return None
            texts.append(answer_of(result))
        return _most_common(item, texts)
    result = answers.results.get((system.name, item.id, 0))
    return None if result is None else answer_of(result)


def _most_common(item: Item, texts: list[str | None]) -> str | None:
    """The answer whose grader key is the most frequent (ties: the earliest)."""
    keyed = [(item.grader.key(t), t) for t in texts if t is not None]
    keyed = [(k, t) for k, t in keyed if k is not None]
    if not keyed:
        return None
    counts = Counter(k for k, _ in keyed)
    best = max(counts.values())
    winner = next(k for k, _ in keyed if counts[k] == best)
    return next(t for k, t in keyed if k == winner)
