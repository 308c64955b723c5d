"""The run store: every job in ``state_dir/runs.sqlite3`` (SQLite, WAL).

A job is written when accepted (status ``running``) and when finished, with every
reply of every round (prompt, text, latency, usage, cost, error) and its metadata.
All SQL runs on one writer thread that batches queued operations into one
transaction, so the actors never touch the disk and a burst of jobs costs a few
commits. Reads go through the same queue (read-your-writes). ``accept`` returns a
future the job's life cycle (``actors.lifecycle``) waits on before starting the job:
an accepted job is on disk. Each round is kept as it ends (``progress``), so at open,
jobs left ``running`` by a dead daemon are marked ``interrupted`` with the rounds they
had finished. A file that is not a readable SQLite database raises ``StoreUnreadable``
and is left as it is.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from loguru import logger

from actors.store import runs, schema
from actors.store.schema import StoreUnreadable
from messages.errors import JobInterrupted
from messages.results import ErrorInfo, JobResult

BATCH = 512
Op = Callable[[sqlite3.Connection], Any]
INSERT_REPLY = "INSERT INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class RunStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._queue: queue.SimpleQueue[tuple[Op, Future[Any]] | None] = queue.SimpleQueue()
        schema.check_file(self.path)  # before SQLite may write to a file it cannot read
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a process crash
            self.version = schema.migrate(self._db)
            self.interrupted = self._mark_interrupted()
        except sqlite3.DatabaseError as exc:  # corrupt inside: its header looked right
            self._db.close()
            raise StoreUnreadable(self.path, str(exc)) from None
        self._thread = threading.Thread(target=self._run, name="run-store", daemon=True)
        self._thread.start()

    # --- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            try:
                self._execute(batch)
            except BaseException as exc:  # the writer must outlive anything
                logger.exception("run store: a batch of {} operations failed", len(batch))
                for _, future in batch:
                    _settle(future, None, exc)
        self._db.close()

    def _execute(self, batch: list[tuple[Op, Future[Any]]]) -> None:
        """Run a batch in one transaction. One bad operation (a SQLite error, text that is
        not valid Unicode, a bug) fails only its own future; a failed commit fails all."""
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            self._db.execute("BEGIN")
            for op, future in batch:
                self._db.execute("SAVEPOINT op")
                try:
                    results.append((future, op(self._db), None))
                    self._db.execute("RELEASE op")
                except Exception as exc:
                    self._db.execute("ROLLBACK TO op")  # undo this op's partial writes
                    self._db.execute("RELEASE op")
                    logger.error("run store: an operation failed: {!r}", exc)
                    results.append((future, None, exc))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            logger.exception("run store: a batch of {} operations failed", len(batch))
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            results = [(f, None, exc) for _, f in batch]
        for future, value, error in results:
            _settle(future, value, error)

    def submit(self, op: Op) -> Future[Any]:
        future: Future[Any] = Future()
        if not self._thread.is_alive() and self._thread.ident is not None:
            future.set_exception(RuntimeError("the run store is closed"))
            return future
        self._queue.put((op, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    # --- operations ---------------------------------------------------------------------

    def _mark_interrupted(self) -> int:
        """Jobs left ``running`` by a dead daemon end ``interrupted``, keeping the rounds
        they had finished (and those rounds' replies, for the models' history)."""
        rows = self._db.execute(
            "SELECT job_id, result FROM jobs WHERE status = 'running'"
        ).fetchall()
        now = time.time()
        error = ErrorInfo.of(JobInterrupted("the daemon stopped before the job finished"))
        for job_id, partial in rows:
            result = JobResult(job_id=job_id, status="interrupted", error=error)
            if partial is not None:
                rounds = JobResult.from_dict(json.loads(partial)).rounds
                result = result.with_changes(rounds=rounds)
            self._db.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?, result = ? "
                "WHERE job_id = ?",
                (now, json.dumps(result.to_dict()), job_id),
            )
            self._db.executemany(INSERT_REPLY, reply_rows(result, now))
        if rows:
            logger.warning(
                "marked {} job(s) left running by a dead daemon as interrupted", len(rows)
            )
        return len(rows)

    def accept(
        self, job_id: str, prompt: str, options: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> Future[Any]:
        row = (
            job_id,
            prompt,
            json.dumps(dict(options), default=_plain),
            json.dumps(dict(metadata), default=_plain),
            time.time(),
            options.get("strategy"),
        )
        return self.submit(
            lambda db: db.execute(
                "INSERT INTO jobs (job_id, status, prompt, options, metadata, accepted_at, "
                "strategy) VALUES (?, 'running', ?, ?, ?, ?, ?)",
                row,
            )
        )

    def progress(self, partial: JobResult) -> Future[Any]:
        """Keep a running job's rounds so far (its ``result`` while it runs): a daemon
        killed mid-job leaves them to ``interrupted``. Never overwrites a finished job."""
        data = json.dumps(partial.to_dict())
        return self.submit(
            lambda db: db.execute(
                "UPDATE jobs SET result = ? WHERE job_id = ? AND status = 'running'",
                (data, partial.job_id),
            )
        )

    def finish(self, result: JobResult) -> Future[Any]:
        now = time.time()
        data = json.dumps(result.to_dict())
        # a cached result made no calls: the models' history stays true
        replies = [] if result.cached else reply_rows(result, now)
        participants = [r.model for r in result.rounds[0].replies] if result.rounds else []
        models = json.dumps(participants) if participants else None
        row = (
            result.status,
            now,
            data,
            result.strategy,
            models,
            result.elapsed_ms,
            result.cost_usd,
            result.job_id,
        )

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, strategy = ?, "
                "models = ?, elapsed_ms = ?, cost_usd = ? WHERE job_id = ?",
                row,
            )
            db.executemany(INSERT_REPLY, replies)

        return self.submit(op)

    def get(self, job_id: str) -> Future[JobResult | None]:
        def op(db: sqlite3.Connection) -> JobResult | None:
            row = db.execute(
                "SELECT status, result FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return None
            status, result = row
            if result is None:
                return JobResult(job_id=job_id, status=status)
            return JobResult.from_dict(json.loads(result))

        return self.submit(op)

    def cache_result(self, key: str, job_id: str) -> Future[Any]:
        """Remember ``job_id`` as the result of a deterministic job with ``key``."""
        return self.submit(
            lambda db: db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?)", (key, job_id))
        )

    def cached(self, key: str) -> Future[JobResult | None]:
        def op(db: sqlite3.Connection) -> JobResult | None:
            row = db.execute(
                "SELECT jobs.result FROM cache JOIN jobs USING (job_id) "
                "WHERE cache.key = ? AND jobs.status = 'ok'",
                (key,),
            ).fetchone()
            return None if row is None else JobResult.from_dict(json.loads(row[0]))

        return self.submit(op)

    def history(
        self, models: Sequence[str], per_model: int = 50
    ) -> Future[list[tuple[str, bool, float]]]:
        """The most recent reply outcomes of each model (oldest first): (model, ok,
        latency_s), so the auto synthesizer's metrics survive restarts. One indexed
        lookup per model: start-up stays fast with millions of stored replies."""

        def op(db: sqlite3.Connection) -> list[tuple[str, bool, float]]:
            out: list[tuple[str, bool, float]] = []
            for model in models:
                rows = db.execute(
                    "SELECT status, latency_ms FROM replies WHERE model = ? AND status IN "
                    "('ok', 'error', 'timeout') ORDER BY finished_at DESC, rowid DESC LIMIT ?",
                    (model, per_model),
                ).fetchall()
                out += [(model, s == "ok", (lat or 0.0) / 1000) for s, lat in reversed(rows)]
            return out

        return self.submit(op)

    def quality_history(self, jobs: int = 500) -> Future[list[tuple[str, float]]]:
        """The answer-quality samples of the last ``jobs`` ok jobs (oldest first), as the
        coordinator recorded them: each model's rank score, else 1 if its last answer
        agreed with the final one and 0 if it dissented (jobs of one answer say nothing)."""

        def op(db: sqlite3.Connection) -> list[tuple[str, float]]:
            rows = db.execute(
                "SELECT result FROM jobs WHERE status = 'ok' AND result IS NOT NULL "
                "ORDER BY rowid DESC LIMIT ?",  # newest first, by the primary key's order
                (jobs,),
            ).fetchall()
            out: list[tuple[str, float]] = []
            for (raw,) in reversed(rows):
                out += quality_samples(json.loads(raw))
            return out

        return self.submit(op)

    def runs(self, params: Mapping[str, Any]) -> Future[list[dict[str, Any]]]:
        """Past jobs matching ``params`` (see ``actors.store.runs``), newest first;
        ``full`` gives whole records (``export``) instead of listings."""
        clause, args = runs.where(params)
        limit, offset = runs.page(params)
        shape = runs.record if params.get("full") else runs.listing
        sql = (
            f"SELECT {runs.COLUMNS} FROM jobs{clause} "
            "ORDER BY accepted_at DESC, rowid DESC LIMIT ? OFFSET ?"
        )
        return self.submit(
            lambda db: [shape(row) for row in db.execute(sql, [*args, limit, offset])]
        )

    def record(self, job_id: str) -> Future[dict[str, Any] | None]:
        """The stored job as ``job`` returns it: result, prompt, metadata, created."""

        def op(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                f"SELECT {runs.COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            return None if row is None else runs.record(row)

        return self.submit(op)

    def prune(self, before: float) -> Future[int]:
        """Forget the jobs accepted before ``before`` (Unix seconds), their replies and
        cache entries (``[daemon] retain_days``); how many jobs went."""

        def op(db: sqlite3.Connection) -> int:
            old = "SELECT job_id FROM jobs WHERE accepted_at < ? AND status != 'running'"
            db.execute(f"DELETE FROM replies WHERE job_id IN ({old})", (before,))
            db.execute(f"DELETE FROM cache WHERE job_id IN ({old})", (before,))
            cursor = db.execute(
                "DELETE FROM jobs WHERE accepted_at < ? AND status != 'running'", (before,)
            )
            return int(cursor.rowcount)

        return self.submit(op)


def reply_rows(result: JobResult, now: float) -> list[tuple[Any, ...]]:
    """The ``replies`` rows of every call in ``result``'s rounds."""
    return [
        (
            result.job_id,
            i,
            rnd.name,
            r.model,
            r.status,
            r.prompt,
            r.text,
            r.latency_ms,
            r.usage.input_tokens if r.usage else None,
            r.usage.output_tokens if r.usage else None,
            r.cost_usd,
            r.error.code if r.error else None,
            r.error.message if r.error else None,
            now,
        )
        for i, rnd in enumerate(result.rounds)
        for r in rnd.replies
    ]


