"""Which systems an evaluation compares, the jobs each one runs per question, and what
those jobs are expected to cost before anything is spent.

Systems: a configured model's name (that model alone, one ``initial`` round), a strategy
(``synthesize``, ``vote``, ``rank``: ``[pipeline]``'s rounds over every model), a named
pipeline, ``self:MODEL`` (the model sampled once per configured model, its answers voted
by the grader's key: self-consistency, the Self-MoA baseline) and ``oracle`` (right when
any single model is: the ceiling of picking one model's answer; no calls of its own).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any, Literal, get_args

from actors.config import STRATEGIES, Config
from actors.evaluation.dataset import Item
from actors.providers.base import estimate_tokens

SystemKind = Literal["model", "strategy", "pipeline", "self", "oracle"]
SYSTEM_KINDS: tuple[SystemKind, ...] = get_args(SystemKind)  # the registry of system kinds
EVAL_TAG = "eval"  # the metadata key every evaluation job carries (its dataset's digest)
CONTEXT_TOKENS_PER_ANSWER = 200  # a meta, rank or synthesis prompt carries the answers


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    name: str
    price_in_per_mtok: float | None
    price_out_per_mtok: float | None
    max_tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Setup:
    """What the evaluation needs to know of the orchestrator (from a Config, or from a
    daemon's ``status``)."""

    models: tuple[ModelInfo, ...]
    rounds: tuple[str, ...]
    strategy: str
    pipelines: Mapping[str, Sequence[tuple[str, int]]]  # name -> (kind, model count) per stage
    # What each system's answers depend on ("model:NAME" for a model alone, "*" for the
    # rest): part of every job's key, so a changed model, template or pipeline is asked
    # again while the answers it cannot change are kept.
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    job_timeout_s: float = 600.0  # how long one job may take: a client waits that long

    @classmethod
    def of(cls, config: Config) -> Setup:
        n = len(config.models)
        return cls(
            fingerprints=fingerprints(config),
            job_timeout_s=config.pipeline.job_timeout_s,
            models=tuple(
                ModelInfo(
                    name=m.name,
                    price_in_per_mtok=m.price_in_per_mtok,
                    price_out_per_mtok=m.price_out_per_mtok,
                    max_tokens=m.max_tokens,
                )
                for m in config.models
            ),
            rounds=config.pipeline.rounds,
            strategy=config.pipeline.strategy,
            pipelines={
                name: [(s.kind, len(s.models) if s.models else n) for s in p.stages]
                for name, p in config.pipelines.items()
            },
        )

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Setup:
        """From the daemon's ``status`` (its ``eval`` section)."""
        info = status["eval"]
        return cls(
            models=tuple(ModelInfo(**m) for m in info["models"]),
            rounds=tuple(info["rounds"]),
            strategy=info["strategy"],
            pipelines={k: [tuple(s) for s in v] for k, v in info["pipelines"].items()},
            fingerprints=dict(info.get("fingerprints") or {}),
            job_timeout_s=float(info.get("job_timeout_s") or 600.0),
        )

    def to_status(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": m.name,
                    "price_in_per_mtok": m.price_in_per_mtok,
                    "price_out_per_mtok": m.price_out_per_mtok,
                    "max_tokens": m.max_tokens,
                }
                for m in self.models
            ],
            "rounds": list(self.rounds),
            "strategy": self.strategy,
            "pipelines": {k: [list(s) for s in v] for k, v in self.pipelines.items()},
            "fingerprints": dict(self.fingerprints),
            "job_timeout_s": self.job_timeout_s,
        }

    def fingerprint(self, system: System) -> str:
        if system.kind in ("model", "self"):
            return self.fingerprints.get(f"model:{system.model}", "")
        if system.kind == "pipeline":  # its own stages (a daemon of before: "*")
            return self.fingerprints.get(f"pipeline:{system.name}", self.fingerprints.get("*", ""))
        return self.fingerprints.get("*", "")

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)


def fingerprints(config: Config) -> dict[str, str]:
    """Digests of the configuration each system's answers depend on: ``model:NAME`` (a
    model alone), ``pipeline:NAME`` (a named pipeline: its stages and what every job
    depends on) and ``*`` (the strategies). Adding or changing one named pipeline asks
    only that pipeline again; ``[pipeline] default`` changes no evaluated system."""

    def digest(*parts: Any) -> str:
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    single = (config.templates.system, config.templates.initial)
    out = {f"model:{m.name}": digest(m.answer_settings, single) for m in config.models}
    shared = (
        [m.answer_settings for m in config.models],
        astuple(config.templates),
        essence(dataclasses.replace(config.pipeline, default=None)),
    )
    out["*"] = digest(*shared)
    for name, named in config.pipelines.items():
        out[f"pipeline:{name}"] = digest(*shared, essence(named))
    return out


