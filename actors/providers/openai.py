"""``openai``: the official openai SDK (3.x, over httpx2), chat completions.

``base_url`` points it at any OpenAI-compatible server (llama.cpp server, vLLM,
gateways, the loopback servers of our tests). Tools, tool turns and every sampling
param (``stop``, ``seed``, ``top_p``, the penalties, ``reasoning_effort``) go by their
OpenAI names (``actors.providers.openaiwire``). The SDK's own retries are off; the
model actor's tenacity policy is the only retry layer. Exceptions are translated
in ``translate`` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pydantic

from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    error_for_status,
    parse_json,
    parse_retry_after,
    token_count,
    transport_error,
)
from actors.providers.openaiwire import CallDeltas, chat_fields, parse_calls
from messages.errors import (
    BadResponse,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from messages.results import Usage

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers

NO_KEY = "not-needed"  # OpenAI-compatible local servers accept any key


def chat_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    return request.chat()


def parse_chat_json(data: Any) -> ProviderResponse:
    """A chat-completions body (plain JSON) as text, tool calls and usage; anything
    malformed is ``BadResponse``. Reading the fields we need costs far less than building
    the SDK's pydantic model of the whole answer."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BadResponse(f"no choices in the provider's answer: {str(data)[:200]}") from None
    calls = parse_calls(message)
    if text is None and calls:
        text = ""
    if not isinstance(text, str):
        raise BadResponse("the provider's answer has no message content")
    raw = data.get("usage")
    usage = chat_usage(raw) if isinstance(raw, dict) else None
    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    return ProviderResponse(
        text=text,
        usage=usage,
        tool_calls=calls,
        finish_reason=reason if isinstance(reason, str) else None,
    )


def chat_usage(raw: dict[str, Any]) -> Usage:
    """A chat completion's ``usage``: prompt and completion tokens, and the prompt's
    tokens read from the provider's cache (``prompt_tokens_details.cached_tokens``), which
    are priced at the cache-read price."""
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=token_count(raw.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=token_count(raw.get("completion_tokens"), "completion_tokens"),
        cached_tokens=token_count(cached, "cached_tokens"),
    )


class ChatStream:
    """A streamed chat completion (server-sent events of ``chat.completion.chunk``), read
    line by line: each content piece goes to ``request.emit`` as it arrives; usage comes
    from the last chunk when the server sends it (``stream_options.include_usage``)."""

    def __init__(self, request: ProviderRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.done = False
        self.calls = CallDeltas()
        self.finish_reason: str | None = None

    def feed(self, line: str) -> None:
        if not line.startswith("data:"):
            return  # blank separators, comments, event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return
        chunk = parse_json(payload)
        if not isinstance(chunk, dict):
            raise BadResponse(f"a stream chunk that is not an object: {payload[:100]!r}")
        if isinstance(chunk.get("error"), dict):
            raise ProviderUnavailable(f"the stream ended with an error: {chunk['error']}")
        raw = chunk.get("usage")
        if isinstance(raw, dict):
            self.usage = chat_usage(raw)
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise BadResponse("a stream chunk whose choices are not a list")
        for choice in choices[:1]:
            if not isinstance(choice, dict):
                raise BadResponse("a stream chunk whose choice is not an object")
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            self.calls.feed(delta.get("tool_calls"))
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.parts.append(text)
                self.request.emit(text)

    def result(self) -> ProviderResponse:
        if not self.done and not self.parts and not self.calls.pending:
            raise BadResponse("the stream ended before any answer (truncated)")
        if not self.done and self.finish_reason is None and self.calls.pending:
            raise BadResponse("the stream ended in the middle of a tool call (truncated)")
        return ProviderResponse(
            text="".join(self.parts),
            usage=self.usage,
            tool_calls=self.calls.calls(),
            finish_reason=self.finish_reason,
        )


class OpenAIProvider(Provider):
    name = "openai"
    supports_tools = True
    default_model = "gpt-4o-mini"
    default_key_env = "OPENAI_API_KEY"
    needs_key = True  # without a base_url (api.openai.com) a key is required

    def __init__(self, config: ModelConfig, environ: Mapping[str, str], shared: Any = None) -> None:
        super().__init__(config, environ, shared)
        key = self.api_key(self.default_key_env)
        if key is None and config.base_url is None and self.needs_key:
            raise ProviderRejected(
                f"{config.name}: no API key: set ${config.api_key_env or self.default_key_env}"
            )
        self._key = key or NO_KEY
        self._client: openai.AsyncOpenAI | None = None

    @classmethod
    def unusable(cls, config: ModelConfig, environ: Mapping[str, str]) -> str | None:
        variable = config.api_key_env or cls.default_key_env
        if cls.needs_key and config.base_url is None and not environ.get(variable):
            return f"no API key: set ${variable} (or give a base_url for a compatible server)"
        return None

    def _get_client(self) -> openai.AsyncOpenAI:
        # Made on first use, on the I/O loop that will drive its connections.
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self.config.timeout_s,
            )
        return self._client

    @property
    def base_url(self) -> str | None:
        return self.config.base_url

    def messages(self, request: ProviderRequest) -> list[dict[str, Any]]:
        return chat_messages(request)

    def fields(self, request: ProviderRequest) -> dict[str, Any]:
        """Tools and sampling params, by their OpenAI names (all of them)."""
        return chat_fields(request)

    def prepare(self) -> None:
        self._get_client().chat.completions  # noqa: B018  # imports the resource modules

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": self.messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": request.timeout_s,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        kwargs.update(self.fields(request))
        # The SDK does the HTTP, auth and status errors; we read the JSON ourselves.
        if request.on_delta is not None:
            return await self._stream(request, kwargs)
        raw = await self._get_client().chat.completions.with_raw_response.create(**kwargs)
        return parse_chat_json(parse_json(raw.http_response.content))

    async def _stream(self, request: ProviderRequest, kwargs: dict[str, Any]) -> ProviderResponse:
        stream = ChatStream(request)
        kwargs = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
        completions = self._get_client().chat.completions
        async with completions.with_streaming_response.create(**kwargs) as response:
            async for line in response.iter_lines():
                stream.feed(line)
                if stream.done:
                    break
        return stream.result()

    def translate(self, exc: BaseException) -> ProviderError | None:
        return translate_openai(exc)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        await super().aclose()


def translate_openai(exc: BaseException) -> ProviderError | None:
    """openai/httpx2 exceptions as ours; shared by every OpenAI-compatible adapter."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(str(exc) or "the provider timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"cannot reach the provider: {exc}")
    if isinstance(exc, openai.APIStatusError):
        retry_after = parse_retry_after(dict(exc.response.headers))
        return error_for_status(exc.status_code, exc.message, retry_after)
    if isinstance(exc, openai.APIResponseValidationError | pydantic.ValidationError):
        return BadResponse(f"the provider's answer has the wrong shape: {exc}")
    if isinstance(exc, openai.LengthFinishReasonError | openai.ContentFilterFinishReasonError):
        return BadResponse(str(exc))
    if isinstance(exc, openai.APIError | httpx2.HTTPError):
        return transport_error(exc) or ProviderUnavailable(str(exc))
    if isinstance(exc, openai.OpenAIError):
        return ProviderRejected(str(exc))
    return transport_error(exc)
