"""Job: the coordinator's state for one running job (owned by its thread only)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from actors import prompts
from actors.runtime import Timer
from messages.commands import Ask
from messages.events import JobEvent, JobEventType
from messages.results import ErrorInfo, JobResult, ModelReply, ReplyStatus, RoundResult, Usage


@dataclass(slots=True, kw_only=True)
class Job:
    ask: Ask
    future: Any  # pykka.Future[JobResult]
    models: tuple[str, ...]
    rounds: tuple[str, ...]
    strategy: str
    synthesizer: str | None  # None: auto
    started: float
    deadline: float
    rng: random.Random
    round_index: int = 0
    pending: dict[str, str] = field(default_factory=dict)  # call_id -> model
    replies: list[ModelReply] = field(default_factory=list)  # of the current round
    completed: list[RoundResult] = field(default_factory=list)
    synthesized_by: str | None = None
    deadline_timer: Timer | None = None

    @property
    def job_id(self) -> str:
        return self.ask.job_id

    @property
    def round_name(self) -> str:
        return self.rounds[self.round_index]

    def record(self, reply: ModelReply) -> None:
        self.replies.append(reply)

    def last_answers(self) -> list[str]:
        """The previous round's ok answers as the next round sees them (a meta reply
        contributes its improved answer, not its critique)."""
        if not self.completed:
            return []
        meta = self.completed[-1].name == "meta"
        texts = [r.text for r in self.completed[-1].ok_replies if r.text is not None]
        return [prompts.improved_answer(t) for t in texts] if meta else texts

    def close_round(self) -> RoundResult:
        """The current round as a result, replies in the job's model order."""
        order = {m: i for i, m in enumerate(self.models)}
        replies = sorted(self.replies, key=lambda r: order.get(r.model, len(order)))
        if self.round_name == "synthesis":
            replies = list(self.replies)  # attempts, in the order they were made
        result = RoundResult(name=self.round_name, replies=tuple(replies))
        self.completed.append(result)
        self.replies = []
        return result

    def emit(self, type_: JobEventType, round_name: str, reply: ModelReply | None = None) -> None:
        listener = self.ask.listener
        if listener is None:
            return
        try:
            listener(
                JobEvent(
                    type=type_,
                    job_id=self.job_id,
                    round=round_name,
                    round_index=self.round_index,
                    reply=reply,
                )
            )
        except Exception:  # a listener's bug must not break the job
            logger.exception("job {}: event listener failed", self.job_id)

    def result(
        self,
        *,
        status: Any,
        answer: str | None,
        synthesizer: str | None,
        elapsed_ms: float,
        error: ErrorInfo | None,
    ) -> JobResult:
        rounds = list(self.completed)
        if status != "ok" and (self.pending or self.replies):
            reply_status: ReplyStatus = "timeout" if status == "timeout" else "skipped"
            for model in self.pending.values():
                self.replies.append(ModelReply(model=model, status=reply_status, error=error))
            self.pending.clear()
            rounds.append(self.close_round())
        replies = [r for rnd in rounds for r in rnd.replies]
        usage = sum((r.usage for r in replies if r.usage is not None), Usage())
        return JobResult(
            job_id=self.job_id,
            status=status,
            answer=answer,
            strategy=self.strategy,
            synthesizer=synthesizer,
            elapsed_ms=elapsed_ms,
            cost_usd=round(sum(r.cost_usd for r in replies), 10),
            usage=usage,
            rounds=tuple(rounds),
            error=error,
        )
