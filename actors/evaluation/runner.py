"""Running an evaluation: every (question, system, sample) job once, resumable.

Each job carries ``metadata = {"eval": <dataset digest>, "eval_key": <job key>}``, so the
run store keeps its answer; a later run of the same dataset first reads the stored
answers and asks only for what is missing (``fresh`` ignores them). Jobs go out through a
``Backend`` (the daemon's socket, or an embedded orchestrator) from ``concurrency`` worker
threads; this is a client, not an actor, so its threads may wait. A ``max_cost`` stops
new jobs once that much has been spent; the report then says how many questions it covers.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.evaluation import graders
from actors.evaluation.answers import Answers, Progress, system_answer
from actors.evaluation.dataset import Dataset, Item
from actors.evaluation.plan import EVAL_TAG, Setup, System, job_key, job_params
from actors.weights import GRADE_KEY
from messages.errors import BudgetExhausted, RoundError, SchemaError

# A stored job that needs no new call: an answer, or a failure that is the system's own
# (no round could agree, the schema was not met, the budget ran out). A failure of the
# moment (no model up, a crash, a timeout, a shutdown) is asked again by the next run.
FINAL_ERRORS = frozenset(cls.code for cls in (RoundError, SchemaError, BudgetExhausted))


def final(record: dict[str, Any]) -> bool:
    if record.get("status") == "ok":
        return True
    error = record.get("error") or {}
    return record.get("status") == "error" and error.get("code") in FINAL_ERRORS


class EvalAbort(Exception):
    """The evaluation cannot go on (bad params, no daemon): nothing more is asked."""


OVERLOAD_RETRIES = 100  # a full orchestrator is asked again this often, as it says when
PAGE = 1000  # stored jobs read at a time


class Overloaded(Exception):
    """The orchestrator is full right now: ask again in ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"overloaded: retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Backend(Protocol):
    def ask(self, params: dict[str, Any]) -> dict[str, Any]:
        """Run one job; its result as the socket returns it (failed jobs too). Raises
        ``Overloaded`` when the orchestrator has no room, ``EvalAbort`` when it cannot go on."""
        ...

    def page(self, digest: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """Stored jobs of this dataset, newest first (``job`` records with metadata)."""
        ...


def ask(backend: Backend, params: dict[str, Any]) -> dict[str, Any]:
    """One job through ``backend``, waiting out an overloaded orchestrator (a worker
    thread of this client waits; no actor does)."""
    for _ in range(OVERLOAD_RETRIES):
        try:
            return backend.ask(params)
        except Overloaded as exc:
            time.sleep(max(0.05, min(exc.retry_after_s, 30.0)))
    raise EvalAbort("the orchestrator stayed overloaded")


def stored_records(backend: Backend, digest: str) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = backend.page(digest, offset, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        offset += len(page)


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    system: System
    item: Item
    sample: int
    key: str
    params: dict[str, Any]


def tasks(setup: Setup, dataset: Dataset, chosen: Sequence[System]) -> list[Task]:
    out = []
    for item in dataset.items:
        for system in chosen:
            for sample in range(system.samples(setup)):
                key = job_key(dataset.digest, system, item, sample, setup.fingerprint(system))
                params = job_params(system, item, sample)
                params["metadata"] = {EVAL_TAG: dataset.digest, "eval_key": key}
                if system.kind == "model" and item.grader.name != "judge":
                    params["metadata"][GRADE_KEY] = grading(dataset, item)
                out.append(Task(system=system, item=item, sample=sample, key=key, params=params))
    return out


def grading(dataset: Dataset, item: Item) -> dict[str, Any]:
    """How the orchestrator can grade a single model's answer to ``item`` itself (its
    measured accuracy weighs its answers in a weighted vote: ``actors.weights``)."""
    grader = item.grader
    return {
        "dataset": dataset.name,
        "item": item.id,
        "grader": grader.name,
        "answers": list(item.answers),
        **({"pattern": grader.pattern} if grader.pattern else {}),
        **({"tolerance": grader.tolerance} if grader.name == "numeric" else {}),
    }


def stored_answers(backend: Backend, dataset: Dataset) -> dict[str, dict[str, Any]]:
    """The run store's finished jobs of this dataset, by job key (the newest of each)."""
    stored: dict[str, dict[str, Any]] = {}
    for record in stored_records(backend, dataset.digest):
        key = (record.get("metadata") or {}).get("eval_key")
        if isinstance(key, str) and key not in stored and final(record):
            stored[key] = record
    return stored


def run(
    backend: Backend,
    setup: Setup,
    dataset: Dataset,
    chosen: Sequence[System],
    *,
    concurrency: int = 4,
    fresh: bool = False,
    judge: str | None = None,
    max_cost: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stored: dict[str, dict[str, Any]] | None = None,
) -> tuple[Answers, Progress]:
    """Every job of ``chosen`` on ``dataset``, reusing ``stored`` answers (read from the
    backend unless given; none with ``fresh``), then the judges' verdicts."""
    todo = tasks(setup, dataset, chosen)
    if fresh:
        stored = {}
    elif stored is None:
        stored = stored_answers(backend, dataset)
    answers = Answers()
    progress = Progress(total=len(todo))
    missing = _reuse(todo, stored, answers, progress)
    if on_progress is not None:
        on_progress(progress)

    def answered(task: Task, result: dict[str, Any]) -> None:
        answers.results[(task.system.name, task.item.id, task.sample)] = result
        progress.spent_usd += float(result.get("cost_usd") or 0.0)

    pool = (backend, concurrency, max_cost, progress, on_progress)
    _pool(backend, missing, answered, *pool[1:])
    _judge(setup, dataset, chosen, answers, judge, stored, pool)
    return answers, progress


def _reuse(
    todo: Sequence[Task],
    stored: dict[str, dict[str, Any]],
    answers: Answers,
    progress: Progress,
) -> list[Task]:
    """Take the stored answers of ``todo`` (counted as reused); the tasks left to ask."""
    missing = []
    for task in todo:
        if task.key in stored:
            answers.results[(task.system.name, task.item.id, task.sample)] = stored[task.key]
            progress.done += 1
            progress.reused += 1
        else:
            missing.append(task)
    return missing


def _judge(
    setup: Setup,
    dataset: Dataset,
    chosen: Sequence[System],
    answers: Answers,
    judge: str | None,
    stored: dict[str, dict[str, Any]],
    pool: tuple[Any, ...],
) -> None:
    """The judges' verdicts on what needs one: stored ones reused, the rest asked."""
    backend, concurrency, max_cost, progress, on_progress = pool
    judged = _judge_tasks(setup, dataset, chosen, answers, judge)
    progress.total += len(judged)
    for task, verdict_key in judged:
        if task.key in stored:
            _record_verdict(answers, verdict_key, stored[task.key])
            progress.done += 1
            progress.reused += 1
    missing_judged = [(t, k) for t, k in judged if t.key not in stored]
    by_key = {t.key: k for t, k in missing_judged}

    def judged_one(task: Task, result: dict[str, Any]) -> None:
        _record_verdict(answers, by_key[task.key], result)
        progress.spent_usd += float(result.get("cost_usd") or 0.0)

    todo = [t for t, _ in missing_judged]
    _pool(backend, todo, judged_one, concurrency, max_cost, progress, on_progress)


def _pool(
    backend: Backend,
    todo: list[Task],
    done: Callable[[Task, dict[str, Any]], None],
    concurrency: int,
    max_cost: float | None,
    progress: Progress,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Run ``todo`` on ``concurrency`` threads, never starting one past ``max_cost``."""
    if not todo:
        return
    lock = threading.Lock()
    pending = iter(todo)
    with cf.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval") as pool:
        running: dict[cf.Future[dict[str, Any]], Task] = {}

        def fill() -> None:
            while len(running) < concurrency:
                if max_cost is not None and progress.spent_usd >= max_cost:
                    progress.stopped = progress.stopped or next(pending, None) is not None
                    return
                task = next(pending, None)
                if task is None:
                    return
                running[pool.submit(ask, backend, task.params)] = task

        fill()
        try:
            while running:
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    task = running.pop(future)
                    result = future.result()  # EvalAbort propagates: stop asking
                    with lock:
                        done(task, result)
                        progress.done += 1
                    if on_progress is not None:
                        on_progress(progress)
                fill()
        except BaseException:
            for future in running:
                future.cancel()
            raise


def _judge_tasks(
    setup: Setup,
    dataset: Dataset,
    chosen: Sequence[System],
    answers: Answers,
    judge: str | None,
) -> list[tuple[Task, tuple[str, str]]]:
    """One judge job per distinct (question, answer) the ``judge`` grader must grade."""
    out: list[tuple[Task, tuple[str, str]]] = []
    seen: set[tuple[str, str]] = set()
    default_judge = judge or setup.model_names[0]
    for item in dataset.items:
        if item.grader.name != "judge":
            continue
        model = item.judge or default_judge
        if model not in setup.model_names:
            raise EvalAbort(f"item {item.id}: no model named {model!r} to judge with")
        for system in chosen:
            if system.kind == "oracle":
                continue
            answer = system_answer(setup, system, item, answers)
            if answer is None or (item.id, answer) in seen:
                continue
            seen.add((item.id, answer))
            judge_system = System(name=f"judge:{model}", kind="model", model=model)
            fingerprint = setup.fingerprint(judge_system)
            key = job_key(dataset.digest, judge_system, item, 0, fingerprint) + _digest(answer)
            params = {
                "prompt": graders.judge_prompt(item.prompt, item.answers, answer),
                "models": [model],
                "rounds": ["initial"],
                "temperature": 0.0,
                "metadata": {EVAL_TAG: dataset.digest, "eval_key": key},
            }
            task = Task(system=judge_system, item=item, sample=0, key=key, params=params)
            out.append((task, (item.id, answer)))
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:8]


def _record_verdict(answers: Answers, key: tuple[str, str], result: dict[str, Any]) -> None:
    answers.verdicts[key] = graders.judge_verdict(
        result.get("answer") if result.get("status") == "ok" else None
    )
    answers.judge_costs[key] = float(result.get("cost_usd") or 0.0)
