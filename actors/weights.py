"""Weighted votes: what each answer weighs (CONTRACT §16).

- ``"accuracy"``: its model's measured accuracy, from the evaluations in the run store
  (per dataset when the vote names one, else every evaluation together). A model never
  measured weighs the panel's mean of the measured ones; with none measured, every answer
  weighs 1 (a plain vote), and the result says so. Costs no call: it needs an evaluation
  (``orchestrctl eval``), and only helps when the models' accuracies differ.
- ``"confidence"`` (CISC, Taubenfeld et al. 2025): the confidence the answer states
  ("Confidence: 0.8", "confidence 80%"), else the panel's mean. Costs no extra call, a
  few output tokens per answer, and a prompt (a stage ``template``) that asks for it.

``Accuracy`` is the table, one per process (``Metrics.accuracy``): an evaluation's
single-model jobs carry their grading (``eval_grade`` in their metadata), so the
coordinator grades each one as it ends (``learn``) and a daemon reloads them all from the
run store at start (``stored_grades``): one right-or-wrong per (dataset, model, question),
the latest winning, so nothing counts twice.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from actors import strategies

GRADE_KEY = "eval_grade"  # an evaluation job's metadata: how to grade its answer
_CONFIDENCE = re.compile(
    r"confidence\W{0,3}(?:level|score)?\W{0,3}(?:is\s+)?(\d{1,3}(?:\.\d+)?)\s*(%?)", re.IGNORECASE
)


class Accuracy:
    """Measured accuracy per (dataset, model): right or wrong per question (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grades: dict[tuple[str, str], dict[str, bool]] = {}

    def record(self, dataset: str, model: str, item: str, correct: bool) -> None:
        with self._lock:
            self._grades.setdefault((dataset, model), {})[item] = bool(correct)

    def load(self, rows: Iterable[tuple[str, str, str, bool]]) -> None:
        """Grades read back (oldest first: a newer grade of a question replaces it)."""
        for dataset, model, item, correct in rows:
            self.record(dataset, model, item, correct)

    def measured(self, model: str, dataset: str | None = None) -> tuple[int, int]:
        """(right, questions) for ``model`` on ``dataset`` (None: every dataset)."""
        with self._lock:
            tables = [
                grades
                for (name, m), grades in self._grades.items()
                if m == model and (dataset is None or name == dataset)
            ]
            return sum(sum(g.values()) for g in tables), sum(len(g) for g in tables)

    def of(self, model: str, dataset: str | None = None) -> float | None:
        """``model``'s accuracy on ``dataset`` when measured there, else over every
        dataset; None when never measured."""
        for scope in (dataset, None) if dataset is not None else (None,):
            right, n = self.measured(model, scope)
            if n:
                return right / n
        return None


def accuracy_weights(
    keys: Iterable[str], table: Accuracy, dataset: str | None
) -> dict[str, dict[str, Any]]:
    """Each answer's weight (its key: a model, or a model's sample) and where it came
    from: ``measured`` (with ``n``), ``panel mean`` or ``unmeasured`` (all 1)."""
    models = {k: strategies.model_of(k) for k in keys}
    known = {m: table.of(m, dataset) for m in set(models.values())}
    measured = [a for a in known.values() if a is not None]
    mean = sum(measured) / len(measured) if measured else None
    out = {}
    for key, model in models.items():
        value = known[model]
        if value is not None:
            n = table.measured(model, dataset)[1] or table.measured(model)[1]
            out[key] = {"weight": round(value, 4), "source": "measured", "n": n}
        elif mean is not None:
            out[key] = {"weight": round(mean, 4), "source": "panel mean"}
        else:
            out[key] = {"weight": 1.0, "source": "unmeasured"}
    return out


def stated_confidence(text: str) -> float | None:
    """The confidence an answer states, in [0, 1] (its last mention), or None."""
    found = _CONFIDENCE.findall(text[-2000:])
    if not found:
        return None
    number, percent = found[-1]
    value = float(number)
    if percent or value > 1:
        value /= 100
    return value if 0 <= value <= 1 else None


def confidence_weights(answers: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Each answer's stated confidence as its weight; unstated ones weigh the mean."""
    stated = {k: stated_confidence(t) for k, t in answers.items()}
    given = [c for c in stated.values() if c is not None]
    mean = sum(given) / len(given) if given else 1.0
    return {
        k: {"weight": round(c, 4), "source": "stated"}
        if c is not None
        else {"weight": round(mean, 4), "source": "panel mean" if given else "unstated"}
        for k, c in stated.items()
    }


# --- grades: from an evaluation's jobs -----------------------------------------------------


def grade_of(metadata: Mapping[str, Any] | None, result: Mapping[str, Any]) -> Any:
    """(dataset, model, item, correct) of a finished single-model evaluation job whose
    metadata says how to grade it; None for any other job."""
    grade = (metadata or {}).get(GRADE_KEY)
    if not isinstance(grade, Mapping):
        return None
    replies = [r for rnd in result.get("rounds") or () for r in rnd.get("replies") or ()]
    models = {r.get("model") for r in replies}
    if len(models) != 1 or result.get("cached"):
        return None
    from actors.evaluation.graders import GRADERS, Grader  # deferred: evaluation jobs only

    if grade.get("grader") not in GRADERS or grade.get("grader") == "judge":
        return None
    try:
        grader = Grader(
            name=grade["grader"],
            pattern=grade.get("pattern"),
            tolerance=float(grade.get("tolerance", 1e-6)),
        )
        answer = result.get("answer") if result.get("status") == "ok" else None
        correct = grader.correct(answer, tuple(grade["answers"]))
        return str(grade["dataset"]), str(models.pop()), str(grade["item"]), correct
    except (KeyError, TypeError, ValueError):
        return None


def learn(table: Accuracy, metadata: Mapping[str, Any] | None, result: Mapping[str, Any]) -> None:
    """A finished job: if it is a graded evaluation job, its grade goes into ``table``."""
    found = grade_of(metadata, result)
    if found is not None:
        table.record(*found)


def stored_grades(db: sqlite3.Connection) -> list[tuple[str, str, str, bool]]:
    """A run-store operation: every stored evaluation job's grade, oldest first."""
    rows = db.execute(
        "SELECT metadata, result FROM jobs WHERE json_extract(metadata, '$.eval_grade') "
        "IS NOT NULL AND result IS NOT NULL ORDER BY accepted_at, rowid"
    ).fetchall()
    out = []
    for metadata, result in rows:
        found = grade_of(json.loads(metadata), json.loads(result))
        if found is not None:
            out.append(found)
    return out
