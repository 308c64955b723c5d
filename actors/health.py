"""A model's health as its actor sees it: the circuit breaker's input.

Each call's final outcome (after retries) is noted. Provider failures that say the
model is unusable right now, in a row, past ``circuit_failures`` make the model
unhealthy (reported each time); the first success after that, or the first since the
actor started, makes it healthy. The supervisor, told, opens and closes the circuit.
"""

from __future__ import annotations

from messages.errors import ProviderError
from messages.events import ModelHealthy, ModelUnhealthy

CIRCUIT_ERRORS = frozenset({"timeout", "provider_unavailable", "provider_rejected", "bad_response"})
"""Provider failures that say the model is unusable right now (a 429 has its own pause)."""


class Health:
    """One model actor's count of failures in a row, and what to tell the supervisor."""

    def __init__(self, name: str, generation: int, circuit_failures: int) -> None:
        self.name = name
        self.generation = generation
        self.circuit_failures = circuit_failures  # 0: never report the model unhealthy
        self.failing = 0  # provider failures in a row (after retries)
        self.answered = False  # told the supervisor of a success since this actor started

    def note(self, error: ProviderError | None) -> ModelHealthy | ModelUnhealthy | None:
        """A call ended with ``error`` (None: it succeeded): the news for the supervisor,
        if any."""
        if error is None:
            news = None
            if not self.answered or self.failing >= self.circuit_failures > 0:
                news = ModelHealthy(name=self.name, generation=self.generation)
            self.answered, self.failing = True, 0
            return news
        if error.code not in CIRCUIT_ERRORS:
            return None
        self.failing += 1
        if not self.failing >= self.circuit_failures > 0:
            return None
        return ModelUnhealthy(
            name=self.name,
            generation=self.generation,
            reason=f"{self.failing} failed calls in a row (last: {error.code}: "
            f"{error.message[:200]})",
        )
