"""The quality-per-dollar measurements (issue 23), on scripted models with known
correctness, through the whole orchestrator (fake providers in-process; the benchmark
runs the same through a loopback HTTP provider). Seeded: every run answers the same."""

from __future__ import annotations

import pytest

from bench import quality


def test_three_independent_70_percent_models_vote_to_the_binomial_784() -> None:
    found = quality.vote(1000, p=0.7)
    assert found["binomial"] == pytest.approx(0.784)
    low, high = found["ci95"]
    assert low <= 0.784 <= high and found["within"]
    assert high - low < 0.06  # 1,000 questions: the interval is tight enough to mean it
    assert found["calls"] == 3000


def test_a_cascade_whose_cheap_pair_is_right_on_60_percent_keeps_the_panel_at_under_half_the_cost():
    found = quality.cascade(1000)
    assert found["verdict"].startswith("not distinguishable")
    assert found["cascade"]["accuracy"] >= found["panel"]["accuracy"] - 0.01
    assert found["cost_ratio"] < 0.5
    assert 0.3 < found["cascade"]["escalated"] < 0.45  # the hard 40%, less where both were right


def test_a_cascade_whose_cheap_models_share_their_errors_loses_accuracy() -> None:
    found = quality.cascade(1000, shared_wrong=0.2)
    assert found["verdict"] == "worse"  # the gate cannot see an error both make


def test_the_loopback_provider_serves_the_same_script_over_http() -> None:
    found = quality.cascade(60, provider="loopback")
    fake = quality.cascade(60)
    assert found["cascade"]["accuracy"] == fake["cascade"]["accuracy"]
    assert found["cascade"]["escalated"] == fake["cascade"]["escalated"]
    assert found["cost_ratio"] < 0.5


def test_the_report_section_says_what_was_measured(tmp_path) -> None:
    found = {
        "provider": "fake",
        "vote": quality.vote(100),
        "cascades": [quality.cascade(100)],
    }
    path = quality.write(found, tmp_path / "new")  # a folder that does not exist yet
    text = path.read_text()
    assert "Vote of three independent 70% models" in text and "binomial majority is 78.4%" in text
    assert "| n = 100 | 0% |" in text
