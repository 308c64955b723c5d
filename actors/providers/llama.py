"""``llama``: Llama models over HTTP with httpx2's async client (one pooled client per
actor, on the I/O loop: no thread waits on a socket).

``api = "ollama"`` (default, ``http://127.0.0.1:11434``) speaks Ollama's ``/api/chat``
as streamed NDJSON, read line by line as it arrives, with ``prompt_eval_count``/
``eval_count`` as usage; ``api = "openai"`` speaks ``/v1/chat/completions`` for llama.cpp
server, vLLM and other compatible servers (default ``http://127.0.0.1:8080``). The client
never retries by itself: the model actor's policy is the only retry layer.

Tools and sampling. ``api = "openai"`` sends everything by its OpenAI name, like the
openai adapter. ``api = "ollama"`` sends ``tools``, assistant ``tool_calls`` with the
arguments as an object, ``tool`` turns (with ``tool_name``), and ``stop``, ``seed``,
``top_p``, ``presence_penalty`` and ``frequency_penalty`` in ``options``;
``reasoning_effort`` becomes ``think`` (``none``: false; ``minimal``/``low``: "low";
``medium``; ``high``/``xhigh``: "high"; a model that cannot think answers 400 and the
reply fails naming it). Ollama has no ``tool_choice``: ``none`` sends no tools, a named
function sends only that tool, ``required`` sends them all (a model that answers text
anyway is a text proposal, which a ``required`` vote does not count).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx2

from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    error_for_status,
    parse_json,
    parse_retry_after,
    token_count,
    tool_call,
)
from actors.providers.openai import ChatStream, parse_chat_json
from actors.providers.openaiwire import MAX_CALLS, chat_fields
from messages.conversation import Message
from messages.errors import BadResponse, ConfigError, ProviderUnavailable
from messages.results import Usage
from messages.tools import ToolCall

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers

DEFAULT_URLS = {"ollama": "http://127.0.0.1:11434", "openai": "http://127.0.0.1:8080"}
CONNECT_TIMEOUT_S = 5.0
MAX_ERROR_BODY = 64 * 1024  # what an error response may give us to quote
THINK = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high"}
THINK["xhigh"] = "high"
OLLAMA_OPTIONS = ("stop", "top_p", "presence_penalty", "frequency_penalty")


class LlamaProvider(Provider):
    name = "llama"
    honours_seed = True  # llama.cpp, Ollama and scripted replies repeat with a seed
    supports_tools = True  # both dialects carry tools (a model without a template refuses)
    default_model = "llama3.2"
    OPTIONS = {"api": ((str,), "ollama")}

    @classmethod
    def validate_options(cls, prefix: str, options: Mapping[str, Any]) -> dict[str, Any]:
        out = super().validate_options(prefix, options)
        if out["api"] not in DEFAULT_URLS:
            raise ConfigError(f"{prefix}.api", f"must be one of {sorted(DEFAULT_URLS)}")
        return out

    def __init__(self, config: ModelConfig, environ: Mapping[str, str], shared: Any = None) -> None:
        super().__init__(config, environ, shared)
        self.api = self.option("api")
        base = (config.base_url or DEFAULT_URLS[self.api]).rstrip("/")
        self.base_url = base.removesuffix("/v1") if self.api == "openai" else base
        key = self.api_key("LLAMA_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client: httpx2.AsyncClient | None = None  # made on the I/O loop, first call

    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self.base_url,
                headers=self.headers,
                limits=httpx2.Limits(max_connections=self.config.max_concurrency),
                follow_redirects=False,
            )
        return self._client

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        if self.api == "ollama":
            return await self._ollama(request)
        return await self._openai(request)

    # --- the two dialects ---------------------------------------------------------------

    def _messages(self, request: ProviderRequest) -> list[dict[str, Any]]:
        return request.chat()

    @staticmethod
    def _timeout(request: ProviderRequest) -> httpx2.Timeout:
        return httpx2.Timeout(request.timeout_s, connect=min(CONNECT_TIMEOUT_S, request.timeout_s))

    async def _ollama(self, request: ProviderRequest) -> ProviderResponse:
        stream = self.client().stream(
            "POST", "/api/chat", json=ollama_body(request), timeout=self._timeout(request)
        )
        async with stream as response:
            await _check(response)
            return await parse_ollama_lines(response.aiter_lines(), request)

    async def _openai(self, request: ProviderRequest) -> ProviderResponse:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": self._messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(chat_fields(request))
        if request.on_delta is not None:  # server-sent events, read as they arrive
            body.update(stream=True, stream_options={"include_usage": True})
            chat = ChatStream(request)
            stream = self.client().stream(
                "POST", "/v1/chat/completions", json=body, timeout=self._timeout(request)
            )
            async with stream as response:
                await _check(response)
                async for line in response.aiter_lines():
                    chat.feed(line)
                    if chat.done:
                        break
            return chat.result()
        response = await self.client().post(
            "/v1/chat/completions", json=body, timeout=self._timeout(request)
        )
        await _check(response)
        return parse_chat_json(parse_json(response.content))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await super().aclose()


def ollama_body(request: ProviderRequest) -> dict[str, Any]:
    """The ``/api/chat`` body: messages, tools and sampling in Ollama's own form."""
    options: dict[str, Any] = {
        "temperature": request.temperature,
        "num_predict": request.max_tokens,
    }
    if request.seed is not None:
        options["seed"] = request.seed
    sampling = request.sampling.to_dict()
    options.update({k: sampling[k] for k in OLLAMA_OPTIONS if k in sampling})
    body: dict[str, Any] = {
        "model": request.model,
        "messages": ollama_messages(request),
        "stream": True,
        "options": options,
    }
    if request.wants_tools:
        choice = request.tool_choice
        named = choice is not None and choice.mode == "function"
        body["tools"] = [
            t.to_dict()
            for t in request.tools
            if not named or t.name == choice.name  # type: ignore[union-attr]  # named implies a choice
        ]
    if request.sampling.reasoning_effort is not None:
        body["think"] = THINK[request.sampling.reasoning_effort]
    return body


