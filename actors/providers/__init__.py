"""Provider adapters, one per provider, behind one narrow interface (``Provider``)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    call_provider,
    estimate_tokens,
)
from actors.providers.localserver import SharedResources

if TYPE_CHECKING:
    from actors.config import ModelConfig  # annotations only: config imports providers

# Imported on first use: a daemon pays only for the SDKs its configuration names.
PROVIDERS: dict[str, str] = {
    "openai": "actors.providers.openai:OpenAIProvider",
    "gemini": "actors.providers.gemini:GeminiProvider",
    "llama": "actors.providers.llama:LlamaProvider",
    "local": "actors.providers.local:LocalProvider",
    "fake": "actors.providers.fake:FakeProvider",
}


def provider_class(name: str) -> type[Provider]:
    """The adapter class of provider ``name`` (KeyError if there is none)."""
    module, _, attr = PROVIDERS[name].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module), attr)
    return cls


def make_provider(
    config: ModelConfig, environ: Mapping[str, str], shared: SharedResources | None = None
) -> Provider:
    """The adapter for ``config``; ``shared`` holds what an orchestrator's adapters share."""
    return provider_class(config.provider)(config, environ, shared)


def supports_tools(config: ModelConfig) -> bool:
    """Whether model ``config`` takes tools: a tool job leaves it out otherwise (and says
    so in the result's ``tools.left_out``)."""
    return provider_class(config.provider).tools_supported(config)


def unusable_models(models: Iterable[ModelConfig], environ: Mapping[str, str]) -> dict[str, str]:
    """``name -> why`` for every model that cannot work in this environment."""
    out = {}
    for model in models:
        reason = provider_class(model.provider).unusable(model, environ)
        if reason is not None:
            out[model.name] = reason
    return out


__all__ = [
    "PROVIDERS",
    "Provider",
    "ProviderRequest",
    "ProviderResponse",
    "SharedResources",
    "call_provider",
    "estimate_tokens",
    "make_provider",
    "provider_class",
    "supports_tools",
    "unusable_models",
]
