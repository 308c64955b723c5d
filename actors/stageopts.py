"""A pipeline stage's quality-per-dollar settings (CONTRACT §16), checked where they apply.

- ``samples`` (``initial``): each model answers this many times, each with its own seed;
  every sample counts in a following vote (self-consistency inside a pipeline).
- ``temperature`` (``initial``): the stage's sampling temperature (instead of the
  request's or the model's).
- ``weights`` (``vote``): ``"accuracy"`` (each answer weighs its model's measured
  accuracy) or ``"confidence"`` (the confidence the answer states, CISC-style); absent,
  every answer counts 1.
- ``dataset`` (``vote`` with ``weights = "accuracy"``): whose evaluations measure the
  accuracy (absent: every evaluation together).
- ``exclude_outliers`` (``meta``, ``synthesis``): leave out the panelists the agreement
  history flags as outliers (``actors.outliers``).

A gate's ``fallback = "next"`` (a cascade) is checked with the gate, in ``pipelines``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messages.errors import ConfigError

KEYS = ("samples", "temperature", "weights", "dataset", "exclude_outliers")
MAX_SAMPLES = 16
WEIGHTS = ("accuracy", "confidence")
WHERE = {
    "samples": ("initial",),
    "temperature": ("initial",),
    "weights": ("vote",),
    "dataset": ("vote",),
    "exclude_outliers": ("meta", "synthesis"),
}


def parse(prefix: str, data: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The stage's settings among ``KEYS`` (only those given), each checked; a
    ``ConfigError`` names the key that is wrong or out of place."""
    out: dict[str, Any] = {}
    for key in KEYS:
        if key not in data:
            continue
        if kind not in WHERE[key]:
            raise ConfigError(f"{prefix}.{key}", f"only {list(WHERE[key])} stages take {key}")
        out[key] = CHECKS[key](f"{prefix}.{key}", data[key])
    if "dataset" in out and out.get("weights") != "accuracy":
        raise ConfigError(f"{prefix}.dataset", 'a dataset needs weights = "accuracy"')
    return out


def _samples(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLES:
        raise ConfigError(key, f"expected a whole number from 1 to {MAX_SAMPLES}")
    return value


def _temperature(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise ConfigError(key, "expected a number from 0 to 2")
    return float(value)


def _weights(key: str, value: Any) -> str:
    if value not in WEIGHTS:
        raise ConfigError(key, f"one of {list(WEIGHTS)}; got {value!r}")
    return str(value)


def _dataset(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "expected a dataset's name (as `orchestrctl eval` reports it)")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "expected true or false")
    return value


CHECKS = {
    "samples": _samples,
    "temperature": _temperature,
    "weights": _weights,
    "dataset": _dataset,
    "exclude_outliers": _flag,
}


def check_next(prefix: str, index: int, count: int) -> None:
    """A ``fallback = "next"`` gate needs a stage after it to go on with."""
    if index >= count - 1:
        raise ConfigError(
            f"{prefix}.fallback", '"next" goes on with the stage after the gate: there is none'
        )
