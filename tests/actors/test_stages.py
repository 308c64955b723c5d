"""The stage kinds' registry: one spec per typed kind, the strategies it backs, and the
import picture it keeps (no cycle between config and pipelines)."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

from actors import pipelines
from actors.stages import KINDS, STAGES, STRATEGIES, StageKind, Strategy
from actors.strategies import Outcome, vote


def test_every_typed_kind_has_one_spec_named_after_it() -> None:
    assert get_args(StageKind) == KINDS
    assert list(STAGES) == list(KINDS)
    assert all(spec.kind == kind for kind, spec in STAGES.items())


def test_every_strategy_is_decided_by_a_kind_that_names_it() -> None:
    assert set(STRATEGIES) == set(get_args(Strategy))
    for strategy, kind in STRATEGIES.items():
        assert STAGES[kind].decides and STAGES[kind].strategy == strategy


def test_what_the_configuration_checks_comes_from_the_registry() -> None:
    assert pipelines.OPENING == ("initial", "chain")
    assert pipelines.GATED == ("vote", "rank", "synthesis")
    assert pipelines.DECIDING == ("chain", "vote", "rank", "synthesis")
    assert set(pipelines.FALLBACKS) == {"meta", "rank", "synthesis", "next", "fail"}
    assert pipelines.Stage(kind="rank").round_name == "ranking"


def test_a_kind_that_sends_a_prompt_names_its_template() -> None:
    for kind, spec in STAGES.items():
        assert (spec.template is None) == (spec.callers is None), kind


def test_a_vote_is_an_outcome_that_knows_its_winner_and_ties() -> None:
    out = vote({"a": "x", "b": "y"}, None, {"a": 0.5, "b": 1.0})
    assert isinstance(out, Outcome)
    assert out.winner == "y" and out.tie and not out.compared_whole
    fell_back = vote({"a": "x", "b": "x"}, r"=(\d)", {})
    assert fell_back is not None and fell_back.compared_whole and fell_back.confidence == 0.0
    assert Outcome(answer="plain").winner is None


def test_pipelines_no_longer_import_the_config_module() -> None:
    """config imports pipelines; pipelines once imported config back inside a function."""
    code = "import sys, actors.pipelines; print('actors.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_strategies_config_checks_are_the_typed_registry() -> None:
    from actors import config

    assert config.STRATEGIES is STRATEGIES
    assert pipelines.RESERVED_NAMES == ("synthesize", "vote", "rank", "default")


def test_every_kinds_round_name_agrees_with_its_spec() -> None:
    """``Stage.round_name`` comes from the leaf ``actors.stagekinds`` (no import of the
    stage implementations); it must say what each kind's spec says."""
    from actors.stagekinds import Stage

    for kind in KINDS:
        assert Stage(kind=kind).round_name == STAGES[kind].name, kind
