"""The run store's schema, versioned with SQLite's ``user_version`` and migrated forward
at open: a store written by an older daemon is upgraded in place, never rebuilt.

Tables (see ``docs/run-store.md`` for every column):

- ``jobs``: one row per accepted job: the prompt, the requested options and metadata
  (JSON), when it was accepted and finished, its status, and its full result (JSON);
  since version 2 also ``strategy``, ``models`` (JSON list), ``elapsed_ms`` and
  ``cost_usd`` for listing runs without parsing every result.
- ``replies``: one row per model call of every round, with its prompt, text, latency,
  tokens, cost and error; the auto synthesizer's history is read from it.
- ``cache``: deterministic results, by cache key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from loguru import logger

MAGIC = b"SQLite format 3\x00"
HEADER = 100  # bytes of SQLite's database header


class StoreUnreadable(Exception):
    """``runs.sqlite3`` is not a readable SQLite database (garbage, truncated, corrupt).
    The file is left exactly as it was: the message says what to do with it."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"the run store {path} is unreadable ({why}); it was left untouched: move it "
            "aside (or restore a backup) and start again, and a new one is created"
        )
        self.path = path


def check_file(path: Path) -> None:
    """Raise ``StoreUnreadable`` if ``path`` exists but its header is not a whole SQLite
    database's: not SQLite at all, or shorter than the page count its header records
    (truncated). Read-only, and before SQLite opens the file, which could write to it."""
    try:
        with path.open("rb") as file:
            header = file.read(HEADER)
            size = file.seek(0, 2)
    except FileNotFoundError:
        return
    if not header:
        return  # an empty file: SQLite makes it a new database
    if len(header) < HEADER or not header.startswith(MAGIC):
        raise StoreUnreadable(path, "not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counted = header[24:28] == header[92:96]  # else the page count is not maintained
    if counted and size < pages * page_size:
        raise StoreUnreadable(path, f"truncated: {size} bytes of {pages * page_size}")


BASE = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    prompt      TEXT NOT NULL,
    options     TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    finished_at REAL,
    result      TEXT
);
CREATE TABLE IF NOT EXISTS replies (
    job_id        TEXT NOT NULL,
    round_index   INTEGER NOT NULL,
    round         TEXT NOT NULL,
    model         TEXT NOT NULL,
    status        TEXT NOT NULL,
    prompt        TEXT,
    text          TEXT,
    latency_ms    REAL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost_usd      REAL,
    error_code    TEXT,
    error_message TEXT,
    finished_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_by_model ON replies (model, finished_at);
CREATE TABLE IF NOT EXISTS cache (
    key    TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
"""


def _v2(db: sqlite3.Connection) -> None:
    """Listing columns (backfilled from the stored results) and the indexes runs,
    retention and job lookups use."""
    for column, kind in (
        ("strategy", "TEXT"),
        ("models", "TEXT"),
        ("elapsed_ms", "REAL"),
        ("cost_usd", "REAL"),
    ):
        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
    db.execute(
        "UPDATE jobs SET strategy = coalesce(json_extract(result, '$.strategy'), "
        "json_extract(options, '$.strategy')), elapsed_ms = json_extract(result, "
        "'$.elapsed_ms'), cost_usd = json_extract(result, '$.cost_usd'), models = ("
        " SELECT json_group_array(json_extract(value, '$.model'))"
        " FROM json_each(json_extract(jobs.result, '$.rounds[0].replies')))"
        " WHERE result IS NOT NULL AND json_valid(result)"
    )
    db.execute("CREATE INDEX jobs_by_time ON jobs (accepted_at)")
    db.execute("CREATE INDEX jobs_by_status ON jobs (status, accepted_at)")
    db.execute("CREATE INDEX replies_by_job ON replies (job_id)")
    db.execute("CREATE INDEX cache_by_job ON cache (job_id)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v2,)
VERSION = 1 + len(MIGRATIONS)  # version 1 is BASE


def migrate(db: sqlite3.Connection) -> int:
    """Create or upgrade the schema (each step in its own transaction); the version."""
    db.executescript(BASE)
    version = max(1, db.execute("PRAGMA user_version").fetchone()[0])
    for step, migration in enumerate(MIGRATIONS, start=2):
        if version >= step:
            continue
        db.execute("BEGIN")
        try:
            migration(db)
            db.execute(f"PRAGMA user_version = {step}")
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise
        logger.info("run store migrated to schema version {}", step)
        version = step
    return version
