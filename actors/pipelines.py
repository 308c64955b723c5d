"""Pipelines: the stages a job runs, and how a confidence gate moves between them.

A pipeline is a list of stages, each one kind:

- ``initial``: the models answer the question in parallel.
- ``meta``: each model sees the others' anonymous answers and writes an improved one.
- ``chain``: the models in turn, each revising the previous output (the first drafts an
  answer when nothing came before, else revises the current best answer). Each step's
  output becomes its model's answer; the stage's answer is the last output.
- ``vote``: no call; a plurality over the current answers (confidence: the winner's share).
- ``rank``: each model ranks the others' anonymous answers, never its own; Borda-combined
  (confidence: the winner's normalised margin).
- ``synthesis``: one model writes the final answer from the current answers (the top two
  after a ``rank``); it may be a model outside the participants (a chairman). Confidence:
  the agreement of the answers it combined.

A stage may name its ``models`` (or ``model``), a ``template`` (its prompt, with the
placeholders of its kind) and a ``system`` prompt (its role, instead of each model's own).

**Gates.** ``vote``, ``rank`` and ``synthesis`` may set ``min_confidence``. When their
confidence reaches it, their answer is the job's answer and the stages after it are
skipped. Below it, the gate fires (recorded in the result's ``escalations``) and the
pipeline goes on at ``fallback``: the next later stage of that kind (skipping the ones
between), or, when there is none, a stage of that kind with default settings run in
place, after which the stages after the gate follow (and when none is left after a
``meta`` fallback, the gate's own stage runs once more, ungated). ``next`` goes on with
the stage right after the gate (a cascade: cheap models, a gated vote, then the experts;
the result's ``answered_by`` says which step answered). ``fail`` ends the job with
``round_failed`` and the partial result.

Quality-per-dollar settings (``samples``, ``temperature``, ``weights``, ``dataset``,
``exclude_outliers``) are checked in ``actors.stageopts``.

``[pipeline]`` (``rounds`` + ``strategy``) is the default pipeline: ``default_stages``
turns it into stages whose results are exactly those of the rounds it always ran.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from actors import stageopts
from actors.checks import check_template, check_validate
from actors.stagekinds import KINDS, STRATEGIES, Stage, StageKind
from actors.stages import STAGES
from messages.errors import ConfigError

# What the configuration checks, as the stage kinds' registry says (see actors.stages).
GATED = tuple(k for k, spec in STAGES.items() if spec.gated)  # may carry min_confidence
FALLBACKS = (*(k for k, spec in STAGES.items() if spec.fallback), "next", "fail")
OPENING = tuple(k for k, spec in STAGES.items() if spec.opens)  # may come first
DECIDING = tuple(k for k, spec in STAGES.items() if spec.decides)  # output: a final answer
CONFIGURABLE = tuple(k for k in KINDS if not STAGES[k].internal)  # a pipeline may name it
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RESERVED_NAMES = (*STRATEGIES, "default")  # strategies (HTTP model names)


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedPipeline:
    name: str
    stages: tuple[Stage, ...]
    validate: Mapping[str, Any] | None = None  # checks the final answer must pass

    def describe(self) -> str:
        return " -> ".join(f"[{s.describe()}]" for s in self.stages)


@dataclass(slots=True)
class Route:
    """Where a running pipeline is: ``at`` indexes its stages; ``extra`` holds the stages
    to run before going on there (fallbacks run in place)."""

    at: int = 0
    extra: list[Stage] = field(default_factory=list)


def default_stages(rounds: tuple[str, ...], strategy: str) -> tuple[Stage, ...]:
    """``[pipeline]``'s rounds and strategy as stages: ``vote`` drops a trailing
    synthesis (the vote itself is counted when the job ends); ``rank`` adds a ranking
    round after the last answering round."""
    answering = tuple(Stage(kind=cast(StageKind, r)) for r in rounds if r != "synthesis")
    synthesis = (Stage(kind="synthesis"),) if rounds[-1] == "synthesis" else ()
    if strategy == "vote":
        return answering
    if strategy == "rank":
        return (*answering, Stage(kind="rank"), *synthesis)
    return (*answering, *synthesis)


def next_after_gate(stages: tuple[Stage, ...], gate_at: int, fallback: str) -> Route:
    """The route when the gate at ``gate_at`` fired towards ``fallback`` (not ``fail``);
    ``next``: on with the stage right after the gate (a cascade)."""
    if fallback == "next":
        return Route(at=gate_at + 1)
    for i in range(gate_at + 1, len(stages)):
        if stages[i].kind == fallback:
            return Route(at=i)
    extra = [Stage(kind=cast(StageKind, fallback))]
    rest = gate_at + 1
    if fallback == "meta" and rest >= len(stages):  # nothing decides after it: re-decide
        gate = stages[gate_at]
        extra.append(
            Stage(kind=gate.kind, models=gate.models, template=gate.template, system=gate.system)
        )
    return Route(at=rest, extra=extra)


# --- configuration --------------------------------------------------------------------


def parse_pipelines(data: Any, model_names: set[str]) -> Mapping[str, NamedPipeline]:
    """``[pipelines.NAME]`` tables, validated (a ``ConfigError`` names the bad key)."""
    if not isinstance(data, Mapping):
        raise ConfigError("pipelines", "expected tables [pipelines.NAME]")
    out = {}
    for name, table in data.items():
        prefix = f"pipelines.{name}"
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ConfigError(prefix, "a pipeline's name is letters, digits, '_', '.', '-'")
        if name in RESERVED_NAMES:
            raise ConfigError(prefix, f"{name!r} is a strategy's name; choose another")
        out[name] = _pipeline(name, table, prefix, model_names)
    return types.MappingProxyType(out)


def _pipeline(name: str, table: Any, prefix: str, model_names: set[str]) -> NamedPipeline:
    if not isinstance(table, Mapping):
        raise ConfigError(prefix, "expected a table with stages = [...]")
    ConfigError.check_keys(prefix, table, ("stages", "validate"))
    raw = table.get("stages")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{prefix}.stages", "expected a non-empty list of stage tables")
    stages = tuple(_stage(f"{prefix}.stages[{i}]", s, model_names) for i, s in enumerate(raw))
    for i, stage in enumerate(stages):
        if stage.gated and stage.fallback == "next":
            stageopts.check_next(f"{prefix}.stages[{i}]", i, len(stages))
    if stages[0].kind not in OPENING:
        raise ConfigError(
            f"{prefix}.stages[0].kind",
            "the first stage answers the question: " + " or ".join(OPENING),
        )
    if stages[-1].kind not in DECIDING:
        raise ConfigError(
            f"{prefix}.stages[{len(stages) - 1}].kind",
            f"the last stage must decide the answer: one of {list(DECIDING)}",
        )
    validate = table.get("validate")
    if validate is not None:
        check_validate(f"{prefix}.validate", validate)
        validate = types.MappingProxyType(dict(validate))
    return NamedPipeline(name=name, stages=stages, validate=validate)


STAGE_KEYS = (
    *("kind", "models", "model", "template", "system", "min_confidence", "fallback"),
    *stageopts.KEYS,
)


def _stage(prefix: str, data: Any, model_names: set[str]) -> Stage:
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, "expected a table {kind = ...}")
    ConfigError.check_keys(prefix, data, STAGE_KEYS)
    kind = data.get("kind")
    if kind not in CONFIGURABLE:
        raise ConfigError(f"{prefix}.kind", f"required, one of {list(CONFIGURABLE)}; got {kind!r}")
    if "models" in data and "model" in data:
        raise ConfigError(f"{prefix}.model", "set models or model, not both")
    models = _models(prefix, data, model_names)
    template = _text(f"{prefix}.template", data.get("template"))
    system = _text(f"{prefix}.system", data.get("system"))
    if STAGES[kind].callers is None and (models, template, system) != (None, None, None):
        raise ConfigError(prefix, f"a {kind} stage calls no model: no models, template or system")
    if template is not None:
        check_template(f"{prefix}.template", template, STAGES[kind].template or kind)
    if kind == "chain" and models is not None and len(models) < 1:
        raise ConfigError(f"{prefix}.models", "a chain needs at least one model")
    min_confidence = data.get("min_confidence")
    fallback = data.get("fallback", "synthesis")
    if min_confidence is not None:
        if kind not in GATED:
            raise ConfigError(
                f"{prefix}.min_confidence", f"only {list(GATED)} stages have a confidence gate"
            )
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, int | float):
            raise ConfigError(f"{prefix}.min_confidence", "expected a number in [0, 1]")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ConfigError(f"{prefix}.min_confidence", "expected a number in [0, 1]")
        min_confidence = float(min_confidence)
    elif "fallback" in data:
        raise ConfigError(f"{prefix}.fallback", "a fallback needs min_confidence (the gate)")
    if fallback not in FALLBACKS:
        raise ConfigError(f"{prefix}.fallback", f"one of {list(FALLBACKS)}; got {fallback!r}")
    return Stage(
        kind=cast(StageKind, kind),
        models=models,
        template=template,
        system=system,
        min_confidence=min_confidence,
        fallback=fallback,
        **stageopts.parse(prefix, data, kind),
    )


def _models(prefix: str, data: Mapping[str, Any], model_names: set[str]) -> tuple[str, ...] | None:
    if "model" in data:
        value, key = [data["model"]], f"{prefix}.model"
        if not isinstance(data["model"], str):
            raise ConfigError(key, "expected a model's name")
    elif "models" in data:
        value, key = data["models"], f"{prefix}.models"
        if not isinstance(value, list) or not value:
            raise ConfigError(key, "expected a non-empty list of model names")
    else:
        return None
    for name in value:
        if not isinstance(name, str) or name not in model_names:
            raise ConfigError(key, f"no model named {name!r} (known: {sorted(model_names)})")
    return tuple(dict.fromkeys(value))


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "expected a non-empty string")
    return value
