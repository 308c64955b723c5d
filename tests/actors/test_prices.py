"""Prices from each call's real usage: a tiered model is charged at the tier the call falls
in (issue 21). The figures are the providers' published prices per million tokens."""

from __future__ import annotations

import pytest

from actors.config import config_from_dict
from actors.prices import lookup, table_cost


def _model(provider: str, model: str, **extra: object):
    return config_from_dict(
        {"models": [{"name": "m", "provider": provider, "model": model, **extra}]}
    ).models[0]


# (provider, model, input tokens, output tokens, USD in per Mtok, USD out per Mtok)
TIERS = [
    # Gemini 2.5 Pro: $1.25/$10 up to 200k prompt tokens, $2.50/$15 beyond.
    ("gemini", "gemini-2.5-pro", 34, 3, 1.25, 10.0),
    ("gemini", "gemini-2.5-pro", 150_000, 2_000, 1.25, 10.0),
    ("gemini", "gemini-2.5-pro", 300_000, 2_000, 2.50, 15.0),
    # Claude Sonnet 4.5 through an OpenAI-compatible gateway: $3/$15 up to 200k, $6/$22.50.
    ("openai-compatible", "claude-sonnet-4-5", 34, 3, 3.0, 15.0),
    ("openai-compatible", "claude-sonnet-4-5", 300_000, 2_000, 6.0, 22.5),
    # gpt-4o-mini has one tier: $0.15/$0.60.
    ("openai", "gpt-4o-mini", 34, 3, 0.15, 0.60),
    ("openai", "gpt-4o-mini", 300_000, 2_000, 0.15, 0.60),
]


@pytest.mark.parametrize(("provider", "model", "tokens_in", "tokens_out", "p_in", "p_out"), TIERS)
def test_a_call_is_charged_at_the_tier_its_usage_falls_in(
    provider: str, model: str, tokens_in: int, tokens_out: int, p_in: float, p_out: float
) -> None:
    extra = {"base_url": "http://127.0.0.1:9/v1"} if provider == "openai-compatible" else {}
    config = _model("openai" if extra else provider, model, **extra)
    expected = (tokens_in * p_in + tokens_out * p_out) / 1_000_000
    assert config.cost_usd(tokens_in, tokens_out) == pytest.approx(expected, rel=1e-9)


def test_the_issue_s_short_prompt_costs_the_base_tier() -> None:
    """A 34-token prompt with a 3-token answer was charged 0.00013 instead of 0.0000725."""
    gem = _model("gemini", "gemini-2.5-pro")
    assert gem.cost_usd(34, 3) == pytest.approx(0.0000725)


def test_the_shown_price_per_million_is_the_base_tier() -> None:
    gem = _model("gemini", "gemini-2.5-pro")
    assert (gem.price_in_per_mtok, gem.price_out_per_mtok) == pytest.approx((1.25, 10.0))
    assert lookup("gemini", "gemini-2.5-pro", None) == pytest.approx((1.25, 10.0))


def test_cached_input_tokens_are_charged_at_the_cache_read_price() -> None:
    # gemini-2.5-pro: cache reads at $0.125 per Mtok (base tier), against $1.25 uncached.
    full = table_cost("gemini", "gemini-2.5-pro", None, 1000, 100)
    cached = table_cost("gemini", "gemini-2.5-pro", None, 1000, 100, cached_tokens=500)
    assert full is not None and cached is not None
    assert full - cached == pytest.approx(500 * (1.25 - 0.125) / 1_000_000)


def test_a_configured_price_stays_linear() -> None:
    mine = _model("gemini", "gemini-2.5-pro", price_in_per_mtok=1.0, price_out_per_mtok=2.0)
    assert not mine.priced_by_table
    assert mine.cost_usd(300_000, 1_000_000) == pytest.approx(0.3 + 2.0)


def test_free_and_unknown_models_cost_nothing() -> None:
    assert table_cost("local", "smollm2", None, 10**6, 10**6) == 0.0
    assert table_cost("llama", "no-such-model-anywhere", "http://x/v1", 10, 10) is None
    assert _model("llama", "no-such-model-anywhere").cost_usd(10**6, 10**6) == 0.0


def test_priced_by_table_cannot_be_set_from_the_file() -> None:
    from messages.errors import ConfigError

    with pytest.raises(ConfigError, match="priced_by_table"):
        _model("openai", "gpt-4o-mini", priced_by_table=True)