def ollama_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """The call as Ollama chat messages: tool calls carry their arguments as objects, and
    a tool turn names the function whose result it is."""
    names = {c.id: c.name for m in request.history for c in m.tool_calls}
    out = [{"role": "system", "content": request.system}] if request.system else []
    out += [_ollama_message(m, names) for m in request.history]
    if request.prompt is not None:
        out.append({"role": "user", "content": request.prompt})
    return out


def _ollama_message(message: Message, names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    if message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls
        ]
    if message.role == "tool" and message.tool_call_id in names:
        out["tool_name"] = names[message.tool_call_id]
    return out


async def _check(response: httpx2.Response) -> None:
    """A non-200 answer as our error, quoting (the start of) the server's own message."""
    if response.status_code == 200:
        return
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= MAX_ERROR_BODY:
            break
    raise error_for_status(
        response.status_code,
        _error_message(response.status_code, body),
        parse_retry_after(dict(response.headers)),
    )


def _error_message(status: int, body: bytes) -> str:
    try:
        data = parse_json(body)
    except BadResponse:
        return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return f"HTTP {status}: {error or data}"


async def parse_ollama_lines(
    lines: AsyncIterable[str], request: ProviderRequest
) -> ProviderResponse:
    """Ollama's NDJSON chat stream, line by line as it arrives: content chunks, then one
    ``done`` line with the token counts (a stream that ends before it is truncated)."""
    stream = OllamaStream(request)
    async for line in lines:
        done = stream.feed(line)
        if done is not None:
            return done
    raise stream.truncated()


class OllamaStream:
    """One Ollama chat stream's state: the content so far."""

    def __init__(self, request: ProviderRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.calls: list[ToolCall] = []

    def feed(self, line: bytes | str) -> ProviderResponse | None:
        """Take one line; the response once the ``done`` line is in, else None."""
        if not line.strip():
            return None
        chunk = parse_json(line)  # a garbage line is bad_response
        if not isinstance(chunk, dict):
            raise BadResponse(f"Ollama sent a line that is not an object: {line[:100]!r}")
        if chunk.get("error"):
            raise ProviderUnavailable(f"Ollama: {chunk['error']}")
        message = chunk.get("message") or {}
        if not isinstance(message, dict):
            raise BadResponse("Ollama sent a message that is not an object")
        self.parts.append(str(message.get("content") or ""))
        self.request.emit(self.parts[-1])
        self._take_calls(message.get("tool_calls"))
        if not chunk.get("done"):
            return None
        usage = Usage(
            input_tokens=token_count(chunk.get("prompt_eval_count"), "prompt_eval_count"),
            output_tokens=token_count(chunk.get("eval_count"), "eval_count"),
        )
        reason = chunk.get("done_reason")
        return ProviderResponse(
            text="".join(self.parts),
            usage=usage,
            tool_calls=tuple(self.calls),
            finish_reason=reason if isinstance(reason, str) else None,
        )

    def _take_calls(self, raw: Any) -> None:
        """Ollama sends each tool call whole, arguments as an object (or JSON text)."""
        if raw is None:
            return
        if not isinstance(raw, list) or len(self.calls) + len(raw) > MAX_CALLS:
            raise BadResponse(f"Ollama's tool_calls are not a list of at most {MAX_CALLS}")
        for item in raw:
            function = item.get("function") if isinstance(item, dict) else None
            if not isinstance(function, dict):
                raise BadResponse(f"Ollama sent a tool call without a function: {str(item)[:120]}")
            call_id = item.get("id") if isinstance(item.get("id"), str) else None
            self.calls.append(tool_call(function.get("name"), function.get("arguments"), call_id))

    @staticmethod
    def truncated() -> BadResponse:
        return BadResponse("Ollama's stream ended before its 'done' line (truncated)")
