"""Provider adapters, one per provider, behind one narrow interface (``Provider``)."""

from __future__ import annotations

from collections.abc import Mapping

from actors.config import ModelConfig
from actors.providers.base import (
    Provider,
    ProviderRequest,
    ProviderResponse,
    call_provider,
    estimate_tokens,
)
from actors.providers.fake import FakeProvider
from actors.providers.gemini import GeminiProvider
from actors.providers.llama import LlamaProvider
from actors.providers.local import LocalProvider, SharedResources
from actors.providers.openai import OpenAIProvider

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "gemini": GeminiProvider,
    "llama": LlamaProvider,
    "local": LocalProvider,
    "fake": FakeProvider,
}


def provider_class(name: str) -> type[Provider]:
    return PROVIDERS[name]


def make_provider(
    config: ModelConfig, environ: Mapping[str, str], shared: SharedResources | None = None
) -> Provider:
    """The adapter for ``config``; ``shared`` holds what an orchestrator's adapters share."""
    return PROVIDERS[config.provider](config, environ, shared)


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
]
