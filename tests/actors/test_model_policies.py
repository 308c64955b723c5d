"""The model actor's two small policies as pure units, without threads: the circuit
breaker's count (actors.health) and the slow-start window (actors.slowstart)."""

from __future__ import annotations

import pytest

from actors.health import Health
from actors.slowstart import SlowStart
from messages.errors import BadResponse, ProviderTimeout, ProviderUnavailable, RateLimited
from messages.events import ModelHealthy, ModelUnhealthy


def test_the_first_success_reports_the_model_healthy_and_later_ones_say_nothing() -> None:
    health = Health("a", 3, circuit_failures=2)
    assert health.note(None) == ModelHealthy(name="a", generation=3)
    assert health.note(None) is None


def test_failures_in_a_row_past_the_threshold_report_unhealthy_each_time_until_a_success() -> None:
    health = Health("a", 1, circuit_failures=2)
    health.note(None)
    assert health.note(ProviderTimeout("slow")) is None
    news = health.note(ProviderUnavailable("down " * 100))
    assert isinstance(news, ModelUnhealthy) and news.name == "a" and news.generation == 1
    assert news.reason.startswith("2 failed calls in a row (last: provider_unavailable: down")
    assert len(news.reason) < 260  # the provider's message is cut at 200 characters
    assert isinstance(health.note(BadResponse("junk")), ModelUnhealthy)  # and again
    assert health.note(None) == ModelHealthy(name="a", generation=1)  # the circuit may close
    assert health.note(ProviderTimeout("slow")) is None  # the count started again


@pytest.mark.parametrize("error", [RateLimited("429"), ProviderTimeout("slow")])
def test_without_a_threshold_or_for_a_429_nothing_is_reported_unhealthy(error) -> None:
    threshold = 1 if isinstance(error, RateLimited) else 0
    health = Health("a", 0, circuit_failures=threshold)
    health.note(None)
    assert [health.note(error) for _ in range(5)] == [None] * 5


def test_a_rate_limited_model_sends_one_call_until_the_first_comes_back() -> None:
    window = SlowStart(8, rate_limited=True)
    assert window.size == 1
    assert window.returned(rate_limited=False) is True  # the first: the limiter re-anchors
    assert window.size == 8
    assert window.returned(rate_limited=False) is False


def test_after_a_429_the_window_is_one_call_and_doubles_with_each_call_back() -> None:
    window = SlowStart(5, rate_limited=False)
    assert window.size == 5
    window.rate_limited()
    sizes = []
    for rate_limited in (True, False, False, False, False):
        window.returned(rate_limited)
        sizes.append(window.size)
    assert sizes == [1, 2, 4, 5, 5]  # a 429 coming back does not widen it
