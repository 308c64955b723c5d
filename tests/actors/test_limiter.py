"""The limiter, pure, with a fake clock: no threads, no sleeps."""

from __future__ import annotations

import random

import pytest

from actors.limiter import Limiter, TokenBucket
from messages.errors import OverBudget


def drive(limiter: Limiter, costs: list[int], start: float = 0.0) -> list[tuple[float, int]]:
    """Admit ``costs`` in order as fast as the limiter allows; returns (time, cost)."""
    now = start
    admitted = []
    for cost in costs:
        wait = limiter.wait_s(cost, now)
        now += wait
        assert limiter.wait_s(cost, now) == pytest.approx(0, abs=1e-9)
        limiter.take(cost, now)
        admitted.append((now, cost))
    return admitted


def max_in_window(events: list[tuple[float, int]], window: float, weight: bool) -> float:
    best = 0.0
    for i, (t0, _) in enumerate(events):
        total = sum((c if weight else 1) for t, c in events[i:] if t <= t0 + window + 1e-12)
        best = max(best, total)
    return best


@pytest.mark.parametrize("margin_s", [0.0, 0.02])
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("window", [0.5, 1.0, 7.0, 60.0, 150.0])
def test_no_window_exceeds_burst_plus_rate_for_requests_or_tokens(
    seed: int, window: float, margin_s: float
) -> None:
    rng = random.Random(seed)
    rpm, burst, tpm = 120.0, 3.0, 6000.0
    limiter = Limiter(rpm=rpm, burst=burst, tpm=tpm, now=0.0, margin_s=margin_s)
    costs = [rng.randint(1, 900) for _ in range(300)]
    events = drive(limiter, costs)
    assert max_in_window(events, window, weight=False) <= burst + rpm / 60 * window + 1e-6
    assert max_in_window(events, window, weight=True) <= tpm + tpm / 60 * window + 1e-6


@pytest.mark.parametrize("margin_s", [0.0, 0.02, 0.5])
def test_saturation_delivers_at_least_98_percent_of_the_configured_rate(margin_s: float) -> None:
    limiter = Limiter(rpm=600, burst=10, tpm=None, now=0.0, margin_s=margin_s)
    events = drive(limiter, [1] * 5000)
    duration = events[-1][0] - events[0][0]
    rate = (len(events) - 10) / duration  # the first `burst` calls come free
    assert rate >= 0.98 * 600 / 60


def test_token_budget_under_saturation_is_used_at_rate() -> None:
    limiter = Limiter(rpm=None, burst=1, tpm=60_000, now=0.0)
    events = drive(limiter, [500] * 1000)
    duration = events[-1][0]
    tokens_after_burst = sum(c for _, c in events) - 60_000
    assert tokens_after_burst / duration >= 0.98 * 1000


def test_an_estimate_larger_than_the_bucket_is_rejected_at_once() -> None:
    limiter = Limiter(rpm=60, burst=1, tpm=1000, now=0.0)
    with pytest.raises(OverBudget, match="exceed"):
        limiter.check_admissible(1001)
    limiter.check_admissible(1000)  # exactly the bucket is fine


def test_retry_after_pauses_only_that_model() -> None:
    mine = Limiter(rpm=600, burst=5, tpm=None, now=0.0)
    other = Limiter(rpm=600, burst=5, tpm=None, now=0.0)
    mine.pause_until(12.5)
    assert mine.wait_s(1, 10.0) == pytest.approx(2.5)
    assert other.wait_s(1, 10.0) == 0
    assert mine.wait_s(1, 12.5) == 0


def test_a_shorter_pause_never_shortens_a_longer_one() -> None:
    limiter = Limiter(rpm=None, burst=1, tpm=None, now=0.0)
    limiter.pause_until(10)
    limiter.pause_until(5)
    assert limiter.wait_s(1, 0) == pytest.approx(10)


