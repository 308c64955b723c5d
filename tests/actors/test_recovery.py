"""Recovery: a down model is probed after its cool-down (half-open) and comes back up on
success; a failed probe doubles the cool-down; a model whose calls keep failing has its
circuit opened and costs no more requests until then."""

from __future__ import annotations

import threading

from helpers import Recorder, fake_models

from actors.providers import make_provider
from messages.errors import ProviderUnavailable

SUPERVISION = {
    "backoff_min_s": 0.001,
    "backoff_max_s": 0.01,
    "circuit_failures": 2,
    "cooldown_s": 0.05,
    "cooldown_max_s": 0.2,
}


class Switch:
    """A fake model's health, flipped by the test."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        self.failing.set()

    def __call__(self, request):
        if request.participant == "flaky" and self.failing.is_set():
            raise ProviderUnavailable("500 from upstream", status=500)
        return f"{request.participant}: fine"


def start(start_orch, switch, **supervision):
    recorder = Recorder(switch)
    orch = start_orch(
        {
            "models": fake_models(["good", "flaky"], reply=recorder, max_attempts=1),
            "pipeline": {"rounds": ["initial"], "synthesizer": "good"},
            "supervision": {**SUPERVISION, **supervision},
        }
    )
    return orch, recorder


def flaky_calls(recorder: Recorder) -> int:
    return sum(1 for r in recorder.requests if r.participant == "flaky")


def test_a_failing_model_is_skipped_after_its_circuit_opens(start_orch, watch_roster) -> None:
    """A model that always answered 500 used to cost a request in every job, forever."""
    switch = Switch()
    orch, recorder = start(start_orch, switch, cooldown_s=60, cooldown_max_s=60)
    watcher = watch_roster(orch)
    for _ in range(2):
        assert orch.ask("q").status == "ok"
    roster = watcher.wait_for(lambda r: r["flaky"].state == "down")
    assert "circuit open: 2 failed calls in a row" in roster["flaky"].reason
    calls = flaky_calls(recorder)
    result = orch.ask("q")
    [flaky] = [r for r in result.rounds[0].replies if r.model == "flaky"]
    assert flaky.status == "skipped"
    assert flaky_calls(recorder) == calls  # no request while the circuit is open
    status = {m["name"]: m for m in orch.status()["models"]}["flaky"]
    assert status["state"] == "down" and status["reason"].startswith("circuit open")
    assert status["down_since"] and status["next_probe"] > status["down_since"]


def test_a_down_model_is_probed_and_comes_back_up(start_orch, watch_roster) -> None:
    switch = Switch()
    orch, _ = start(start_orch, switch)
    watcher = watch_roster(orch)
    for _ in range(2):
        orch.ask("q")
    watcher.wait_for(lambda r: r["flaky"].state == "down")
    switch.failing.clear()  # the provider recovers
    watcher.wait_for(lambda r: r["flaky"].state == "up")  # half-open after the cool-down
    result = orch.ask("q")
    assert all(r.ok for r in result.rounds[0].replies)
    roster = watcher.wait_for(lambda r: r["flaky"].reason == "")
    assert roster["flaky"].down_since is None and roster["flaky"].next_probe is None


def test_a_failed_probe_doubles_the_cool_down_up_to_the_cap(start_orch, watch_roster) -> None:
    switch = Switch()  # never recovers
    orch, _ = start(start_orch, switch)
    watcher = watch_roster(orch)
    orch.ask("q")
    orch.ask("q")
    entry = watcher.wait_for(lambda r: r["flaky"].state == "down")["flaky"]
    cooldowns = [entry.cooldown_s]
    for _ in range(3):
        watcher.wait_for(lambda r: r["flaky"].state == "up")  # half-open
        orch.ask("q")  # the probe fails: down again at once
        last = entry.next_probe
        entry = watcher.wait_for(
            lambda r, last=last: r["flaky"].state == "down" and r["flaky"].next_probe != last
        )["flaky"]
        cooldowns.append(entry.cooldown_s)
    assert cooldowns == [0.05, 0.1, 0.2, 0.2]  # doubled, capped at cooldown_max_s
    assert entry.down_since < entry.next_probe


def test_a_model_down_after_crashes_is_restarted_by_a_probe(start_orch, watch_roster) -> None:
    broken = threading.Event()
    broken.set()
    starts: list[int] = []

    def factory(config, environ):
        if config.name == "crashy":
            starts.append(1)
            if broken.is_set():
                raise RuntimeError("cannot start")
        return make_provider(config, environ)

    orch = start_orch(
        {
            "models": fake_models(["good", "crashy"]),
            "pipeline": {"rounds": ["initial"], "synthesizer": "good"},
            "supervision": {**SUPERVISION, "max_restarts": 1},
        },
        provider_factory=factory,
    )
    watcher = watch_roster(orch)
    watcher.wait_for(lambda r: r["crashy"].state == "down")
    assert "crashes within" in watcher.latest["crashy"].reason
    broken.clear()
    watcher.wait_for(lambda r: r["crashy"].state == "up" and r["crashy"].generation >= 3)
    result = orch.ask("q")
    assert all(r.ok for r in result.rounds[0].replies)
