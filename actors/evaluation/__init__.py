"""Answer quality you can measure: score systems (single models, strategies, named
pipelines, self-consistency, the oracle) on the same questions, with intervals and
paired tests against the best single model (CONTRACT §10).

Embedding::

    import actors
    with actors.start("config.toml") as orch:
        report = actors.evaluate(orch, "eval/datasets/geography.jsonl", systems=["gpt", "vote"])

``orchestrctl eval`` does the same through the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from actors.evaluation import plan
from actors.evaluation.answers import Progress
from actors.evaluation.dataset import Dataset, DatasetError, load
from actors.evaluation.plan import EVAL_TAG, PlanError, Setup, estimate, systems
from actors.evaluation.runner import Backend, EvalAbort, Overloaded, run
from actors.evaluation.score import outcome, report
from messages.errors import InvalidParams, OrchestratorError, OverloadedError

__all__ = [
    "Backend",
    "DatasetError",
    "EvalAbort",
    "Overloaded",
    "PlanError",
    "Setup",
    "estimate",
    "evaluate",
    "load",
    "report",
    "run",
    "systems",
]


class EmbeddedBackend:
    """An embedded orchestrator as the evaluation's backend (resume needs its run store:
    ``[daemon] state_dir`` in the configuration)."""

    def __init__(self, orch: Any) -> None:
        self.orch = orch

    def ask(self, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        prompt = params.pop("prompt")
        try:
            future = self.orch.submit(prompt, **params)
            result = future.get(timeout=self.orch.config.pipeline.job_timeout_s + 30)
        except OverloadedError as exc:
            raise Overloaded(float((exc.data or {}).get("retry_after_s", 0.5))) from None
        except InvalidParams as exc:
            raise EvalAbort(str(exc)) from None
        except OrchestratorError as exc:
            return {"status": "error", "error": {"code": exc.code, "message": str(exc)}}
        return dict(result.to_dict())

    def page(self, digest: str, offset: int, limit: int) -> list[dict[str, Any]]:
        if self.orch.store is None:
            return []
        return self.orch.runs(metadata={EVAL_TAG: digest}, full=True, limit=limit, offset=offset)


def evaluate(
    orch: Any,
    dataset: str | Path | Dataset,
    systems: Sequence[str] | None = None,
    *,
    concurrency: int = 4,
    limit: int | None = None,
    fresh: bool = False,
    judge: str | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Score ``systems`` (default: every model, the three strategies, oracle) on
    ``dataset`` with the embedded orchestrator ``orch``; returns the ``--json`` report."""
    data = dataset if isinstance(dataset, Dataset) else load(dataset)
    data = data.limited(limit)
    setup = Setup.of(orch.config)
    chosen = plan.systems(setup, systems)
    answers, progress = run(
        EmbeddedBackend(orch),
        setup,
        data,
        chosen,
        concurrency=concurrency,
        fresh=fresh,
        judge=judge,
        max_cost=max_cost,
        on_progress=on_progress,
    )
    out = report(setup, data, chosen, answers, progress)
    for row in out["systems"]:  # the auto synthesizer learns from each model's accuracy
        if row["kind"] == "model" and row["n"]:
            orch.metrics.record_eval(row["name"], row["correct"], row["n"])
    for system in chosen:  # and a weighted vote from each answer's grade
        if system.kind != "model" or system.model is None:
            continue
        for item in data.items:
            found = outcome(setup, system, item, answers, ())
            if found is not None and item.grader.name != "judge":
                orch.metrics.accuracy.record(data.name, system.model, item.id, found.correct)
    return out
