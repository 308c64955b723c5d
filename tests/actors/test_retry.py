"""The retry policy: which errors retry, how often, how long."""

from __future__ import annotations

import pytest

from actors.retry import RetryPolicy
from messages.errors import (
    BadResponse,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)


@pytest.mark.parametrize(
    "error",
    [ProviderTimeout("t"), ProviderUnavailable("u", status=503), RateLimited("r", status=429)],
)
def test_retryable_errors_retry_until_attempts_run_out(error: Exception) -> None:
    state = RetryPolicy(max_attempts=3, backoff_min_s=0.5, backoff_max_s=8).start()
    first = state.next_delay(error)
    second = state.next_delay(error)
    assert first is not None and 0 <= first <= 8
    assert second is not None and 0 <= second <= 8
    assert state.attempt == 3
    assert state.next_delay(error) is None


@pytest.mark.parametrize(
    "error", [ProviderRejected("bad key", status=401), BadResponse("garbage"), ValueError("bug")]
)
def test_non_retryable_errors_give_up_at_once(error: Exception) -> None:
    state = RetryPolicy(max_attempts=5, backoff_min_s=0.5, backoff_max_s=8).start()
    assert state.next_delay(error) is None
    assert state.attempt == 1


def test_a_single_attempt_policy_never_retries() -> None:
    state = RetryPolicy(max_attempts=1, backoff_min_s=0.5, backoff_max_s=8).start()
    assert state.next_delay(ProviderTimeout("t")) is None