def essence(value: Any) -> Any:
    """``value`` with every dataclass field left at its default dropped: a setting added
    later (at its default) does not make an evaluation ask everything again."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: essence(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.default is dataclasses.MISSING or getattr(value, f.name) != f.default
        }
    if isinstance(value, Mapping):
        return {str(k): essence(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [essence(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class System:
    name: str
    kind: SystemKind
    model: str | None = None  # model and self
    hidden: bool = False  # run for the oracle, not reported

    def samples(self, setup: Setup) -> int:
        """Jobs per question: self-consistency samples once per configured model (at
        least three, so that a vote can have a majority)."""
        if self.kind == "self":
            return max(3, len(setup.models))
        return 0 if self.kind == "oracle" else 1


class PlanError(ValueError):
    """A system name that means nothing here."""


def systems(setup: Setup, names: Sequence[str] | None) -> tuple[System, ...]:
    """The systems to run, in order (the default: every model, the three strategies,
    oracle); the single models the oracle needs are added, hidden, when not asked for."""
    if names is None:
        names = [*setup.model_names, *STRATEGIES, "oracle"]
    out: list[System] = []
    for name in dict.fromkeys(names):
        if name in setup.model_names:
            out.append(System(name=name, kind="model", model=name))
        elif name in STRATEGIES:
            out.append(System(name=name, kind="strategy"))
        elif name in setup.pipelines:
            out.append(System(name=name, kind="pipeline"))
        elif name.startswith("self:") and name[5:] in setup.model_names:
            out.append(System(name=name, kind="self", model=name[5:]))
        elif name == "oracle":
            out.append(System(name=name, kind="oracle"))
        else:
            known = [*setup.model_names, *STRATEGIES, *setup.pipelines, "self:MODEL", "oracle"]
            raise PlanError(f"unknown system {name!r}; known: {', '.join(known)}")
    if any(s.kind == "oracle" for s in out):
        present = {s.model for s in out if s.kind == "model"}
        out += [
            System(name=m, kind="model", model=m, hidden=True)
            for m in setup.model_names
            if m not in present
        ]
    return tuple(out)


def job_params(system: System, item: Item, sample: int = 0) -> dict[str, Any]:
    """The ``ask`` params of one job (without metadata)."""
    params: dict[str, Any] = {"prompt": item.prompt}
    pattern = item.grader.answer_pattern
    if pattern is not None:
        params["answer_pattern"] = pattern
    if system.kind in ("model", "self"):
        params.update(models=[system.model], rounds=["initial"])
    elif system.kind == "strategy":
        params["strategy"] = system.name
    elif system.kind == "pipeline":
        params["pipeline"] = system.name
    return params


def job_key(digest: str, system: System, item: Item, sample: int, fingerprint: str = "") -> str:
    """Where a job's answer is kept: the dataset, the question, the system, the sample,
    and the configuration the answer depends on."""
    raw = json.dumps(
        [digest, item.id, item.prompt, system.name, sample, fingerprint], ensure_ascii=False
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


# --- the estimate ------------------------------------------------------------------------


def calls_per_question(setup: Setup, system: System) -> list[tuple[str | None, int]]:
    """(model or None for "any", calls) a system makes on one question."""
    n = len(setup.models)
    if system.kind in ("model", "self"):
        return [(system.model, system.samples(setup))]
    if system.kind == "oracle":
        return []
    if system.kind == "pipeline":
        total = 0
        for kind, count in setup.pipelines[system.name]:
            total += {"vote": 0, "synthesis": 1}.get(kind, count)
        return [(None, total)]
    answering = sum(1 for r in setup.rounds if r != "synthesis")
    synthesis = 1 if setup.rounds[-1] == "synthesis" else 0
    if system.name == "vote":
        return [(None, n * answering)]
    if system.name == "rank":
        return [(None, n * answering + n + synthesis)]
    return [(None, n * answering + synthesis)]


def estimate(setup: Setup, jobs: Sequence[tuple[System, Item]]) -> tuple[int, float]:
    """(calls, USD at most) of ``jobs`` (one per sample): every reply counted at its
    model's max_tokens, a call to "any" model priced at the dearest, unknown prices as
    0; a ``judge`` question adds one call per system."""

    def cost(model: ModelInfo, prompt_tokens: int) -> float:
        price_in = model.price_in_per_mtok or 0.0
        price_out = model.price_out_per_mtok or 0.0
        return (prompt_tokens * price_in + model.max_tokens * price_out) / 1_000_000

    by_name = {m.name: m for m in setup.models}
    judge = max(setup.models, key=lambda m: cost(m, 1000))
    calls, usd = 0, 0.0
    context = CONTEXT_TOKENS_PER_ANSWER * len(setup.models)
    for system, item in jobs:
        tokens = estimate_tokens(item.prompt)
        for model, count in calls_per_question(setup, system):
            count = 1 if system.kind == "self" else count  # one job per sample
            calls += count
            if model is not None:
                usd += count * cost(by_name[model], tokens)
            else:
                usd += count * max(cost(m, tokens + context) for m in setup.models)
        if item.grader.name == "judge" and not system.hidden:
            calls += 1
            usd += cost(judge, tokens + 2 * CONTEXT_TOKENS_PER_ANSWER)
    return calls, usd
