"""What the evaluation recommends (CONTRACT §16): the frontier, the cheapest system as
good as the best by the paired tests, accuracy against calls; and ``--apply``, which
writes the system into the configuration file (comments kept, a backup) or gives the
TOML to paste."""

from __future__ import annotations

import json
import random
import tomllib

import pytest
from helpers import WAIT, Recorder, fake_models

import actors
from actors.config import config_from_dict
from actors.evaluation import apply, dataset, output, recommend
from actors.evaluation.answers import Answers
from actors.evaluation.plan import Setup, System
from actors.evaluation.score import Outcome
from messages.errors import ConfigError

NAMES = ("good", "mid", "bad")


def row(name, accuracy, cost_usd=0.0, calls=10, n=10, kind="strategy"):
    return {
        "name": name,
        "kind": kind,
        "n": n,
        "correct": round(accuracy * n),
        "accuracy": accuracy,
        "cost_usd": cost_usd,
        "calls": calls,
    }


def test_the_frontier_keeps_what_nothing_beats_on_both_counts_cheapest_first() -> None:
    rows = [
        row("dear-best", 0.9, cost_usd=1.0),
        row("cheap-good", 0.8, cost_usd=0.1),
        row("cheap-bad", 0.5, cost_usd=0.1),  # as cheap, less accurate: beaten
        row("dear-worse", 0.7, cost_usd=2.0),  # dearer and worse than dear-best: beaten
        row("free", 0.2, cost_usd=0.0),
        row("oracle", 1.0, kind="oracle"),  # a ceiling, not a system
    ]
    assert recommend.frontier(rows) == ["free", "cheap-good", "dear-best"]
    assert recommend.cost_basis(rows) == "usd"


def test_with_no_prices_the_cost_is_calls_per_question() -> None:
    rows = [row("one", 0.7, calls=10), row("panel", 0.8, calls=70), row("meh", 0.6, calls=30)]
    assert recommend.cost_basis(rows) == "calls"
    assert recommend.frontier(rows) == ["one", "panel"]


def outcomes(pattern: str) -> dict[str, Outcome]:
    return {
        f"q{i}": Outcome(correct=c == "1", answer=None, cost_usd=0.0, latency_ms=0.0, calls=1)
        for i, c in enumerate(pattern)
    }


def questions(n: int):
    lines = [json.dumps({"id": f"q{i}", "prompt": f"q{i}", "answer": "x"}) for i in range(n)]
    return dataset.parse(lines, name="d")


def test_the_recommendation_is_the_cheapest_not_distinguishable_from_the_best() -> None:
    data = questions(20)
    per = {
        "panel": outcomes("1" * 18 + "00"),  # 90%, dear
        "pair": outcomes("1" * 16 + "0000"),  # 80%: 2 discordant, p = 0.5
        "one": outcomes("1" * 6 + "0" * 14),  # 30%: 12 discordant, worse
    }
    rows = [
        row("panel", 0.9, cost_usd=0.7, n=20),
        row("pair", 0.8, cost_usd=0.2, n=20),
        row("one", 0.3, cost_usd=0.1, n=20),
    ]
    found = recommend.recommend(data, rows, per)
    assert found["recommended"] == "pair"
    advice = found["recommendation"]
    assert advice["best"] == "panel" and advice["cost_basis"] == "usd"
    assert advice["vs_best"]["verdict"] == "not distinguishable with n = 20"
    assert advice["vs_best"]["p_value"] == 0.5
    assert advice["cost_per_question"] == 0.01 and "cheaper" in advice["why"]


def test_when_every_cheaper_system_is_worse_the_best_is_recommended() -> None:
    data = questions(20)
    per = {"panel": outcomes("1" * 18 + "00"), "one": outcomes("0" * 20)}
    rows = [row("panel", 0.9, cost_usd=0.7, n=20), row("one", 0.0, cost_usd=0.1, n=20)]
    found = recommend.recommend(data, rows, per)
    assert found["recommended"] == "panel"
    assert found["recommendation"]["vs_best"] is None
    assert found["recommendation"]["why"] == "the most accurate system"
    assert recommend.recommend(data, [], {}) == {"recommended": None, "recommendation": None}


