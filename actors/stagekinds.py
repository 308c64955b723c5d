"""The names of the stage kinds and strategies, and ``Stage``, a configured stage: a leaf
(it imports nothing of the engine), so the configuration, the pipelines and the stage
implementations (``actors.stages``, which registers a ``StageSpec`` per kind and checks it
agrees with these names) all import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

StageKind = Literal[
    "initial", "meta", "chain", "vote", "rank", "synthesis", "propose", "decide"
]  # the last two: tool jobs only (internal)
Strategy = Literal["synthesize", "vote", "rank"]  # what [pipeline] and a request choose

KINDS: tuple[StageKind, ...] = get_args(StageKind)
# A strategy is the [pipeline] name of the stage kind that decides the answer.
STRATEGIES: Mapping[Strategy, StageKind] = MappingProxyType(
    {"synthesize": "synthesis", "vote": "vote", "rank": "rank"}
)
# The round a kind adds to the result, where it is not the kind's own name.
ROUND_NAMES: Mapping[str, str] = MappingProxyType(
    {"rank": "ranking", "propose": "initial", "decide": "synthesis"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    kind: StageKind
    models: tuple[str, ...] | None = None  # None: the job's participants
    template: str | None = None  # None: [templates]' entry for the kind
    system: str | None = None  # None: each model's own role
    min_confidence: float | None = None  # a gate (vote, rank, synthesis)
    fallback: str = "synthesis"  # "next": a cascade goes on with the stage after the gate
    samples: int = 1  # initial: answers per model, each with its own seed
    temperature: float | None = None  # initial: None = the request's or the model's
    weights: str | None = None  # vote: "accuracy" or "confidence" (None: one each)
    dataset: str | None = None  # vote with weights = "accuracy": whose evaluations
    exclude_outliers: bool = False  # meta, synthesis: leave out flagged panelists

    @property
    def round_name(self) -> str:
        """The name of the round it adds to the result (``rank`` keeps ``ranking``)."""
        return ROUND_NAMES.get(self.kind, self.kind)

    @property
    def gated(self) -> bool:
        return self.min_confidence is not None

    def describe(self) -> str:
        parts: list[str] = [self.kind]
        if self.models is not None:
            parts.append("models=" + ",".join(self.models))
        if self.template is not None:
            parts.append("template=custom")
        if self.system is not None:
            parts.append("system=custom")
        if self.min_confidence is not None:
            parts.append(f"min_confidence={self.min_confidence:g} fallback={self.fallback}")
        if self.samples != 1:
            parts.append(f"samples={self.samples}")
        if self.temperature is not None:
            parts.append(f"temperature={self.temperature:g}")
        if self.weights is not None:
            parts.append(f"weights={self.weights}" + (f":{self.dataset}" if self.dataset else ""))
        if self.exclude_outliers:
            parts.append("exclude_outliers")
        return " ".join(parts)
