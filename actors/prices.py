"""Model prices: the configuration's, else the maintained table of ``genai-prices``.

A model whose price is neither configured nor in the table has an *unknown* price
(None): its calls count as $0 in ``cost_usd``, and a job with ``max_cost_usd`` that
includes it is refused, since the budget could not be kept.
"""

from __future__ import annotations

import functools

FREE_PROVIDERS = frozenset({"local", "fake"})  # the embedded model and scripted replies
TABLE_PROVIDERS = {"openai": "openai", "gemini": "google"}  # ours -> genai-prices' id


@functools.lru_cache(maxsize=256)
def lookup(provider: str, model: str, base_url: str | None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for ``model``, or None when unknown. The
    provider's own API is looked up by provider; an OpenAI-compatible server (a
    ``base_url``) or ``llama`` by the model id alone, across providers."""
    if provider in FREE_PROVIDERS:
        return (0.0, 0.0)
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # an install without it: every price must be configured
        return None
    provider_id = TABLE_PROVIDERS.get(provider) if base_url is None else None
    try:
        per_million = calc_price(
            Usage(input_tokens=1_000_000, output_tokens=1_000_000), model, provider_id=provider_id
        )
    except LookupError:
        return None
    except Exception as exc:  # a table that cannot answer must not stop the daemon
        from loguru import logger  # not at import: orchestrctl loads config, not logging

        logger.warning("genai-prices could not price {}: {!r}", model, exc)
        return None
    return float(per_million.input_price), float(per_million.output_price)
