"""The stage kinds a pipeline is made of, one module each, and their registry.

Each kind is a ``StageSpec`` (``actors.stages.base``): ``start`` (what it sends) and, for
a kind that decides the answer, ``read`` (how its outcome is read), with the facts the
configuration checks (its template, whether it may open a pipeline, carry a gate, be a
gate's fallback). The coordinator runs any kind through ``STAGES``; ``pipelines`` checks
a configured stage against it.

To add a kind: write its module here (a ``SPEC = StageSpec(...)``), add its name to
``StageKind`` (``actors.stagekinds``, with its round's name in ``ROUND_NAMES`` if it is
not the kind's) and its spec to ``STAGES``, and test it; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from actors.stagekinds import KINDS, STRATEGIES, StageKind, Strategy
from actors.stages import broadcast, chain, rank, synthesis, tools, vote
from actors.stages.base import Run, StageSpec

STAGES: Mapping[StageKind, StageSpec] = MappingProxyType(
    {
        "initial": broadcast.INITIAL,
        "meta": broadcast.META,
        "chain": chain.SPEC,
        "vote": vote.SPEC,
        "rank": rank.SPEC,
        "synthesis": synthesis.SPEC,
        "propose": tools.PROPOSE,
        "decide": tools.DECIDE,
    }
)


__all__ = ["KINDS", "STAGES", "STRATEGIES", "Run", "StageKind", "StageSpec", "Strategy"]
