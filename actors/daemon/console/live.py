"""The live view's side of a job: the events the socket sends (``round_started``,
``reply``, ``round_finished``, ``delta``, ``reset``), kept in order for each job the
console started, and a last ``done`` event with the job result. Any number of pages
follow one job (and a page that reconnects resumes after the last event it saw)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

KEEP_FINISHED = 50  # finished jobs kept for a late or reconnecting page
KEEPALIVE = ": keepalive\n\n"


class LiveJob:
    """One job's events so far. ``push`` and ``finish`` run on the daemon's loop."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.events: list[dict[str, Any]] = []
        self.done = False
        self._changed = asyncio.Event()

    def push(self, event: dict[str, Any]) -> None:
        if not self.done:
            self.events.append(event)
            self._wake()

    def finish(self, result: dict[str, Any]) -> None:
        if not self.done:
            self.events.append({"type": "done", "job_id": self.job_id, "result": result})
            self.done = True
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, after: int, every_s: float) -> AsyncIterator[str]:
        """Server-sent events from the one after ``after`` (a 0-based event count), a
        keep-alive comment each ``every_s`` of silence, until the ``done`` event."""
        seen = max(0, after)
        while True:
            while seen < len(self.events):
                event = self.events[seen]
                seen += 1
                yield f"id: {seen}\ndata: {json.dumps(event)}\n\n"
                if event["type"] == "done":
                    return
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), every_s)
            except TimeoutError:
                yield KEEPALIVE


class LiveJobs:
    """The jobs this console started, by id: all running ones and the last finished."""

    def __init__(self) -> None:
        self._jobs: dict[str, LiveJob] = {}

    def open(self, job_id: str) -> LiveJob:
        finished = [j for j in self._jobs.values() if j.done]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
            del self._jobs[job.job_id]
        job = self._jobs[job_id] = LiveJob(job_id)
        return job

    def get(self, job_id: str) -> LiveJob | None:
        return self._jobs.get(job_id)
