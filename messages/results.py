"""Replies and results: what models answer and what a job returns.

``JobResult.to_dict()`` is exactly the job result of the socket protocol
(CONTRACT.md §4); ``from_dict`` reads it back (the run store and clients use it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from messages.errors import OrchestratorError
from messages.tools import ToolCall

ReplyStatus = Literal["ok", "error", "timeout", "skipped"]
JobStatus = Literal["ok", "error", "timeout", "cancelled", "interrupted", "running"]
FinishReason = Literal["stop", "tool_calls", "length"]


def calls_to_list(calls: tuple[ToolCall, ...] | None) -> list[dict[str, Any]] | None:
    return None if calls is None else [call.to_dict() for call in calls]


def calls_from_list(data: Any) -> tuple[ToolCall, ...] | None:
    if data is None:
        return None
    return tuple(ToolCall.from_dict(item, f"tool_calls[{i}]") for i, item in enumerate(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens a call consumed, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of input_tokens, read from the provider's prompt cache

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        out = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_tokens:  # only when a provider reported a cache hit
            out["cached_input_tokens"] = self.cached_tokens
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage | None:
        if data is None:
            return None
        return cls(
            input_tokens=int(data["input_tokens"]),
            output_tokens=int(data["output_tokens"]),
            cached_tokens=int(data.get("cached_input_tokens") or 0),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    """An error as data: a stable ``code`` (see messages.errors) and a message."""

    code: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        if isinstance(exc, OrchestratorError):
            return cls(code=exc.code, message=exc.message)
        return cls(code="internal_error", message=f"{type(exc).__name__}: {exc}")

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        return None if data is None else cls(code=data["code"], message=data["message"])


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelReply:
    """One model's answer in one round (or why there is none)."""

    model: str
    status: ReplyStatus
    text: str | None = None
    latency_ms: float = 0.0
    usage: Usage | None = None
    error: ErrorInfo | None = None
    cost_usd: float = 0.0
    attempts: int = 0
    prompt: str | None = field(default=None, repr=False)  # kept for the run store, not the wire
    tool_calls: tuple[ToolCall, ...] | None = None  # the calls it proposed (with or without text)
    waited_ms: float = field(default=0.0, repr=False)  # queued for limits first (for traces)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "status": self.status,
            "text": self.text,
            "latency_ms": round(self.latency_ms, 1),
            "usage": None if self.usage is None else self.usage.to_dict(),
            "error": None if self.error is None else self.error.to_dict(),
            "cost_usd": self.cost_usd,
        }
        if self.tool_calls is not None:  # only on tool jobs: plain results keep their shape
            out["tool_calls"] = calls_to_list(self.tool_calls)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelReply:
        return cls(
            model=data["model"],
            status=data["status"],
            text=data.get("text"),
            latency_ms=float(data.get("latency_ms") or 0.0),
            usage=Usage.from_dict(data.get("usage")),
            error=ErrorInfo.from_dict(data.get("error")),
            cost_usd=float(data.get("cost_usd") or 0.0),
            tool_calls=calls_from_list(data.get("tool_calls")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundResult:
    """All replies of one round, in the order the models are configured."""

    name: str
    replies: tuple[ModelReply, ...] = ()

    @property
    def ok_replies(self) -> tuple[ModelReply, ...]:
        return tuple(r for r in self.replies if r.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "replies": [r.to_dict() for r in self.replies]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundResult:
        return cls(
            name=data["name"], replies=tuple(ModelReply.from_dict(r) for r in data["replies"])
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    """What a job returns: the answer, how it was reached and what it cost.

    ``status`` is ``ok`` or why the job ended early (``error``, ``timeout``,
    ``cancelled``, ``interrupted``); ``error`` then says which error, and the
    rounds hold the partial result.
    """

    job_id: str
    status: JobStatus
    answer: str | None = None
    strategy: str = "synthesize"
    synthesizer: str | None = None
    confidence: float | None = None
    elapsed_ms: float = 0.0
    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    rounds: tuple[RoundResult, ...] = ()
    error: ErrorInfo | None = None
    votes: tuple[dict[str, Any], ...] | None = None
    ranking: dict[str, Any] | None = None
    cached: bool = False
    schema_errors: tuple[str, ...] | None = None
    early_exit: bool = False
    hedge: dict[str, Any] | None = None  # a hedged synthesis: who was asked, who won
    agreement: dict[str, Any] | None = None  # score, dissenters, clusters of equal answers
    synthesizer_reason: str | None = None  # why that synthesizer was chosen
    pipeline: str | None = None  # the named pipeline the job ran (None: the default)
    escalations: tuple[dict[str, Any], ...] = ()  # confidence gates that fired, in order
    tool_calls: tuple[ToolCall, ...] | None = None  # the answer is these calls (None: text)
    finish_reason: FinishReason = "stop"
    tools: dict[str, Any] | None = None  # a tool job: proposals, votes, decided_by, left_out
    answered_by: dict[str, Any] | None = None  # a named pipeline: the step that answered
    weights: dict[str, Any] | None = None  # a weighted vote: each answer's weight, source
    excluded_outliers: tuple[dict[str, Any], ...] = ()  # panelists left out, per stage

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def with_changes(self, **changes: Any) -> JobResult:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "answer": self.answer,
            "strategy": self.strategy,
            "synthesizer": self.synthesizer,
            "confidence": self.confidence,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "cost_usd": self.cost_usd,
            "usage": self.usage.to_dict(),
            "rounds": [r.to_dict() for r in self.rounds],
            "agreement": self.agreement or {"score": None, "dissenters": [], "clusters": []},
            "tool_calls": calls_to_list(self.tool_calls),
            "finish_reason": self.finish_reason,
        }
        if self.tools is not None:
            out["tools"] = self.tools
        if self.error is not None:
            out["error"] = self.error.to_dict()
        if self.votes is not None:
            out["votes"] = list(self.votes)
        if self.ranking is not None:
            out["ranking"] = self.ranking
        if self.cached:
            out["cached"] = True
        if self.schema_errors is not None:
            out["schema_errors"] = list(self.schema_errors)
        if self.early_exit:
            out["early_exit"] = True
        if self.hedge is not None:
            out["hedge"] = self.hedge
        if self.synthesizer_reason is not None:
            out["synthesizer_reason"] = self.synthesizer_reason
        if self.pipeline is not None:
            out["pipeline"] = self.pipeline
        if self.escalations:
            out["escalations"] = list(self.escalations)
        if self.answered_by is not None:
            out["answered_by"] = self.answered_by
        if self.weights is not None:
            out["weights"] = self.weights
        if self.excluded_outliers:
            out["excluded_outliers"] = list(self.excluded_outliers)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        votes = data.get("votes")
        return cls(
            job_id=data["job_id"],
            status=data["status"],
            answer=data.get("answer"),
            strategy=data.get("strategy", "synthesize"),
            synthesizer=data.get("synthesizer"),
            confidence=data.get("confidence"),
            elapsed_ms=float(data.get("elapsed_ms") or 0.0),
            cost_usd=float(data.get("cost_usd") or 0.0),
            usage=Usage.from_dict(data.get("usage")) or Usage(),
            rounds=tuple(RoundResult.from_dict(r) for r in data.get("rounds", ())),
            error=ErrorInfo.from_dict(data.get("error")),
            votes=None if votes is None else tuple(votes),
            ranking=data.get("ranking"),
            cached=bool(data.get("cached", False)),
            schema_errors=None
            if data.get("schema_errors") is None
            else tuple(data["schema_errors"]),
            early_exit=bool(data.get("early_exit", False)),
            hedge=data.get("hedge"),
            agreement=data.get("agreement"),
            synthesizer_reason=data.get("synthesizer_reason"),
            pipeline=data.get("pipeline"),
            escalations=tuple(data.get("escalations") or ()),
            tool_calls=calls_from_list(data.get("tool_calls")),
            finish_reason=data.get("finish_reason") or "stop",
            tools=data.get("tools"),
            answered_by=data.get("answered_by"),
            weights=data.get("weights"),
            excluded_outliers=tuple(data.get("excluded_outliers") or ()),
        )