def test_the_vote_over_k_of_three_independent_70_percent_answers_is_the_binomial() -> None:
    rng = random.Random(7)
    system = System(name="self:m", kind="self", model="m")
    data = questions(1000)
    answers = Answers()
    for item in data.items:
        for sample in range(3):  # right 70%, else the one wrong answer (a yes/no question)
            text = "x" if rng.random() < 0.7 else "y"
            answers.results[("self:m", item.id, sample)] = {"status": "ok", "answer": text}
    setup = Setup(  # three models: self:MODEL samples three times
        models=tuple(
            actors.evaluation.plan.ModelInfo(
                name=n, price_in_per_mtok=None, price_out_per_mtok=None, max_tokens=1
            )
            for n in "abc"
        ),
        rounds=("initial",),
        strategy="vote",
        pipelines={},
    )
    curve = recommend.calls_curve(setup, data, [system], answers)["self:m"]
    one, two, three = (p["accuracy"] for p in curve["points"])
    assert abs(one - 0.7) < 0.03
    assert two == pytest.approx(one, abs=0.005)  # two disagreeing: a fair draw, no gain
    assert abs(three - 0.784) < 0.03  # p^3 + 3p^2(1-p)
    assert curve["worth"] == 3


def test_an_evaluation_reports_the_frontier_recommendation_and_curve(start_orch) -> None:
    def reply(request):
        n = int(request.prompt.split()[2])
        right = n < {"good": 8, "mid": 5, "bad": 2}[request.participant]
        return f"The answer is {n + 1 if right else n + 2}"

    orch = start_orch({"models": fake_models(NAMES, reply=Recorder(reply), max_attempts=1)})
    lines = [
        json.dumps({"id": f"q{n}", "prompt": f"What is {n} plus one?", "answer": n + 1})
        for n in range(10)
    ]
    data = dataset.parse(
        [line.replace('"answer"', '"grader": "numeric", "answer"') for line in lines]
    )
    report = actors.evaluate(orch, data, systems=[*NAMES, "self:good", "oracle"])
    assert report["cost_basis"] == "calls"
    assert report["frontier"] == ["good"]  # one call, 8/10: nothing beats it
    assert report["recommended"] == "good"
    assert report["calls_curve"]["self:good"] == {
        "points": [{"calls": k, "accuracy": 0.8} for k in (1, 2, 3)],
        "worth": 1,
    }
    text = output.markdown(report, "orchestrctl eval d.jsonl", with_png=False)
    assert "## Recommendation" in text and "Recommended: **good**" in text
    assert "| self:good | 80.0% | 80.0% | 80.0% | 1 |" in text


# --- --apply ---------------------------------------------------------------------------------

CONFIG = """\
# my orchestrord
[[models]]  # the cheap one
name = "good"
provider = "fake"
reply = "x"

[[models]]
name = "mid"
provider = "fake"
reply = "y"

[pipeline]
rounds = ["initial", "meta", "synthesis"]  # three rounds
strategy = "synthesize"   # keep me

[pipelines.cascade]
stages = [
  { kind = "initial", models = ["good"] },
  { kind = "vote", min_confidence = 1.0, fallback = "next" },
  { kind = "initial" },
  { kind = "vote" },
]
"""

SETUP = Setup(models=(), rounds=("initial",), strategy="vote", pipelines={})


