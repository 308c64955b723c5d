"""The run store: real SQLite in WAL mode, a writer thread, interrupted jobs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from helpers import WAIT

from actors.daemon.store import RunStore
from messages.results import ErrorInfo, JobResult, ModelReply, RoundResult, Usage


def finished(job_id: str) -> JobResult:
    reply = ModelReply(
        model="a",
        status="ok",
        text="hi",
        latency_ms=5.0,
        prompt="the prompt",
        usage=Usage(input_tokens=3, output_tokens=1),
        cost_usd=0.5,
    )
    failed = ModelReply(model="b", status="error", error=ErrorInfo(code="timeout", message="slow"))
    return JobResult(
        job_id=job_id,
        status="ok",
        answer="hi",
        rounds=(RoundResult(name="initial", replies=(reply, failed)),),
    )


def test_a_job_is_stored_when_accepted_and_when_finished(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    store.accept("j1", "prompt", {"models": ["a"]}, {"user": "u"}).result(WAIT)
    assert store.get("j1").result(WAIT).status == "running"
    store.finish(finished("j1")).result(WAIT)
    assert store.get("j1").result(WAIT).to_dict() == finished("j1").to_dict()
    assert store.metadata("j1").result(WAIT) == {"user": "u"}
    assert store.get("nope").result(WAIT) is None
    store.close()
    db = sqlite3.connect(tmp_path / "runs.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = db.execute(
        "SELECT model, status, prompt, input_tokens, error_code FROM replies"
    ).fetchall()
    assert rows == [("a", "ok", "the prompt", 3, None), ("b", "error", None, None, "timeout")]


def test_jobs_left_running_are_marked_interrupted_at_the_next_open(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    store.accept("j1", "p", {}, {}).result(WAIT)
    store.accept("j2", "p", {}, {}).result(WAIT)
    store.finish(finished("j2")).result(WAIT)
    store.close()
    again = RunStore(tmp_path / "runs.sqlite3")
    assert again.interrupted == 1
    result = again.get("j1").result(WAIT)
    assert result.status == "interrupted" and result.error.code == "interrupted"
    assert again.get("j2").result(WAIT).status == "ok"
    again.close()


def test_a_burst_of_writes_all_land(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    futures = [store.accept(f"j{i}", "p", {}, {}) for i in range(2000)]
    for future in futures:
        future.result(WAIT)
    store.close()
    db = sqlite3.connect(tmp_path / "runs.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2000


def test_a_failing_operation_fails_alone(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    store.accept("dup", "p", {}, {}).result(WAIT)
    again = store.accept("dup", "p", {}, {})
    other = store.accept("fine", "p", {}, {})
    assert isinstance(again.exception(WAIT), sqlite3.IntegrityError)
    assert other.result(WAIT) is not None
    store.close()


def test_a_cached_result_adds_no_reply_history(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    store.accept("j1", "p", {}, {}).result(WAIT)
    store.finish(finished("j1")).result(WAIT)
    store.accept("j2", "p", {}, {}).result(WAIT)
    store.finish(finished("j1").with_changes(job_id="j2", cached=True)).result(WAIT)
    assert len(store.history().result(WAIT)) == 2  # j1's two replies only
    assert store.get("j2").result(WAIT).cached
    store.close()


def test_the_writer_survives_a_poisoned_row_and_writes_the_next_one(tmp_path: Path) -> None:
    """A lone surrogate cannot be encoded for SQLite: that operation fails alone, and
    the writer thread goes on (it used to die, and every later ask hung)."""
    store = RunStore(tmp_path / "runs.sqlite3")
    poisoned = store.accept("bad", "\ud800", {}, {})
    good = store.accept("good", "fine", {}, {})
    with pytest.raises(UnicodeEncodeError):
        poisoned.result(WAIT)
    good.result(WAIT)
    store.finish(finished("good")).result(WAIT)
    assert store.get("good").result(WAIT).status == "ok"
    assert store.get("bad").result(WAIT) is None  # nothing half-written
    store.close()


def test_a_bug_in_an_operation_fails_only_that_operation(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")

    def broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO cache VALUES ('k', 'j')")
        raise KeyError("a bug")

    failing = store.submit(broken)
    with pytest.raises(KeyError):
        failing.result(WAIT)
    assert store.submit(lambda db: db.execute("SELECT count(*) FROM cache").fetchone()).result(
        WAIT
    ) == (0,)  # the failed operation's own writes were rolled back
    store.close()


def test_a_waiter_that_gave_up_does_not_kill_the_writer(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    gate = threading.Event()
    held = store.submit(lambda db: gate.wait(WAIT))
    abandoned = store.accept("j1", "p", {}, {})
    assert abandoned.cancel()  # e.g. asyncio.wrap_future's waiter was cancelled
    gate.set()
    held.result(WAIT)
    assert store.accept("j2", "p", {}, {}).result(WAIT) is not None
    store.close()
