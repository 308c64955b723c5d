"""``gemini``: Google's ``google-genai`` SDK, the successor of ``google-generativeai``
(which reached end of support on 30 Nov 2025).

The model actor owns one ``genai.Client`` and drives its async surface
(``client.aio``) on the I/O loop, so a slow Gemini call holds no thread. ``base_url``
goes through ``HttpOptions`` (gateways, our loopback tests); the system prompt is
``system_instruction``; usage comes from ``usage_metadata``. The SDK's retries are
off (``HttpRetryOptions(attempts=1)``). ``RESOURCE_EXHAUSTED`` (429) carries its
``RetryInfo`` delay into the limiter's pause. Tools, tool turns and sampling: see
``actors.providers.geminiwire``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    bounded_pause,
    error_for_status,
    parse_retry_after,
    token_count,
    transport_error,
)
from actors.providers.geminiwire import config, contents, read_parts
from messages.errors import BadResponse, ProviderError, ProviderRejected, ProviderUnavailable
from messages.results import Usage
from messages.tools import ToolCall

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers

KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


class GeminiProvider(Provider):
    name = "gemini"
    supports_tools = True
    default_model = "gemini-2.5-flash"

    def __init__(self, config: ModelConfig, environ: Mapping[str, str], shared: Any = None) -> None:
        super().__init__(config, environ, shared)
        envs = (config.api_key_env,) if config.api_key_env else KEY_ENVS
        key = next((environ[e] for e in envs if environ.get(e)), None)
        if key is None:
            raise ProviderRejected(f"{config.name}: no API key: set ${' or $'.join(envs)}")
        self._key = key
        self._client: genai.Client | None = None

    @classmethod
    def unusable(cls, config: ModelConfig, environ: Mapping[str, str]) -> str | None:
        envs = (config.api_key_env,) if config.api_key_env else KEY_ENVS
        if not any(environ.get(e) for e in envs):
            return f"no API key: set ${' or $'.join(envs)}"
        return None

    def _get_client(self) -> genai.Client:
        if self._client is None:
            self._client = genai.Client(
                api_key=self._key,
                http_options=types.HttpOptions(
                    base_url=self.config.base_url,
                    timeout=int(self.config.timeout_s * 1000),
                    retry_options=types.HttpRetryOptions(attempts=1),
                ),
            )
        return self._client

    def prepare(self) -> None:
        self._get_client().aio.models  # noqa: B018  # builds the async client and its modules

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        settings = config(request)
        models = self._get_client().aio.models
        if request.on_delta is not None:  # generate_content_stream: pieces as they come
            parts: list[str] = []
            calls: list[ToolCall] = []
            last = None
            chunks = await models.generate_content_stream(
                model=request.model, contents=contents(request), config=settings
            )
            async for chunk in chunks:
                last = chunk
                text, more = read_parts(chunk)
                calls += more
                if text:
                    parts.append(text)
                    request.emit(text)
            if not parts and not calls:
                raise BadResponse(f"Gemini answered no text{_why_empty(last)}")
            return ProviderResponse(
                text="".join(parts), usage=_usage(last), tool_calls=tuple(calls)
            )
        response = await models.generate_content(
            model=request.model, contents=contents(request), config=settings
        )
        return parse_response(response)

    def translate(self, exc: BaseException) -> ProviderError | None:
        return translate_gemini(exc)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
        await super().aclose()


def parse_response(response: Any) -> ProviderResponse:
    text, calls = read_parts(response)
    if not text and not calls:
        reason = _why_empty(response)
        raise BadResponse(f"Gemini answered no text{reason}")
    return ProviderResponse(text=text, usage=_usage(response), tool_calls=calls)


def _usage(response: Any) -> Usage | None:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return None
    return Usage(
        input_tokens=token_count(meta.prompt_token_count, "promptTokenCount"),
        output_tokens=token_count(meta.candidates_token_count, "candidatesTokenCount"),
        cached_tokens=token_count(
            getattr(meta, "cached_content_token_count", None), "cachedContentTokenCount"
        ),
    )


def _why_empty(response: Any) -> str:
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and getattr(feedback, "block_reason", None):
        return f" (blocked: {feedback.block_reason})"
    candidates = getattr(response, "candidates", None) or []
    if candidates and getattr(candidates[0], "finish_reason", None):
        return f" (finish reason: {candidates[0].finish_reason})"
    return " (no candidates)"


def retry_delay(details: Any) -> float | None:
    """The ``RetryInfo.retryDelay`` ("1.5s") of a Google API error body, in seconds."""
    try:
        items = details.get("error", details).get("details", [])
    except AttributeError:
        return None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{0,9})?)s\s*", str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def translate_gemini(exc: BaseException) -> ProviderError | None:
    """google-genai exceptions as ours (the one place they are translated)."""
    if isinstance(exc, genai_errors.APIError):
        headers = getattr(getattr(exc, "response", None), "headers", None)
        after = bounded_pause(retry_delay(exc.details)) or parse_retry_after(
            dict(headers) if headers else None
        )
        message = f"{exc.status or exc.code}: {exc.message or exc.details}"
        if not isinstance(exc.code, int):
            return ProviderUnavailable(message)
        return error_for_status(exc.code, message, after)
    if isinstance(exc, genai_errors.UnknownApiResponseError | pydantic.ValidationError):
        return BadResponse(f"Gemini's answer has the wrong shape: {exc}")
    if isinstance(exc, genai_errors.ContinuationInterruptedError):
        return ProviderUnavailable(str(exc))
    if isinstance(
        exc,
        genai_errors.UnknownFunctionCallArgumentError
        | genai_errors.UnsupportedFunctionError
        | genai_errors.FunctionInvocationError,
    ):
        return ProviderRejected(str(exc))
    return transport_error(exc)