def _plain(value: Any) -> Any:
    """JSON for the frozen values an ``Ask`` holds (messages, tools: their ``to_dict``;
    mappings, tuples)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return dict(value) if isinstance(value, Mapping) else list(value)


def _settle(future: Future[Any], value: Any, error: BaseException | None) -> None:
    """Resolve ``future`` unless its waiter gave up (a cancelled future must not raise
    InvalidStateError on the writer thread)."""
    if not future.set_running_or_notify_cancel():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def quality_samples(result: Mapping[str, Any]) -> list[tuple[str, float]]:
    """A stored result's answer-quality samples (see ``Store.quality_history``)."""
    scores = (result.get("ranking") or {}).get("scores")
    if isinstance(scores, dict) and len(scores) >= 2:
        return [(m, float(v)) for m, v in scores.items() if isinstance(v, int | float)]
    answering = [
        r for r in result.get("rounds") or () if r.get("name") in ("initial", "meta", "chain")
    ]
    if not answering:
        return []
    models = [x["model"] for x in answering[-1].get("replies") or () if x.get("status") == "ok"]
    if len(set(models)) < 2:
        return []
    dissenters = set((result.get("agreement") or {}).get("dissenters") or ())
    return [(m, 0.0 if m in dissenters else 1.0) for m in dict.fromkeys(models)]
