"""``orchestrctl eval DATASET.jsonl``: score systems on a dataset through the daemon.

It shows what it is about to spend (calls, and at most how many USD) and asks first
unless ``--yes`` (without a terminal it never waits: it stops, saying to pass ``--yes``).
Answers are kept in the daemon's run store, so an interrupted or repeated run asks only
for what is missing; ``--fresh`` asks again. The report recommends (the Pareto frontier,
the cheapest system as good as the best); ``--apply SYSTEM`` (or ``recommended``) then
writes that system into the configuration file as the default pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actors.daemon.connection import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Client, RpcError
from messages.errors import (
    BudgetExhausted,
    JobCancelled,
    JobTimeoutError,
    NoModelAvailable,
    OverloadedError,
    RoundError,
    SchemaError,
)

if TYPE_CHECKING:  # the evaluation is imported by the eval command only (see cmd_eval)
    from actors.evaluation.answers import Answers
    from actors.evaluation.answers import Progress as RunProgress
    from actors.evaluation.dataset import Dataset
    from actors.evaluation.plan import Setup, System

# The job ran and failed: for an evaluation, a wrong answer (anything else stops it).
JOB_FAILED = frozenset(
    cls.rpc_code
    for cls in (
        NoModelAvailable,
        JobTimeoutError,
        JobCancelled,
        RoundError,
        SchemaError,
        BudgetExhausted,
    )
)
CALL_SLACK_S = 30.0  # a job answers within the daemon's job_timeout_s; the socket waits this more


class SocketBackend:
    """The daemon, one connection per worker thread."""

    def __init__(self, path: str, job_timeout_s: float) -> None:
        self.path = path
        self.timeout = job_timeout_s + CALL_SLACK_S
        self.local = threading.local()
        self.clients: list[Client] = []
        self.lock = threading.Lock()

    def _client(self) -> Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = Client(self.path, timeout=self.timeout)
            with self.lock:
                self.clients.append(client)
        return client

    def ask(self, params: dict[str, Any]) -> dict[str, Any]:
        from actors.evaluation import EvalAbort, Overloaded  # deferred, as in cmd_eval

        try:
            return dict(self._client().call("ask", params))
        except RpcError as exc:
            code, data = exc.error.get("code"), exc.error.get("data")
            if code == OverloadedError.rpc_code:
                raise Overloaded(float((data or {}).get("retry_after_s", 0.5))) from None
            if code in JOB_FAILED:  # the job ran and failed: a wrong answer
                if isinstance(data, dict) and "status" in data:
                    return data
                return {"status": "error", "error": exc.error}
            raise EvalAbort(str(exc)) from None

    def page(self, digest: str, offset: int, limit: int) -> list[dict[str, Any]]:
        from actors.evaluation.plan import EVAL_TAG  # deferred, as in cmd_eval

        params = {"metadata": {EVAL_TAG: digest}, "full": True, "limit": limit, "offset": offset}
        return list(self._client().call("runs", params)["runs"])

    def close(self) -> None:
        for client in self.clients:
            client.close()


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="score models, strategies and pipelines on a dataset (JSON lines)",
        description="Score systems on the same questions: accuracy with 95% intervals, cost, "
        "latency, and each system against the best single model (difference, paired-"
        "bootstrap interval, exact McNemar p). Systems: a model's name, synthesize, vote, "
        "rank, a named pipeline, self:MODEL, oracle (default: every model, the three "
        "strategies, oracle).",
    )
    p.add_argument("dataset", help="a .jsonl file: one {id, prompt, answer, grader} per line")
    p.add_argument("--systems", metavar="LIST", help="comma-separated systems")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", metavar="DIR", help="write report.md and accuracy.png here")
    p.add_argument("--concurrency", type=int, default=4, metavar="N", help="jobs at once (4)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    p.add_argument("--fresh", action="store_true", help="ask again; ignore stored answers")
    p.add_argument("--yes", action="store_true", help="do not ask before spending")
    p.add_argument("--max-cost", type=float, metavar="USD", help="start no job past this spend")
    p.add_argument("--judge", metavar="MODEL", help="the model grading 'judge' questions")
    p.add_argument(
        "--apply",
        metavar="SYSTEM",
        help="make SYSTEM (an evaluated one, or 'recommended') the default pipeline in the "
        "configuration file (a backup is kept), or print the TOML to paste",
    )
    p.add_argument(
        "--config", metavar="PATH", help="the file --apply edits (default: where orchestrord looks)"
    )
    p.set_defaults(run=cmd_eval)


def cmd_eval(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    # Deferred to this command: the evaluation loads the strategies and loguru (about
    # 160 ms), which every other orchestrctl command starts without.
    from actors import evaluation
    from actors.evaluation import plan

    if args.concurrency < 1 or (args.limit is not None and args.limit < 1):
        err.print("orchestrctl eval: --concurrency and --limit must be at least 1")
        return EXIT_USAGE
    if args.max_cost is not None and not args.max_cost > 0:
        err.print("orchestrctl eval: --max-cost must be a positive number")
        return EXIT_USAGE
    try:
        dataset, setup, chosen = _plan(client, args)
    except (evaluation.DatasetError, plan.PlanError) as exc:
        err.print(f"orchestrctl eval: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    backend = SocketBackend(client.path, setup.job_timeout_s)
    try:
        asked = _ask(backend, args, setup, dataset, chosen, err)
    except evaluation.EvalAbort as exc:
        err.print(f"orchestrctl eval: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    finally:
        backend.close()
    if asked is None:  # not confirmed
        return EXIT_USAGE
    answers, done = asked
    result = evaluation.report(setup, dataset, chosen, answers, done)
    _show(args, result, out, err)
    if done.stopped:
        err.print("stopped at --max-cost: not every question was asked of every system")
        return EXIT_FAILED
    if args.apply is not None:
        return _apply(args, setup, chosen, result, out, err)
    return EXIT_OK


def _plan(client: Client, args: argparse.Namespace) -> tuple[Dataset, Setup, tuple[System, ...]]:
    """The questions, the daemon's setup and the systems to score; a usage error raises
    ``DatasetError`` or ``PlanError``."""
    from actors import evaluation  # deferred, as in cmd_eval
    from actors.evaluation import plan

    dataset = evaluation.load(args.dataset).limited(args.limit)
    setup = plan.Setup.from_status(client.call("status"))
    names = [n for n in args.systems.split(",") if n] if args.systems else None
    chosen = plan.systems(setup, names)
    if args.judge is not None and args.judge not in setup.model_names:
        raise plan.PlanError(f"--judge: no model named {args.judge!r}")
    runnable = [s.name for s in chosen if not s.hidden and s.kind != "oracle"]
    if args.apply is not None and args.apply not in ("recommended", *runnable):
        raise plan.PlanError(
            f"--apply: {args.apply!r} is not an evaluated system (one of "
            f"{', '.join(runnable)}, or recommended)"
        )
    return dataset, setup, chosen


def _ask(
    backend: SocketBackend,
    args: argparse.Namespace,
    setup: Setup,
    dataset: Dataset,
    chosen: tuple[System, ...],
    err: Console,
) -> tuple[Answers, RunProgress] | None:
    """What is about to be spent, then (once confirmed) every job not answered before,
    with a progress bar. None: not confirmed."""
    from actors.evaluation import plan, runner  # deferred, as in cmd_eval

    stored = {} if args.fresh else runner.stored_answers(backend, dataset)
    jobs = [t for t in runner.tasks(setup, dataset, chosen) if t.key not in stored]
    calls, usd = plan.estimate(setup, [(t.system, t.item) for t in jobs])
    visible = [s.name for s in chosen if not s.hidden]
    err.print(
        f"eval {dataset.name}: {len(dataset.items)} questions x {len(visible)} systems "
        f"({', '.join(visible)}): {calls:,} calls to make"
        + (f" ({len(stored)} jobs answered before)" if stored else "")
        + f", at most ${usd:.4f}"
        + (f"; stops at ${args.max_cost:g}" if args.max_cost is not None else ""),
        markup=False,
        highlight=False,
    )
    if usd > 0 and not args.yes and not _confirmed(err):
        return None
    with _progress_bar(err) as bar:
        task = bar.add_task("asking", total=max(1, len(jobs)))

        def progress(p: RunProgress) -> None:
            bar.update(task, total=max(1, p.total - p.reused), completed=p.done - p.reused)
            bar.update(task, description=f"asking · ${p.spent_usd:.4f}")

        return runner.run(
            backend,
            setup,
            dataset,
            chosen,
            concurrency=args.concurrency,
            fresh=args.fresh,
            judge=args.judge,
            max_cost=args.max_cost,
            on_progress=progress,
            stored=stored,
        )


def _show(args: argparse.Namespace, result: dict[str, Any], out: Console, err: Console) -> None:
    """The report: into ``--out`` (report.md, the plot), then as JSON or as tables."""
    from actors.evaluation import output  # deferred, as in cmd_eval

    if args.out:
        command = "orchestrctl " + shlex.join(sys.argv[1:]) if sys.argv else "orchestrctl eval"
        for path in output.write(result, Path(args.out), command):
            err.print(f"wrote {path}", markup=False, highlight=False)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(out, result)


def _apply(
    args: argparse.Namespace,
    setup: Any,
    chosen: Any,
    result: dict[str, Any],
    out: Console,
    err: Console,
) -> int:
    """``--apply``: the system into the configuration file, or the TOML to paste."""
    from actors.daemon.defaults import config_path
    from actors.evaluation import apply

    name = result.get("recommended") if args.apply == "recommended" else args.apply
    system = next((s for s in chosen if s.name == name), None)
    if system is None:
        err.print("orchestrctl eval --apply: nothing to recommend (no system answered)")
        return EXIT_FAILED
    try:
        change = apply.change_for(setup, system)
    except apply.ApplyError as exc:
        err.print(f"orchestrctl eval --apply: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    done = apply.apply(config_path(args.config, os.environ), change)
    if done.written is None:
        err.print(
            f"{name}: {done.why}; paste this into the configuration file:",
            markup=False,
            highlight=False,
        )
        (err if args.json else out).print(done.toml, markup=False, highlight=False, end="")
        return EXIT_OK
    err.print(
        f"{name} is the default pipeline in {done.written} (the old file: {done.backup}); "
        "reload the daemon to use it (SIGHUP, or systemctl reload orchestrord)",
        markup=False,
        highlight=False,
    )
    return EXIT_OK


def _confirmed(err: Console) -> bool:
    if not sys.stdin.isatty():
        err.print("orchestrctl eval: this spends money; rerun with --yes to go ahead")
        return False
    try:
        answer = input("Go ahead? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _progress_bar(err: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _print(out: Console, result: dict[str, Any]) -> None:
    table = Table("system", "kind", "n", "accuracy", "95% CI", "$", "p50 ms", "calls")
    for s in result["systems"]:
        accuracy = "-" if s["accuracy"] is None else f"{100 * s['accuracy']:.1f}%"
        table.add_row(
            s["name"],
            s["kind"],
            str(s["n"]),
            accuracy,
            f"{100 * s['ci95'][0]:.1f}-{100 * s['ci95'][1]:.1f}%",
            f"{s['cost_usd']:.4f}",
            str(s["latency_ms"]["p50"] or "-"),
            str(s["calls"]),
        )
    out.print(table)
    if result.get("recommendation"):
        advice = result["recommendation"]
        out.print(
            f"frontier (accuracy against cost per question): {', '.join(result['frontier'])}; "
            f"recommended: {advice['system']} ({advice['why']})",
            markup=False,
            highlight=False,
        )
    for c in result["comparisons"]:
        out.print(
            f"{c['system']} vs {c['baseline']}: {100 * c['delta']:+.1f} pts "
            f"[{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}], p = {c['p_value']:.3g}: "
            f"{c['verdict']}",
            markup=False,
            highlight=False,
        )
