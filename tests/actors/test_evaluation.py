"""orchestrctl eval and actors.evaluate (CONTRACT §10): graders, statistics checked
against hand-computed values, scripted models whose right and wrong answers are known per
question, resume from the run store, and the command through a real daemon."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_helpers import rpc
from helpers import WAIT, Recorder, fake_models

import actors
from actors.evaluation import DatasetError, EvalAbort, dataset, graders, stats
from actors.evaluation.plan import PlanError, Setup, systems

ROOT = Path(__file__).resolve().parents[2]
CTL = ROOT / "bin" / "orchestrctl"

# --- statistics --------------------------------------------------------------------------


def test_wilson_matches_hand_computed_intervals() -> None:
    z = stats.Z95
    # 8 of 10: centre (0.8 + z²/20) / (1 + z²/10), half z·sqrt(0.016 + z²/400) / (1 + z²/10)
    d = 1 + z * z / 10
    centre, half = (0.8 + z * z / 20) / d, z * math.sqrt(0.016 + z * z / 400) / d
    assert stats.wilson(8, 10) == pytest.approx((centre - half, centre + half))
    assert stats.wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # published
    # 0 of 10: the lower end is 0 and the upper (z²/10) / (1 + z²/10)
    assert stats.wilson(0, 10) == pytest.approx((0.0, (z * z / 10) / d))
    assert stats.wilson(10, 10)[1] == pytest.approx(1.0)
    assert stats.wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("only_a", "only_b", "p"),
    [
        (0, 0, 1.0),
        (3, 3, 1.0),
        (1, 6, 2 * (1 + 7) / 2**7),  # 2 · (C(7,0) + C(7,1)) / 2^7 = 0.125
        (0, 5, 2 / 2**5),
        (6, 0, 2 / 2**6),
        (2, 9, 2 * (1 + 11 + 55) / 2**11),
        (40, 60, None),  # large n stays exact (no float overflow)
    ],
)
def test_exact_mcnemar_matches_the_binomial_tail(only_a, only_b, p) -> None:
    if p is None:
        n = only_a + only_b
        p = 2 * sum(math.comb(n, i) for i in range(41)) / 2**n
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(p)


def test_paired_bootstrap_is_degenerate_when_the_difference_is_constant() -> None:
    assert stats.paired_bootstrap([True] * 8, [False] * 8) == (1.0, 1.0)
    assert stats.paired_bootstrap([True] * 5, [True] * 5) == (0.0, 0.0)
    with pytest.raises(ValueError, match="same length"):
        stats.paired_bootstrap([True], [])


def test_paired_bootstrap_is_reproducible_and_near_the_normal_interval() -> None:
    a = [True] * 60 + [False] * 40
    b = [True] * 40 + [False] * 60  # a right on 20 more items: diffs are twenty 1s, eighty 0s
    low, high = stats.paired_bootstrap(a, b)
    assert (low, high) == stats.paired_bootstrap(a, b)  # a fixed seed
    se = math.sqrt(0.2 * 0.8 / 100)  # the mean of 100 draws of a 0/1 with p = 0.2
    assert low == pytest.approx(0.2 - stats.Z95 * se, abs=0.02)
    assert high == pytest.approx(0.2 + stats.Z95 * se, abs=0.02)


def test_the_verdict_never_claims_more_than_the_data() -> None:
    assert stats.verdict(0.2, (0.1, 0.3), 0.01, 50) == "better"
    assert stats.verdict(-0.2, (-0.3, -0.1), 0.01, 50) == "worse"
    assert stats.verdict(0.2, (-0.01, 0.3), 0.01, 50) == "not distinguishable with n = 50"
    assert stats.verdict(0.2, (0.1, 0.3), 0.2, 50) == "not distinguishable with n = 50"


# --- graders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grader", "answer", "refs", "right"),
    [
        ("normalized", "  Canberra. ", ["canberra"], True),
        ("normalized", "It is Canberra", ["Canberra"], False),
        ("exact", "Canberra", ["Canberra"], True),
        ("exact", "canberra", ["Canberra"], False),
        ("numeric", "So the total is 1,050 loaves.", ["1050"], True),
        ("numeric", "3 days, 105 loaves", ["105"], True),
        ("numeric", "105 loaves in 3 days", ["105"], False),  # the last number counts
        ("numeric", "no number here", ["4"], False),
        ("choice", "The answer is (B).", ["B"], True),
        ("choice", "B) because Ann is taller", ["B"], True),
        ("choice", "c", ["C"], True),
        ("choice", "A good question. Answer: D", ["D"], True),
        ("choice", "I think so", ["A"], False),
        ("contains", "The capital of Australia is Canberra.", ["Canberra"], True),
        ("contains", "Canberrans live there", ["Canberra"], False),  # whole words only
        ("contains", "Sydney", ["Canberra", "ACT"], False),
    ],
)
def test_graders(grader, answer, refs, right) -> None:
    assert graders.Grader(name=grader).correct(answer, refs) is right


def test_the_numeric_tolerance_and_the_regex_grader() -> None:
    assert graders.Grader(name="numeric", tolerance=0.01).correct("3.14", ["3.1416"])
    assert not graders.Grader(name="numeric").correct("3.14", ["3.1416"])
    g = graders.Grader(name="regex", pattern=r"final:\s*(\w+)")
    assert g.correct("thinking... Final: Paris", ["paris"])
    assert not g.correct("Paris", ["paris"])  # no match: no answer


def test_a_judges_verdict_is_read_strictly() -> None:
    assert graders.judge_verdict("reasoning...\nVERDICT: CORRECT")
    assert not graders.judge_verdict("VERDICT: INCORRECT")
    assert not graders.judge_verdict("It is correct")  # no verdict line: wrong
    assert not graders.judge_verdict(None)


# --- datasets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("not json", "not a JSON object"),
        ('{"id": "1", "prompt": "q", "answer": NaN}', "not a JSON object"),
        ("[1]", "expected a JSON object"),
        ('{"id": "", "prompt": "q", "answer": "a"}', "id must be"),
        ('{"id": "1", "answer": "a"}', "exactly one of prompt and messages"),
        ('{"id": "1", "prompt": "q"}', "exactly one of answer and answers"),
        ('{"id": "1", "prompt": "q", "answer": "a", "grader": "vibes"}', "grader must be"),
        ('{"id": "1", "prompt": "q", "answer": "a", "grader": "regex"}', "needs a pattern"),
        ('{"id": "1", "prompt": "q", "answer": "a", "grader": "regex", "pattern": "("}', "regex"),
        ('{"id": "1", "prompt": "q", "answer": "E5", "grader": "choice"}', "one letter"),
        ('{"id": "1", "prompt": "q", "answer": "x", "grader": "numeric"}', "must be a number"),
        ('{"id": "1", "prompt": "q", "answer": "1", "tolerance": 1}', "numeric grader only"),
        ('{"id": "1", "prompt": "q", "answer": "a", "colour": 1}', "unknown key"),
        ('{"id": "1", "prompt": "\\ud800", "answer": "a"}', "surrogate"),
        (
            '{"id": "1", "messages": [{"role": "assistant", "content": "hi"}], "answer": "a"}',
            "last message must be the user's",
        ),
    ],
)
def test_a_bad_dataset_line_is_refused_naming_it(line, words) -> None:
    with pytest.raises(DatasetError) as caught:
        dataset.parse(['{"id": "0", "prompt": "fine", "answer": "a"}', line])
    assert str(caught.value).startswith("line 2: ") and words in str(caught.value)


def test_duplicate_ids_and_empty_files_are_refused() -> None:
    with pytest.raises(DatasetError, match="duplicate id '1'"):
        dataset.parse(['{"id": 1, "prompt": "q", "answer": "a"}'] * 2)
    with pytest.raises(DatasetError, match="no items"):
        dataset.parse(["", "  "])


def test_a_conversation_becomes_a_transcript_prompt() -> None:
    line = json.dumps(
        {
            "id": "c",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "And of Italy?"},
            ],
            "answer": "Rome",
        }
    )
    [item] = dataset.parse([line]).items
    assert item.prompt == (
        "System: Be brief.\n\nUser: Capital of France?\n\nAssistant: Paris.\n\nUser: And of Italy?"
    )


def test_the_bundled_datasets_are_what_the_generator_writes() -> None:
    sys.path.insert(0, str(ROOT / "eval" / "datasets"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    for name, text in generate.datasets().items():
        path = ROOT / "eval" / "datasets" / name
        assert path.read_text(encoding="utf-8") == text, name
        assert len(dataset.load(path).items) >= 50


# --- scripted models: every figure known in advance --------------------------------------

# Ten questions "What is N plus one?"; the right answer is N + 1. "good" is right on
# questions 0-7, "mid" on 0-4, "bad" on 0-1; a wrong answer is always N + 2, so the wrong
# ones agree with each other and can outvote a right one.
RIGHT_ON = {"good": 8, "mid": 5, "bad": 2}
QUESTIONS = [
    json.dumps(
        {"id": f"q{n}", "prompt": f"What is {n} plus one?", "answer": n + 1, "grader": "numeric"}
    )
    for n in range(10)
]


def scripted(request) -> str:
    n = int(re.search(r"What is (\d+) plus one", request.prompt).group(1))
    if request.round_name == "synthesis" or request.round_name == "meta":
        answers = re.findall(
            r"(?:Answer [A-Z]|Candidate \d+):\nThe answer is (\d+)", request.prompt
        )
        return f"Improved answer: The answer is {max(set(answers), key=answers.count)}"
    if request.round_name == "ranking":
        return "Ranking: A > B"
    right = n < RIGHT_ON[request.participant]
    return f"The answer is {n + 1 if right else n + 2}"


def start_scripted(start_orch, recorder, **daemon):
    config = {"models": fake_models(("good", "mid", "bad"), reply=recorder, max_attempts=1)}
    if daemon:
        config["daemon"] = daemon
    return start_orch(config)


def by_name(report):
    return {s["name"]: s for s in report["systems"]}


def test_every_figure_of_a_scripted_evaluation_is_the_hand_computed_one(start_orch) -> None:
    recorder = Recorder(scripted)
    orch = start_scripted(start_orch, recorder)
    data = dataset.parse(QUESTIONS, name="plus-one")
    report = actors.evaluate(
        orch, data, systems=["good", "mid", "bad", "vote", "self:good", "oracle"]
    )
    assert report["dataset"] == "plus-one" and report["n"] == 10
    rows = by_name(report)
    assert [(n, rows[n]["correct"]) for n in rows] == [
        ("good", 8),
        ("mid", 5),
        ("bad", 2),
        ("vote", 5),  # right where two of three are: questions 0-4
        ("self:good", 8),  # the same model three times: its own accuracy
        ("oracle", 8),  # right where any single model is
    ]
    for name, row in rows.items():
        assert row["n"] == 10 and row["accuracy"] == row["correct"] / 10
        low, high = stats.wilson(row["correct"], 10)
        assert row["ci95"] == [round(low, 4), round(high, 4)], name
    assert rows["good"]["calls"] == 10 and rows["self:good"]["calls"] == 30
    assert rows["vote"]["calls"] == 60  # initial + meta, three models, ten questions
    assert rows["oracle"]["kind"] == "oracle" and rows["self:good"]["kind"] == "self"
    assert set(rows["good"]) == {
        "name",
        "kind",
        "n",
        "correct",
        "accuracy",
        "ci95",
        "cost_usd",
        "latency_ms",
        "calls",
    }
    comparisons = {c["system"]: c for c in report["comparisons"]}
    assert {c["baseline"] for c in comparisons.values()} == {"good"}
    bad = comparisons["bad"]  # bad is right only where good is: 6 discordant, all good's
    assert bad["delta"] == -0.6 and bad["p_value"] == pytest.approx(2 / 2**6)
    assert bad["verdict"] == "worse" and bad["ci95"][1] < 0
    mid = comparisons["mid"]  # 3 discordant, all good's: p = 2/8
    assert mid["delta"] == -0.3 and mid["p_value"] == 0.25
    assert mid["verdict"] == "not distinguishable with n = 10"
    assert comparisons["self:good"]["delta"] == 0.0 and comparisons["self:good"]["p_value"] == 1.0
    assert comparisons["self:good"]["ci95"] == [0.0, 0.0]


def test_the_judge_grades_open_answers_once_per_distinct_answer(start_orch) -> None:
    def reply(request):
        if request.prompt.startswith("You are grading"):
            answer = request.prompt.split("Answer to grade:\n", 1)[1].split("\n\n")[0]
            reference = request.prompt.split("Reference answer:\n", 1)[1].split("\n\n")[0]
            return f"VERDICT: {'CORRECT' if reference in answer else 'INCORRECT'}"
        return {"a": "Paris, of course", "b": "Lyon"}[request.participant]

    recorder = Recorder(reply)
    orch = start_orch({"models": fake_models(("a", "b"), reply=recorder, max_attempts=1)})
    line = {"id": "1", "prompt": "Capital of France?", "answer": "Paris", "grader": "judge"}
    data = dataset.parse([json.dumps(line)])
    report = actors.evaluate(orch, data, systems=["a", "b", "self:a"], judge="b")
    rows = by_name(report)
    assert (rows["a"]["correct"], rows["b"]["correct"], rows["self:a"]["correct"]) == (1, 0, 1)
    judged = [r for r in recorder.requests if r.prompt.startswith("You are grading")]
    assert {r.participant for r in judged} == {"b"} and len(judged) == 2  # a's answer once


def test_unknown_systems_are_refused() -> None:
    setup = Setup(models=(), rounds=("initial",), strategy="synthesize", pipelines={})
    with pytest.raises(PlanError, match="unknown system 'gpt5'"):
        systems(setup, ["gpt5"])


# --- resume ------------------------------------------------------------------------------


class Interrupted(EvalAbort):
    pass


def test_an_interrupted_evaluation_resumes_and_a_rerun_makes_no_call(start_orch, tmp_path) -> None:
    from actors.evaluation import EmbeddedBackend, plan, run

    recorder = Recorder(scripted)
    orch = start_scripted(start_orch, recorder, state_dir=str(tmp_path / "state"))
    data = dataset.parse(QUESTIONS, name="plus-one")
    setup = Setup.of(orch.config)
    chosen = plan.systems(setup, ["good", "mid"])

    class Flaky(EmbeddedBackend):
        asked = 0

        def ask(self, params):
            if Flaky.asked == 7:
                raise Interrupted("the network went away")
            Flaky.asked += 1
            return super().ask(params)

    with pytest.raises(Interrupted):
        run(Flaky(orch), setup, data, chosen, concurrency=1)
    assert len(recorder.requests) == 7
    report = actors.evaluate(orch, data, systems=["good", "mid"], concurrency=3)
    assert len(recorder.requests) == 20  # only the 13 missing jobs were asked
    assert report["reused"] == 7
    assert [r["correct"] for r in report["systems"]] == [8, 5]
    again = actors.evaluate(orch, data, systems=["good", "mid"])
    assert len(recorder.requests) == 20 and again["reused"] == 20
    assert again["systems"] == report["systems"]
    fresh = actors.evaluate(orch, data, systems=["good"], fresh=True)
    assert len(recorder.requests) == 30 and fresh["reused"] == 0


def test_max_cost_stops_new_jobs_and_says_so(start_orch) -> None:
    priced = fake_models(
        ("a",), reply="4", price_in_per_mtok=1000.0, price_out_per_mtok=1000.0, max_attempts=1
    )
    orch = start_orch({"models": priced})
    data = dataset.parse(QUESTIONS, name="plus-one")
    report = actors.evaluate(orch, data, systems=["a"], concurrency=1, max_cost=1e-9)
    assert report["stopped_by_max_cost"] and report["systems"][0]["n"] == 1


# --- the command, through a real daemon -------------------------------------------------


def ctl(socket_path: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CTL), "--socket", socket_path, *args],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
        input=stdin,
    )


def test_orchestrctl_eval_reports_resumes_and_writes_its_files(daemon, tmp_path) -> None:
    path = tmp_path / "capitals.jsonl"
    lines = [
        {"id": "au", "prompt": "Capital of Australia?", "answer": "Canberra", "grader": "contains"},
        {"id": "fr", "prompt": "Capital of France?", "answer": "Paris", "grader": "contains"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    d = daemon(
        {
            "models": [
                {"name": "right", "provider": "fake", "reply": "Canberra and Paris"},
                {"name": "wrong", "provider": "fake", "reply": "Sydney"},
            ]
        }
    )
    run = ctl(d.socket_path, "eval", str(path), "--json", "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    rows = by_name(report)
    assert rows["right"]["correct"] == 2 and rows["wrong"]["correct"] == 0
    assert set(rows) == {"right", "wrong", "synthesize", "vote", "rank", "oracle"}
    assert "calls to make, at most $0.0000" in run.stderr
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| right | model | 2 | 2 | 100.0% |" in text and "best single model, **right**" in text
    assert (tmp_path / "out" / "accuracy.png").read_bytes().startswith(b"\x89PNG")
    jobs = rpc(d, "status")["result"]["jobs_total"]
    again = ctl(d.socket_path, "eval", str(path), "--json")
    assert json.loads(again.stdout)["reused"] > 0
    assert rpc(d, "status")["result"]["jobs_total"] == jobs  # no new job at all
    table = ctl(d.socket_path, "eval", str(path), "--systems", "right,wrong")
    assert table.returncode == 0 and "wrong vs right: -100.0 pts" in table.stdout


def test_orchestrctl_eval_asks_before_spending_and_refuses_bad_input(daemon, tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"id": "1", "prompt": "q", "answer": "a"}) + "\n")
    d = daemon(
        {
            "models": [
                {
                    "name": "paid",
                    "provider": "fake",
                    "reply": "a",
                    "price_in_per_mtok": 5.0,
                    "price_out_per_mtok": 15.0,
                }
            ]
        }
    )
    run = ctl(d.socket_path, "eval", str(path), "--systems", "paid")  # stdin is not a tty
    assert run.returncode == 2 and "rerun with --yes" in run.stderr
    assert rpc(d, "status")["result"]["jobs_total"] == 0  # nothing was spent
    run = ctl(d.socket_path, "eval", str(path), "--systems", "paid", "--yes", "--json")
    assert run.returncode == 0 and json.loads(run.stdout)["systems"][0]["correct"] == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "prompt": "q"}\n')
    run = ctl(d.socket_path, "eval", str(bad), "--yes")
    assert run.returncode == 2 and "line 1: give exactly one of answer and answers" in run.stderr
    run = ctl(d.socket_path, "eval", str(path), "--systems", "nobody", "--yes")
    assert run.returncode == 2 and "unknown system 'nobody'" in run.stderr


def test_a_changed_template_asks_again_only_what_it_can_change(start_orch, tmp_path) -> None:
    from dataclasses import replace

    recorder = Recorder(scripted)
    orch = start_scripted(start_orch, recorder, state_dir=str(tmp_path / "state"))
    data = dataset.parse(QUESTIONS[:3], name="plus-one")
    actors.evaluate(orch, data, systems=["good", "synthesize"])
    asked = len(recorder.requests)
    templates = replace(orch.config.templates, synthesis="Q: {prompt}\n{answers}\nAnswer.")
    orch.reconfigure(replace(orch.config, templates=templates))
    again = actors.evaluate(orch, data, systems=["good", "synthesize"])
    assert again["reused"] == 3  # good alone cannot change: its three answers are kept
    new = recorder.requests[asked:]
    assert len(new) == 3 * 7  # synthesize: three initial, three meta, one synthesis each
    assert again["systems"][1]["correct"] == 3


def test_a_failure_of_the_moment_is_asked_again_by_the_next_run() -> None:
    from actors.evaluation.runner import final

    assert final({"status": "ok"})
    assert final({"status": "error", "error": {"code": "round_failed", "message": ""}})
    assert not final({"status": "error", "error": {"code": "no_model_available", "message": ""}})
    assert not final({"status": "timeout", "error": {"code": "job_timeout", "message": ""}})
    assert not final({"status": "interrupted"})


def test_a_full_orchestrator_is_asked_again_as_it_says_and_stored_jobs_are_paged(
    monkeypatch,
) -> None:
    from actors.evaluation import Overloaded, runner

    waits: list[float] = []
    monkeypatch.setattr(runner.time, "sleep", waits.append)

    class Busy:
        def __init__(self, busy: int) -> None:
            self.busy = busy
            self.pages: list[tuple[int, int]] = []

        def ask(self, params):
            if self.busy:
                self.busy -= 1
                raise Overloaded(0.25)
            return {"status": "ok", "answer": params["prompt"]}

        def page(self, digest, offset, limit):
            self.pages.append((offset, limit))
            return [{"n": i} for i in range(offset, min(offset + limit, 5))]

    backend = Busy(busy=2)
    assert runner.ask(backend, {"prompt": "q"}) == {"status": "ok", "answer": "q"}
    assert waits == [0.25, 0.25]
    monkeypatch.setattr(runner, "OVERLOAD_RETRIES", 3)
    with pytest.raises(EvalAbort, match="stayed overloaded"):
        runner.ask(Busy(busy=10), {"prompt": "q"})
    monkeypatch.setattr(runner, "PAGE", 2)
    assert [r["n"] for r in runner.stored_records(backend, "d")] == [0, 1, 2, 3, 4]
    assert backend.pages == [(0, 2), (2, 2), (4, 2)]


def test_eval_help_shows_percent_signs_once() -> None:
    run = ctl("/tmp/unused.sock", "eval", "--help")
    assert run.returncode == 0 and "95% intervals" in " ".join(run.stdout.split())
    assert "%%" not in run.stdout


def test_a_daemon_dying_mid_evaluation_is_one_line_and_exit_3(daemon, tmp_path) -> None:
    """It printed a traceback and exited 1."""
    path = tmp_path / "slow.jsonl"
    lines = [{"id": str(i), "prompt": f"q{i}", "answer": "a"} for i in range(4)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    d = daemon(
        {"models": [{"name": "slow", "provider": "fake", "reply": "a", "latency_ms": 60_000}]}
    )
    run = subprocess.Popen(
        [str(CTL), "--socket", d.socket_path, "eval", str(path), "--yes", "--systems", "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stderr is not None
        assert "calls to make" in run.stderr.readline()  # the jobs go out right after it
        deadline = time.monotonic() + WAIT
        while rpc(d, "status")["result"]["inflight_jobs"] == 0:  # bounded: until one runs
            assert time.monotonic() < deadline, "no job ever started"
        d.signal(signal.SIGKILL)
        _, err = run.communicate(timeout=WAIT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=WAIT)
    assert run.returncode == 3, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("orchestrctl: orchestrord at ")
