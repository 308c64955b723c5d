"""``llama``: Llama models over plain HTTP with ``requests`` (one pooled session per actor).

``api = "ollama"`` (default, ``http://127.0.0.1:11434``) speaks Ollama's ``/api/chat``
as streamed NDJSON, with ``prompt_eval_count``/``eval_count`` as usage;
``api = "openai"`` speaks ``/v1/chat/completions`` for llama.cpp server, vLLM and
other compatible servers (default ``http://127.0.0.1:8080``). requests blocks, so
calls run on this provider's bounded pool (``max_concurrency`` threads), never on an
actor. ``requests``' own retries are off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    error_for_status,
    parse_json,
    parse_retry_after,
    token_count,
)
from actors.providers.openai import parse_chat_json
from messages.errors import BadResponse, ConfigError, ProviderUnavailable
from messages.results import Usage

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers

DEFAULT_URLS = {"ollama": "http://127.0.0.1:11434", "openai": "http://127.0.0.1:8080"}
CONNECT_TIMEOUT_S = 5.0


class LlamaProvider(Provider):
    name = "llama"
    honours_seed = True  # llama.cpp, Ollama and scripted replies repeat with a seed
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
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=config.max_concurrency, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        key = self.api_key("LLAMA_API_KEY")
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        call = self._ollama if self.api == "ollama" else self._openai
        result: ProviderResponse = await self.run_blocking(call, request)
        return result

    # --- the two dialects (blocking; run on the pool) -----------------------------------

    def _messages(self, request: ProviderRequest) -> list[dict[str, str]]:
        system = [{"role": "system", "content": request.system}] if request.system else []
        return [*system, {"role": "user", "content": request.prompt}]

    def _post(self, path: str, body: dict[str, Any], timeout_s: float, stream: bool) -> Any:
        response = self.session.post(
            self.base_url + path,
            json=body,
            timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s),
            stream=stream,
        )
        if response.status_code != 200:
            raise error_for_status(
                response.status_code,
                _error_message(response),
                parse_retry_after(dict(response.headers)),
            )
        return response

    def _ollama(self, request: ProviderRequest) -> ProviderResponse:
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "num_predict": request.max_tokens,
        }
        if request.seed is not None:
            options["seed"] = request.seed
        body = {
            "model": request.model,
            "messages": self._messages(request),
            "stream": True,
            "options": options,
        }
        with self._post("/api/chat", body, request.timeout_s, stream=True) as response:
            return parse_ollama_stream(response.iter_lines())

    def _openai(self, request: ProviderRequest) -> ProviderResponse:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": self._messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        response = self._post("/v1/chat/completions", body, request.timeout_s, stream=False)
        return parse_chat_json(parse_json(response.content))

    async def aclose(self) -> None:
        self.session.close()
        await super().aclose()


def _error_message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return f"HTTP {response.status_code}: {error or data}"


def parse_ollama_stream(lines: Iterable[bytes]) -> ProviderResponse:
    """Ollama's NDJSON chat stream: content chunks, then one ``done`` line with counts."""
    parts: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        chunk = parse_json(line)  # a garbage line is bad_response
        if not isinstance(chunk, dict):
            raise BadResponse(f"Ollama sent a line that is not an object: {line[:100]!r}")
        if chunk.get("error"):
            raise ProviderUnavailable(f"Ollama: {chunk['error']}")
        message = chunk.get("message") or {}
        if not isinstance(message, dict):
            raise BadResponse("Ollama sent a message that is not an object")
        parts.append(str(message.get("content") or ""))
        if chunk.get("done"):
            usage = Usage(
                input_tokens=token_count(chunk.get("prompt_eval_count"), "prompt_eval_count"),
                output_tokens=token_count(chunk.get("eval_count"), "eval_count"),
            )
            return ProviderResponse(text="".join(parts), usage=usage)
    raise BadResponse("Ollama's stream ended before its 'done' line (truncated)")
