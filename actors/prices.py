"""Model prices: the configuration's, else the maintained table of ``genai-prices``.

A configured price is linear: USD per million input and output tokens. A price from the
table is asked with each call's own usage (``table_cost``), so a model with tiers
(``gemini-2.5-pro``: $1.25/$10 per million up to 200k prompt tokens, $2.50/$15 beyond) is
charged at the tier that call falls in; ``lookup`` gives the base tier, for display and as
the per-million figure a configuration shows.

A model whose price is neither configured nor in the table has an *unknown* price
(None): its calls count as $0 in ``cost_usd``, and a job with ``max_cost_usd`` that
includes it is refused, since the budget could not be kept.
"""

from __future__ import annotations

import functools
from typing import Any

FREE_PROVIDERS = frozenset({"local", "fake"})  # the embedded model and scripted replies
TABLE_PROVIDERS = {"openai": "openai", "gemini": "google"}  # ours -> genai-prices' id
BASE_TIER_TOKENS = 1_000  # a short call: the base tier of every tiered price


def _provider_id(provider: str, base_url: str | None) -> str | None:
    """The provider's own API is looked up by provider; an OpenAI-compatible server (a
    ``base_url``) or ``llama`` by the model id alone, across providers."""
    return TABLE_PROVIDERS.get(provider) if base_url is None else None


def _calc(model: str, provider_id: str | None, **usage: int) -> Any:
    """genai-prices' calculation, or None when it does not know the model."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # an install without it: every price must be configured
        return None
    try:
        return calc_price(Usage(**usage), model, provider_id=provider_id)
    except LookupError:
        return None
    except Exception as exc:  # a table that cannot answer must not stop the daemon
        from loguru import logger  # not at import: orchestrctl loads config, not logging

        logger.warning("genai-prices could not price {}: {!r}", model, exc)
        return None


@functools.lru_cache(maxsize=256)
def lookup(provider: str, model: str, base_url: str | None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens at the base tier, or None when unknown."""
    if provider in FREE_PROVIDERS:
        return (0.0, 0.0)
    n = BASE_TIER_TOKENS
    price = _calc(model, _provider_id(provider, base_url), input_tokens=n, output_tokens=n)
    if price is None:
        return None
    scale = 1_000_000 / n
    return float(price.input_price) * scale, float(price.output_price) * scale


def table_cost(
    provider: str,
    model: str,
    base_url: str | None,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
) -> float | None:
    """USD for one call of this usage, at the tier it falls in; None when unknown.
    ``cached_tokens`` (a part of ``input_tokens`` read from the provider's prompt cache)
    are charged at the cache-read price where the table has one."""
    if provider in FREE_PROVIDERS:
        return 0.0
    usage = {"input_tokens": max(0, input_tokens), "output_tokens": max(0, output_tokens)}
    if cached_tokens > 0:
        usage["cache_read_tokens"] = min(cached_tokens, usage["input_tokens"])
    price = _calc(model, _provider_id(provider, base_url), **usage)
    return None if price is None else float(price.total_price)