def test_applying_a_strategy_replaces_one_line_and_keeps_every_comment(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    done = apply.apply(path, apply.change_for(SETUP, System(name="vote", kind="strategy")))
    assert done.written == path and done.backup == tmp_path / "config.toml.bak"
    assert done.backup.read_text() == CONFIG
    text = path.read_text()
    assert 'strategy = "vote"  # set by orchestrctl eval --apply' in text
    for comment in ("# my orchestrord", "# the cheap one", "# three rounds"):
        assert comment in text
    assert tomllib.loads(text)["pipeline"]["strategy"] == "vote"
    again = apply.apply(path, apply.change_for(SETUP, System(name="rank", kind="strategy")))
    assert again.backup != done.backup and again.backup.name.endswith(".bak")


def test_applying_a_named_pipeline_makes_it_the_default_that_requests_run(
    tmp_path, start_orch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    apply.apply(path, apply.change_for(SETUP, System(name="cascade", kind="pipeline")))
    data = tomllib.loads(path.read_text())
    assert data["pipeline"]["default"] == "cascade"
    orch = start_orch(data)
    result = orch.ask("q", timeout=WAIT)
    assert result.pipeline == "cascade" and result.answered_by["step"] == 1
    plain = orch.ask("q", strategy="vote", timeout=WAIT)  # a request's strategy: not it
    assert plain.pipeline is None
    apply.apply(path, apply.change_for(SETUP, System(name="vote", kind="strategy")))
    assert "default" not in tomllib.loads(path.read_text())["pipeline"]


def test_applying_a_model_or_self_consistency_adds_a_pipeline(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    models = Setup.of(config_from_dict(tomllib.loads(CONFIG)))
    done = apply.apply(
        path, apply.change_for(models, System(name="self:mid", kind="self", model="mid"))
    )
    assert done.written == path
    data = tomllib.loads(path.read_text())
    assert data["pipeline"]["default"] == "self-mid"
    assert data["pipelines"]["self-mid"]["stages"] == [
        {"kind": "initial", "models": ["mid"], "samples": 3},
        {"kind": "vote"},
    ]
    config = config_from_dict(data)
    assert config.pipelines["self-mid"].stages[0].samples == 3
    change = apply.change_for(models, System(name="good", kind="model", model="good"))
    assert change.table == ("only-good", [{"kind": "chain", "models": ["good"]}])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (None, "no configuration file"),
        (CONFIG.replace("[pipeline]\n", "").replace("rounds = [", "pipeline.rounds = ["), "safely"),
        (CONFIG + '\n[pipelines.self-mid]\nstages = [{kind = "chain"}]\n', "safely"),
        (CONFIG.replace('reply = "y"', 'reply = "y"\nbogus = 1'), "not written"),
    ],
)
def test_what_cannot_be_written_safely_is_given_as_toml_to_paste(tmp_path, text, why) -> None:
    path = tmp_path / "config.toml"
    if text is not None:
        path.write_text(text)
    models = Setup.of(config_from_dict(tomllib.loads(CONFIG)))
    done = apply.apply(
        path, apply.change_for(models, System(name="self:mid", kind="self", model="mid"))
    )
    assert done.written is None and why in done.why
    assert text is None or path.read_text() == text  # untouched
    assert not (tmp_path / "config.toml.bak").exists()
    assert tomllib.loads(done.toml)["pipeline"] == {"default": "self-mid"}


def test_a_file_without_a_pipeline_table_gets_one(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[models]]\nname = "good"\nprovider = "fake"\n')
    apply.apply(path, apply.change_for(SETUP, System(name="vote", kind="strategy")))
    assert tomllib.loads(path.read_text())["pipeline"] == {"strategy": "vote"}


def test_the_oracle_cannot_be_applied() -> None:
    with pytest.raises(apply.ApplyError, match="ceiling"):
        apply.change_for(SETUP, System(name="oracle", kind="oracle"))


def test_a_default_naming_no_pipeline_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.default.*no \[pipelines\.nope\]"):
        config_from_dict({"models": fake_models(NAMES, reply="x"), "pipeline": {"default": "nope"}})


# --- the command, through a real daemon ---------------------------------------------------


def test_orchestrctl_eval_recommends_and_applies_it_to_the_daemons_file(daemon, tmp_path) -> None:
    import signal
    import subprocess
    from pathlib import Path

    from daemon_helpers import rpc

    ctl = Path(__file__).resolve().parents[2] / "bin" / "orchestrctl"
    data = tmp_path / "capitals.jsonl"
    lines = [
        {"id": "au", "prompt": "Capital of Australia?", "answer": "Canberra", "grader": "contains"},
        {"id": "fr", "prompt": "Capital of France?", "answer": "Paris", "grader": "contains"},
    ]
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    d = daemon(
        {
            "models": [
                {"name": "right", "provider": "fake", "reply": "Canberra and Paris"},
                {"name": "wrong", "provider": "fake", "reply": "Sydney"},
            ]
        }
    )
    before = d.config_path.read_text()
    args = ["eval", str(data), "--systems", "right,wrong,vote", "--json"]
    args += ["--apply", "recommended", "--config", str(d.config_path)]
    run = subprocess.run(
        [str(ctl), "--socket", d.socket_path, *args],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["recommended"] == "right" and report["frontier"] == ["right"]
    assert "right is the default pipeline in" in run.stderr
    backup = d.config_path.with_name(d.config_path.name + ".bak")
    assert backup.read_text() == before
    assert tomllib.loads(d.config_path.read_text())["pipeline"]["default"] == "only-right"
    d.proc.send_signal(signal.SIGHUP)  # the daemon reloads [pipeline] and [pipelines]
    for _ in range(200):  # each ask a job: the first after the reload runs the new default
        result = rpc(d, "ask", {"prompt": "Capital of France?"})["result"]
        if result.get("pipeline") == "only-right":
            break
    assert result["pipeline"] == "only-right" and result["answer"] == "Canberra and Paris"
    bad = subprocess.run(
        [str(ctl), "--socket", d.socket_path, "eval", str(data), "--apply", "oracle"],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
    )
    assert bad.returncode == 2 and "--apply: 'oracle' is not an evaluated system" in bad.stderr


def test_a_setting_left_at_its_default_does_not_change_what_answers_depend_on() -> None:
    from actors.evaluation.plan import fingerprints

    def digest(stage, pipeline=None):
        return fingerprints(
            config_from_dict(
                {
                    "models": fake_models(NAMES, reply="x"),
                    "pipeline": pipeline or {},
                    "pipelines": {
                        "p": {"stages": [{"kind": "initial", **stage}, {"kind": "vote"}]}
                    },
                }
            )
        )["pipeline:p"]  # the stages and everything else a job depends on

    plain = digest({})
    assert digest({"samples": 1}) == plain  # the default, spelt out
    assert digest({}, {"strategy": "synthesize"}) == plain
    assert digest({"samples": 2}) != plain
    assert digest({}, {"strategy": "vote"}) != plain


def test_a_field_added_at_its_default_leaves_the_essence_as_it_was() -> None:
    from dataclasses import dataclass

    from actors.evaluation.plan import essence

    @dataclass
    class Before:
        rounds: tuple[str, ...] = ("initial",)
        strategy: str = "vote"

    @dataclass
    class After:  # the same settings, and a new one at its default
        rounds: tuple[str, ...] = ("initial",)
        strategy: str = "vote"
        default: str | None = None

    assert repr(Before()) != repr(After())  # what the fingerprint used to digest
    assert essence(Before()) == essence(After()) == {}
    assert essence(After(strategy="rank", default="p")) == {"strategy": "rank", "default": "p"}


def test_adding_or_changing_a_named_pipeline_asks_only_that_pipeline_again() -> None:
    from actors.evaluation.plan import fingerprints

    def prints(pipelines, pipeline=None):
        data = {"models": fake_models(NAMES, reply="x"), "pipelines": pipelines}
        return fingerprints(config_from_dict({**data, "pipeline": pipeline or {}}))

    voted = {"stages": [{"kind": "initial"}, {"kind": "vote"}]}
    sampled = {"stages": [{"kind": "initial", "samples": 3}, {"kind": "vote"}]}
    one = prints({"voted": voted})
    two = prints({"voted": voted, "sampled": sampled})
    assert two["*"] == one["*"] and two["pipeline:voted"] == one["pipeline:voted"]
    changed = prints({"voted": {"stages": [{"kind": "initial"}, {"kind": "rank"}]}})
    assert changed["pipeline:voted"] != one["pipeline:voted"] and changed["*"] == one["*"]
    assert prints({"voted": voted}, {"default": "voted"}) == one  # what runs by default
    setup = Setup(models=(), rounds=("initial",), strategy="vote", pipelines={}, fingerprints=two)
    assert setup.fingerprint(System(name="sampled", kind="pipeline")) == two["pipeline:sampled"]
    assert setup.fingerprint(System(name="vote", kind="strategy")) == two["*"]
