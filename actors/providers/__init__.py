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
from actors.providers.openai import OpenAIProvider

PROVIDERS: dict[str, type[Provider]] = {
    "fake": FakeProvider,
    "openai": OpenAIProvider,
}


def provider_class(name: str) -> type[Provider]:
    return PROVIDERS[name]


def make_provider(config: ModelConfig, environ: Mapping[str, str]) -> Provider:
    return PROVIDERS[config.provider](config, environ)


__all__ = [
    "PROVIDERS",
    "Provider",
    "ProviderRequest",
    "ProviderResponse",
    "call_provider",
    "estimate_tokens",
    "make_provider",
    "provider_class",
]
