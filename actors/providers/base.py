"""The one narrow interface every provider adapter implements.

An adapter turns a ``ProviderRequest`` into a ``ProviderResponse`` with one
coroutine, ``complete``, run on the I/O loop. Failures leave it as a
``messages.errors.ProviderError``: each adapter translates its SDK's exceptions in
one place, ``translate``. Anything else escaping an adapter is a bug, and crashes
(then restarts) that model's actor.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import functools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from messages.commands import Sampling
from messages.conversation import Message
from messages.errors import (
    BadResponse,
    ConfigError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from messages.results import Usage
from messages.tools import ToolCall, ToolChoice, ToolSpec, check_offered

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderRequest:
    model: str  # the provider's model id
    prompt: str | None  # None: the history is the whole call (it ends with a tool result)
    system: str | None
    max_tokens: int
    temperature: float
    seed: int | None
    timeout_s: float
    participant: str = ""  # the configured model name, for logs and fakes
    round_name: str = ""
    call_id: str = ""
    history: tuple[Message, ...] = ()  # the conversation's earlier turns (no system turns)
    sampling: Sampling = field(default_factory=Sampling)  # stop, top_p, penalties, effort
    tools: tuple[ToolSpec, ...] = ()  # offered: the answer may call them
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # Set: stream, and hand each piece of text to it as it arrives (on the I/O loop; it
    # must not block). The response still carries the whole text and the usage.
    on_delta: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def emit(self, text: str | None) -> None:
        if text and self.on_delta is not None:
            self.on_delta(text)

    def chat(self) -> list[dict[str, Any]]:
        """The call as OpenAI chat messages (also llama.cpp's form): the system prompt,
        the conversation's earlier turns (tool calls and results too), then this call's
        prompt (none when the conversation ends with a tool result)."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        earlier = [message.to_dict() for message in self.history]
        last = [] if self.prompt is None else [{"role": "user", "content": self.prompt}]
        return [*system, *earlier, *last]

    @property
    def wants_tools(self) -> bool:
        """Whether the tools go to the model (``tool_choice`` ``none``: they do not)."""
        return bool(self.tools) and (self.tool_choice is None or self.tool_choice.mode != "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderResponse:
    text: str  # may be empty when the answer is tool calls
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None  # the provider's own word, for logs


MAX_RETRY_AFTER_S = 60.0  # a provider's pause is honoured up to this (the openai SDK's cap)
MAX_REPORTED_TOKENS = 10**9  # a usage count beyond this is garbage, not a real call
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# --- the one guarded parse of everything a provider sends -------------------------------


def parse_json(body: bytes | str) -> Any:
    """A provider's JSON body; anything Python cannot parse (bad syntax, integers over
    the 4,300-digit limit, nesting that overflows the parser, invalid UTF-8) is
    ``BadResponse``, never a crash of the model actor."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise BadResponse(f"the provider answered a body that is not usable JSON: {exc}") from None


def token_count(value: Any, what: str) -> int:
    """A usage count as reported (None or missing: 0); anything but a whole, finite,
    plausible number of tokens (``1e999``, -3, "many") is ``BadResponse``."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadResponse(f"the provider reported {what} = {str(value)[:40]!r}, not a number")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise BadResponse(f"the provider reported {what} = {value!r}, not a whole number")
    if not 0 <= value <= MAX_REPORTED_TOKENS:
        raise BadResponse(f"the provider reported an implausible {what}: {str(value)[:40]}")
    return int(value)


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates replaced by U+FFFD: a provider's answer must
    be storable and sendable as UTF-8."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def checked(response: Any, request: ProviderRequest | None = None) -> ProviderResponse:
    """What an adapter returned, made safe to pass on (the last line of the boundary):
    text or tool calls, and calls only to functions ``request`` offered."""
    if not isinstance(response, ProviderResponse) or not isinstance(response.text, str):
        raise BadResponse(f"the adapter returned {type(response).__name__}, not text")
    usage = response.usage
    if usage is not None:
        usage = Usage(
            input_tokens=token_count(usage.input_tokens, "input tokens"),
            output_tokens=token_count(usage.output_tokens, "output tokens"),
            cached_tokens=min(  # a part of the input, never more than it
                token_count(usage.cached_tokens, "cached tokens"), usage.input_tokens
            ),
        )
    calls = response.tool_calls
    if calls:
        offered = request.tools if request is not None and request.wants_tools else ()
        why = check_offered(calls, offered)
        if why is not None:
            raise BadResponse(f"the model {why}")
        if request is not None and request.parallel_tool_calls is False:
            calls = calls[:1]  # providers with no such flag (Gemini, Ollama): one call
    elif not response.text and request is not None and request.wants_tools:
        raise BadResponse("the model answered neither text nor a tool call")
    return ProviderResponse(
        text=clean_text(response.text),
        usage=usage,
        tool_calls=calls,
        finish_reason=response.finish_reason,
    )


def tool_call(name: Any, arguments: Any, call_id: Any = None) -> ToolCall:
    """A call from a provider's answer; arguments that are not a JSON object (or a name
    that is not a string) are ``BadResponse`` for this model."""
    from messages.tools import ToolError

    try:
        return ToolCall.create(name=name, arguments=arguments, id=call_id or None)
    except ToolError as exc:
        raise BadResponse(f"the model proposed an unusable tool call: {exc.message}") from None


def estimate_tokens(text: str) -> int:
    """A cheap, conservative token estimate (about 4 characters a token)."""
    return len(text) // 4 + 1


def bounded_pause(seconds: float | None) -> float | None:
    """A provider's requested pause, within [0, MAX_RETRY_AFTER_S]; None if it is not a
    number (NaN). ``inf`` and ``3600`` become the cap: one model's pause must not stall
    every later job until its deadline."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date),
    bounded by ``bounded_pause``."""
    return bounded_pause(_retry_after(headers, now))


def _retry_after(headers: Mapping[str, str] | None, now: float | None) -> float | None:
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(status: int, message: str, retry_after: float | None = None) -> ProviderError:
    """The ProviderError for an HTTP status: 429 rate-limited; 408/409/5xx retryable."""
    if status == 429:
        return RateLimited(message, status=status, retry_after=retry_after)
    if status in (408, 409) or status >= 500:
        return ProviderUnavailable(message, status=status, retry_after=retry_after)
    return ProviderRejected(message, status=status)


def bad_json(exc: BaseException) -> BadResponse | None:
    """A garbage body, as the SDKs surface it when they parse it themselves, becomes
    ``BadResponse``: bad syntax, invalid UTF-8, nesting that overflows the parser,
    integers over Python's digit limit, numbers too large for a float."""
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError | RecursionError):
        return BadResponse(f"the provider answered a body that is not usable JSON: {exc!r}")
    if isinstance(exc, OverflowError) or (
        isinstance(exc, ValueError) and "integer string conversion" in str(exc)
    ):
        return BadResponse(f"the provider answered a number Python cannot hold: {exc}")
    return None


@functools.cache
def transport_classes() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout classes, connection classes) of every HTTP stack an SDK may use here."""
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    import httpx2

    timeouts += [httpx2.TimeoutException]
    transport += [httpx2.TransportError]
    try:  # google-genai may also drive plain httpx or aiohttp when they are installed
        import httpx

        timeouts.append(httpx.TimeoutException)
        transport.append(httpx.TransportError)
    except ImportError:
        pass
    try:
        import aiohttp

        timeouts.append(aiohttp.ServerTimeoutError)
        transport.append(aiohttp.ClientError)
    except ImportError:
        pass
    return tuple(timeouts), tuple(transport)


def transport_error(exc: BaseException) -> ProviderError | None:
    """Timeouts, refused or dropped connections and garbage bodies, from any HTTP stack."""
    garbage = bad_json(exc)
    if garbage is not None:
        return garbage
    timeouts, transport = transport_classes()  # imported on first use: fast daemon start
    if isinstance(exc, timeouts):
        return ProviderTimeout(f"the provider timed out: {exc}")
    if isinstance(exc, transport):
        return ProviderUnavailable(f"cannot reach the provider: {exc}")
    return None


class Provider(abc.ABC):
    """Base of the adapters. Subclasses set ``name`` and ``default_model`` and
    declare their own config keys in ``OPTIONS`` (key -> (types, default))."""

    name: ClassVar[str]
    default_model: ClassVar[str] = ""
    honours_seed: ClassVar[bool] = False  # a seed makes its answers repeatable
    supports_tools: ClassVar[bool] = False  # sends tools and parses tool calls (else left out)
    OPTIONS: ClassVar[dict[str, tuple[tuple[type, ...], Any]]] = {}

    def __init__(self, config: ModelConfig, environ: Mapping[str, str], shared: Any = None) -> None:
        self.config = config
        self.environ = environ
        self.shared = shared  # actors.providers.SharedResources of the orchestrator, if any
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def validate_options(cls, prefix: str, options: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in options.items():
            if key not in cls.OPTIONS:
                known = ", ".join(sorted(cls.OPTIONS)) or "none"
                raise ConfigError(
                    f"{prefix}.{key}",
                    f"unknown key for provider {cls.name!r} (its own keys: {known})",
                )
            types_, _ = cls.OPTIONS[key]
            if not isinstance(value, types_) or (isinstance(value, bool) and bool not in types_):
                names = " or ".join(t.__name__ for t in types_)
                raise ConfigError(f"{prefix}.{key}", f"expected {names}, got {value!r}")
            out[key] = value
        for key, (_, default) in cls.OPTIONS.items():
            out.setdefault(key, default)
        return out

    @classmethod
    def tools_supported(cls, config: ModelConfig) -> bool:
        """Whether this model takes tools (a tool job leaves it out otherwise)."""
        return cls.supports_tools

    @classmethod
    def unusable(cls, config: ModelConfig, environ: Mapping[str, str]) -> str | None:
        """Why this model cannot work in this environment (a missing key, a missing
        extra), or None. Checked by ``--check-config`` and before the actor starts, so a
        model that cannot work is reported once, not restarted in a loop."""
        return None

    def option(self, key: str) -> Any:
        return self.config.options.get(key, self.OPTIONS[key][1])

    def api_key(self, default_env: str) -> str | None:
        return self.environ.get(self.config.api_key_env or default_env) or None

    def prepare(self) -> None:  # noqa: B027  # optional hook, empty by default
        """Do the slow one-time work (SDK clients, lazy imports) on the model actor's
        thread at start, not on the I/O loop during the first call, where it would
        stall every model's calls and bunch up calls the limiter had spaced."""

    @abc.abstractmethod
    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        """Answer ``request`` or raise; runs on the I/O loop."""

    def translate(self, exc: BaseException) -> ProviderError | None:
        """This provider's exception as a ``ProviderError``; None if it is not one of ours."""
        return transport_error(exc)

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        """Run a blocking SDK call on this provider's bounded pool (max_concurrency)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.config.max_concurrency,
                thread_name_prefix=f"provider-{self.config.name}",
            )
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


async def call_provider(provider: Provider, request: ProviderRequest) -> ProviderResponse:
    """One attempt, bounded by ``request.timeout_s``; every failure leaves as ProviderError,
    except bugs (anything the adapter does not recognise), which propagate. The answer
    leaves through ``checked``: its text valid Unicode, its usage plausible."""
    try:
        response = await asyncio.wait_for(provider.complete(request), request.timeout_s)
        return checked(response, request)
    except ProviderError:
        raise
    except TimeoutError:
        raise ProviderTimeout(f"no answer within {request.timeout_s:.1f}s") from None
    except Exception as exc:
        translated = provider.translate(exc)
        if translated is None:
            raise
        raise translated from exc
