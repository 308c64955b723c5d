"""The statistics of an evaluation, in plain Python (no numpy), each checked by tests
against hand-computed values.

- ``wilson``: the Wilson score interval of an accuracy (good at small n and near 0 or 1,
  where the normal interval leaves [0, 1]).
- ``mcnemar_exact``: the exact (binomial) two-sided McNemar test on paired right/wrong
  outcomes: only the items where the two systems disagree count.
- ``paired_bootstrap``: a percentile bootstrap interval of the accuracy difference,
  resampling items (so both systems keep their pairing), with a fixed seed.
- ``verdict``: what a comparison may claim, and never more.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal
ALPHA = 0.05
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 20261122


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of ``correct / n`` ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: ``only_a`` items right for A alone, ``only_b``
    for B alone; under the null each discordant item is a fair coin."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def paired_bootstrap(
    a: Sequence[bool],
    b: Sequence[bool],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """95% percentile interval of accuracy(a) - accuracy(b) over paired items."""
    if len(a) != len(b):
        raise ValueError("paired outcomes must have the same length")
    n = len(a)
    if n == 0:
        return -1.0, 1.0
    diffs = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(samples))
    low = means[math.floor(0.025 * (samples - 1))]
    high = means[math.ceil(0.975 * (samples - 1))]
    return low, high


def verdict(delta: float, ci95: tuple[float, float], p_value: float, n: int) -> str:
    """``better`` or ``worse`` only when the exact test rejects and the interval excludes
    zero; otherwise exactly what the data allows."""
    if p_value < ALPHA and (ci95[0] > 0 or ci95[1] < 0):
        return "better" if delta > 0 else "worse"
    return f"not distinguishable with n = {n}"
