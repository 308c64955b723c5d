"""The one error tree of orchestrord.

Every class has a stable ``code`` string (used in replies, logs and the run store), an
``rpc_code`` (the JSON-RPC error code the socket answers with) and a ``status_code`` (the
HTTP status the front door answers with, as openai-python's ``_exceptions.py`` pins one on
each class)::

    OrchestratorError                   internal_error        -32603  500
    ├── ConfigError                     config_error          -32602  400
    ├── ProtocolError                   invalid_request       -32600  400
    │   ├── ParseError                  parse_error           -32700  400
    │   ├── MethodNotFound              method_not_found      -32601  404
    │   ├── InvalidParams               invalid_params        -32602  400
    │   └── RequestTooLarge             request_too_large     -32006  413
    ├── ProviderError                   provider_error        -32603  502
    │   ├── ProviderTimeout             timeout                       504
    │   ├── ProviderUnavailable         provider_unavailable          502 (refused, 5xx)
    │   ├── RateLimited                 rate_limited                  429 (carries retry_after)
    │   ├── ProviderRejected            provider_rejected             502 (400/401/403/404/422)
    │   ├── BadResponse                 bad_response                  502 (not JSON, wrong shape)
    │   ├── OverBudget                  over_budget                   502 (larger than the bucket)
    │   └── ActorCrashed                actor_crashed                 502 (the actor died mid-call)
    ├── OverloadedError                 overloaded            -32001  429
    ├── NoModelAvailable                no_model_available    -32002  503
    ├── JobTimeoutError                 job_timeout           -32003  504
    ├── JobCancelled                    cancelled             -32004  499
    ├── ShuttingDown                    shutting_down         -32005  503
    ├── UnknownJob                      unknown_job           -32007  404
    ├── RoundError                      round_failed          -32008  502
    ├── SchemaError                     schema_failed         -32009  422
    ├── BudgetExhausted                 budget_exhausted      -32010  402
    └── JobInterrupted                  interrupted           -32603  500 (the daemon died)

Provider errors are data: a model actor turns them into a reply with
``status: error`` (or ``timeout``) instead of crashing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class OrchestratorError(Exception):
    """Base of every error orchestrord raises on purpose."""

    code: ClassVar[str] = "internal_error"
    rpc_code: ClassVar[int] = -32603
    status_code: ClassVar[int] = 500

    def __init__(self, message: str = "", *, data: Any = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        """The ``{"code", "message"}`` pair stored in replies and results."""
        return {"code": self.code, "message": self.message}


class ConfigError(OrchestratorError):
    """A configuration file, dict or flag is invalid; ``key`` names the offender."""

    code = "config_error"
    rpc_code = -32602
    status_code = 400

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key

    @classmethod
    def check_keys(cls, prefix: str, table: Any, known: Iterable[str]) -> None:
        """Raises for the first key of ``table`` that is not ``known``, naming them all."""
        known = tuple(known)
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise cls(f"{prefix}.{unknown[0]}", f"unknown key (known: {', '.join(known)})")


class ProtocolError(OrchestratorError):
    code = "invalid_request"
    rpc_code = -32600
    status_code = 400


class ParseError(ProtocolError):
    code = "parse_error"
    rpc_code = -32700


class MethodNotFound(ProtocolError):
    code = "method_not_found"
    rpc_code = -32601
    status_code = 404


class InvalidParams(ProtocolError):
    code = "invalid_params"
    rpc_code = -32602


class RequestTooLarge(ProtocolError):
    code = "request_too_large"
    rpc_code = -32006
    status_code = 413


class ProviderError(OrchestratorError):
    """A provider call failed. ``retryable`` tells the model actor's retry policy."""

    code = "provider_error"
    status_code = 502
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable  # type: ignore[misc]  # per-instance override of the class default


class ProviderTimeout(ProviderError):
    code = "timeout"
    status_code = 504
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class RateLimited(ProviderError):
    code = "rate_limited"
    status_code = 429
    retryable = True


class ProviderRejected(ProviderError):
    code = "provider_rejected"


class BadResponse(ProviderError):
    code = "bad_response"


class OverBudget(ProviderError):
    code = "over_budget"


class ActorCrashed(ProviderError):
    code = "actor_crashed"


class OverloadedError(OrchestratorError):
    code = "overloaded"
    rpc_code = -32001
    status_code = 429


class NoModelAvailable(OrchestratorError):
    code = "no_model_available"
    rpc_code = -32002
    status_code = 503


class JobTimeoutError(OrchestratorError):
    code = "job_timeout"
    rpc_code = -32003
    status_code = 504


class JobCancelled(OrchestratorError):
    code = "cancelled"
    rpc_code = -32004
    status_code = 499


class ShuttingDown(OrchestratorError):
    code = "shutting_down"
    rpc_code = -32005
    status_code = 503


class UnknownJob(OrchestratorError):
    code = "unknown_job"
    rpc_code = -32007
    status_code = 404


class RoundError(OrchestratorError):
    code = "round_failed"
    rpc_code = -32008
    status_code = 502


class SchemaError(OrchestratorError):
    code = "schema_failed"
    rpc_code = -32009
    status_code = 422


class BudgetExhausted(OrchestratorError):
    code = "budget_exhausted"
    rpc_code = -32010
    status_code = 402


class JobInterrupted(OrchestratorError):
    code = "interrupted"


def _all_subclasses(cls: type[OrchestratorError]) -> list[type[OrchestratorError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


ERRORS_BY_CODE: dict[str, type[OrchestratorError]] = {
    cls.code: cls for cls in _all_subclasses(OrchestratorError)
}
"""Every error class by its stable code (codes are unique; a test checks it)."""


def status_of(code: str) -> int:
    """The HTTP status of an error ``code`` (a failed job's, a reply's): 500 when unknown."""
    cls = ERRORS_BY_CODE.get(code)
    return cls.status_code if cls is not None else 500
