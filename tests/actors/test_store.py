"""The run store: real SQLite in WAL mode, a writer thread, interrupted jobs."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from helpers import WAIT

from actors.store import RunStore
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
    assert store.record("j1").result(WAIT)["metadata"] == {"user": "u"}
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
    assert len(store.history(["a", "b"]).result(WAIT)) == 2  # j1's two replies only
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


# --- run history ---------------------------------------------------------------------------


def seeded(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "runs.sqlite3")
    jobs = [
        ("j1", "What is the capital of Australia?", {"user": "ann", "n": 1}, "ok", 1000.0),
        ("j2", "Summarise this report", {"user": "bob", "tags": ["x"]}, "error", 2000.0),
        ("j3", "What is 2+2?", {"user": "ann", "urgent": True}, "ok", 3000.0),
    ]
    for job_id, prompt, metadata, status, when in jobs:
        store.accept(job_id, prompt, {"strategy": "vote"}, metadata).result(WAIT)
        store.submit(
            lambda db, j=job_id, w=when: db.execute(
                "UPDATE jobs SET accepted_at = ? WHERE job_id = ?", (w, j)
            )
        ).result(WAIT)
        store.finish(finished(job_id).with_changes(status=status)).result(WAIT)
    return store


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["j3", "j2", "j1"]),  # newest first
        ({"limit": 2}, ["j3", "j2"]),
        ({"limit": 2, "offset": 2}, ["j1"]),
        ({"status": "ok"}, ["j3", "j1"]),
        ({"since": 1500}, ["j3", "j2"]),
        ({"until": "1970-01-01T00:33:20Z"}, ["j1"]),  # 2000 s: until is exclusive
        ({"since": "1970-01-01T00:16:40+00:00", "until": 2500}, ["j2", "j1"]),
        ({"metadata": {"user": "ann"}}, ["j3", "j1"]),
        ({"metadata": {"user": "ann", "urgent": True}}, ["j3"]),
        ({"metadata": {"tags": ["x"]}}, ["j2"]),
        ({"metadata": {"n": 1}}, ["j1"]),
        ({"text": "What is"}, ["j3", "j1"]),
    ],
)
def test_runs_filter_and_page(tmp_path: Path, params: dict, expected: list[str]) -> None:
    store = seeded(tmp_path)
    try:
        assert [r["job_id"] for r in store.runs(params).result(WAIT)] == expected
    finally:
        store.close()


def test_a_listing_and_a_record_say_what_ran(tmp_path: Path) -> None:
    store = seeded(tmp_path)
    try:
        [run] = store.runs({"limit": 1}).result(WAIT)
        assert run == {
            "job_id": "j3",
            "created": "1970-01-01T00:50:00.000+00:00",
            "status": "ok",
            "strategy": "synthesize",
            "models": ["a", "b"],
            "elapsed_ms": 0.0,
            "cost_usd": 0.0,
            "prompt_preview": "What is 2+2?",
            "metadata": {"user": "ann", "urgent": True},
        }
        record = store.record("j1").result(WAIT)
        assert record["prompt"] == "What is the capital of Australia?"
        assert record["metadata"] == {"user": "ann", "n": 1}
        assert record["created"].startswith("1970-01-01T00:16:40")
        assert record["answer"] == "hi" and record["rounds"][0]["replies"][0]["model"] == "a"
        assert store.record("nope").result(WAIT) is None
    finally:
        store.close()


@pytest.mark.parametrize(
    "params",
    [{"status": "weird"}, {"since": "yesterday"}, {"limit": 0}, {"metadata": [1]}, {"text": ""}],
)
def test_bad_runs_filters_are_invalid_params(tmp_path: Path, params: dict) -> None:
    from messages.errors import InvalidParams

    store = RunStore(tmp_path / "runs.sqlite3")
    try:
        with pytest.raises(InvalidParams):
            store.runs(params)
    finally:
        store.close()


def test_retention_forgets_old_jobs_with_their_replies_and_cache(tmp_path: Path) -> None:
    store = seeded(tmp_path)
    try:
        store.cache_result("k", "j1").result(WAIT)
        assert store.prune(2500).result(WAIT) == 2
        assert [r["job_id"] for r in store.runs({}).result(WAIT)] == ["j3"]
        count = store.submit(
            lambda db: db.execute(
                "SELECT (SELECT count(*) FROM replies WHERE job_id != 'j3'),"
                " (SELECT count(*) FROM cache)"
            ).fetchone()
        ).result(WAIT)
        assert count == (0, 0)
    finally:
        store.close()


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    from actors.store import schema

    path = tmp_path / "runs.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(schema.BASE)
    result = finished("old").with_changes(strategy="rank", elapsed_ms=12.5, cost_usd=0.25)
    db.execute(
        "INSERT INTO jobs VALUES ('old', 'ok', 'p', '{}', '{}', 1.0, 2.0, ?)",
        (json.dumps(result.to_dict()),),
    )
    db.commit()
    db.close()
    store = RunStore(path)
    try:
        assert store.version == schema.VERSION == 2
        [run] = store.runs({}).result(WAIT)
        assert (run["strategy"], run["models"], run["elapsed_ms"], run["cost_usd"]) == (
            "rank",
            ["a", "b"],
            12.5,
            0.25,
        )
    finally:
        store.close()
    again = RunStore(path)
    assert again.version == 2  # opening again changes nothing
    again.close()


# --- a job's rounds as they end; a store that cannot be read ------------------------------


def test_a_running_job_keeps_its_finished_rounds_through_an_interruption(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    store.accept("j1", "p", {}, {}).result(WAIT)
    rounds = finished("j1").rounds
    store.progress(JobResult(job_id="j1", status="running", rounds=rounds)).result(WAIT)
    wire = [r.to_dict() for r in rounds]  # (a reply's prompt is kept in its own column)
    assert store.record("j1").result(WAIT)["rounds"] == wire  # `job` shows them as it runs
    store.close()  # as a kill -9 leaves it: never finished
    again = RunStore(tmp_path / "runs.sqlite3")
    stored = again.get("j1").result(WAIT)
    assert stored.status == "interrupted" and stored.error.code == "interrupted"
    assert [r.to_dict() for r in stored.rounds] == wire
    history = again.history(["a", "b"]).result(WAIT)  # the calls it made still count
    assert [(m, ok) for m, ok, _ in history] == [("a", True), ("b", False)]
    again.close()


def test_progress_never_overwrites_a_finished_job(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite3")
    store.accept("j1", "p", {}, {}).result(WAIT)
    store.finish(finished("j1")).result(WAIT)
    store.progress(JobResult(job_id="j1", status="running")).result(WAIT)  # a late one
    assert store.get("j1").result(WAIT).to_dict() == finished("j1").to_dict()
    store.close()


def test_frozen_options_and_metadata_are_stored_as_json(tmp_path: Path) -> None:
    from types import MappingProxyType

    store = RunStore(tmp_path / "runs.sqlite3")
    schema = MappingProxyType({"type": "object", "required": ("a",)})
    store.accept("j1", "p", {"schema": schema, "models": ("a",)}, {"k": (1, 2)}).result(WAIT)
    record = store.record("j1").result(WAIT)
    assert record["options"] == {"schema": {"type": "object", "required": ["a"]}, "models": ["a"]}
    assert record["metadata"] == {"k": [1, 2]}
    store.close()


def damaged(path: Path, damage: str) -> bytes:
    """A real store, then damaged: its bytes after the damage."""
    store = RunStore(path)
    for i in range(50):
        store.accept(f"j{i}", "p" * 500, {}, {}).result(WAIT)
        store.finish(finished(f"j{i}")).result(WAIT)
    store.close()
    data = path.read_bytes()
    data = {"garbage": b"not a database at all " * 200, "truncated": data[: len(data) // 2]}[damage]
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_store_is_refused_and_left_as_it_was(tmp_path: Path, damage: str) -> None:
    from actors.store import StoreUnreadable

    path = tmp_path / "runs.sqlite3"
    before = damaged(path, damage)
    with pytest.raises(StoreUnreadable) as caught:
        RunStore(path)
    assert str(path) in str(caught.value) and "move it aside" in str(caught.value)
    assert path.read_bytes() == before
    assert not (tmp_path / "runs.sqlite3-wal").exists()


def test_an_empty_store_file_becomes_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    path.touch()
    store = RunStore(path)
    assert store.get("nope").result(WAIT) is None
    store.close()