def test_reconcile_refunds_unused_tokens_and_charges_overruns() -> None:
    limiter = Limiter(rpm=None, burst=1, tpm=1000, now=0.0)
    limiter.take(800, 0.0)
    assert limiter.wait_s(800, 0.0) > 0
    limiter.reconcile(charged=800, actual=100, now=0.0)  # the call used far less
    assert limiter.wait_s(800, 0.0) == 0
    limiter.take(800, 0.0)
    limiter.reconcile(charged=800, actual=1000, now=0.0)  # the call used more: debt
    assert limiter.tokens is not None and limiter.tokens.level < 0


def test_no_limits_configured_means_never_wait() -> None:
    limiter = Limiter(rpm=None, burst=1, tpm=None, now=0.0)
    assert drive(limiter, [10**6] * 100)[-1][0] == 0


def test_bucket_refills_continuously_up_to_capacity() -> None:
    bucket = TokenBucket(capacity=10, rate=2, now=0.0)
    bucket.take(10, 0.0)
    assert bucket.wait_s(4, 0.0) == pytest.approx(2.0)
    assert bucket.wait_s(4, 2.0) == 0
    assert bucket.wait_s(10, 100.0) == 0
    assert bucket.wait_s(11, 100.0) == pytest.approx(0.5)


def test_the_reserve_tolerates_arrival_jitter_up_to_the_margin() -> None:
    """Paced by our limiter, then delayed by a varying network: an identical bucket at
    the provider never refuses a call while the jitter stays within the margin."""
    rng = random.Random(7)
    ours = Limiter(rpm=600, burst=2, tpm=None, now=0.0, margin_s=0.02)
    theirs = TokenBucket(capacity=2, rate=10, now=0.0)
    sends = [t for t, _ in drive(ours, [1] * 2000)]
    arrivals = sorted(t + rng.uniform(0.0, 0.019) for t in sends)
    for t in arrivals:
        assert theirs.wait_s(1, t) == pytest.approx(0, abs=1e-9)
        theirs.take(1, t)


def test_without_a_reserve_jitter_gets_refused() -> None:
    rng = random.Random(7)
    ours = Limiter(rpm=600, burst=2, tpm=None, now=0.0)
    theirs = TokenBucket(capacity=2, rate=10, now=0.0)
    refused = 0
    for t in sorted(t + rng.uniform(0.0, 0.019) for t, _ in drive(ours, [1] * 2000)):
        if theirs.wait_s(1, t) > 1e-9:
            refused += 1
        else:
            theirs.take(1, t)
    assert refused > 0


def test_reanchoring_after_a_slow_first_call_keeps_us_below_the_provider() -> None:
    ours = Limiter(rpm=600, burst=2, tpm=6000, now=0.0)
    ours.take(100, 0.0)  # sent at 0, but it reached the provider only at 0.3
    ours.reanchor(100, 0.35)  # it came back at 0.35
    assert ours.requests is not None and ours.requests.level == pytest.approx(1.0)
    assert ours.tokens is not None and ours.tokens.level == pytest.approx(5900)
    fresh = Limiter(rpm=600, burst=2, tpm=None, now=0.0)
    fresh.reanchor(1, 0.0)
    fresh.take(1, 0.0)
    assert fresh.wait_s(1, 0.0) == pytest.approx(0.1)  # never fuller than the provider


def test_calls_queued_during_a_pause_resume_at_the_buckets_pace_not_at_once() -> None:
    """A full bucket at the end of a Retry-After pause released every queued call at
    once: the provider then refused the burst, and the storm came back in waves."""
    limiter = Limiter(rpm=600, burst=5, tpm=None, now=0.0)  # 10 requests a second
    limiter.pause_until(2.0)
    now = 2.0
    admitted = []
    while len(admitted) < 5:
        wait = limiter.wait_s(1, now)
        if wait == 0:
            limiter.take(1, now)
            admitted.append(round(now, 3))
        else:
            now += max(wait, 1e-9)
    assert admitted == [2.0, 2.1, 2.2, 2.3, 2.4]
