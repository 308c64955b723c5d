"""``/v1/models`` and ``/v1/models/{id}`` (CONTRACT §13): every name a request may give,
with what it can do and how it did in the newest evaluation the run store holds."""

from __future__ import annotations

import httpx2
import openai
import pytest
from daemon_helpers import rpc
from helpers import WAIT, fake_models
from test_http import KEY, client, start

MODELS = [
    {"name": "a", "provider": "fake", "reply": "4"},
    {"name": "b", "provider": "fake", "reply": "4", "supports_tools": False},
    {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "api_key_env": "NOPE_KEY"},
]


def test_each_model_says_what_it_can_do(daemon) -> None:
    d = start(daemon, models=MODELS, env={"ORCHESTRORD_API_KEY": KEY, "NOPE_KEY": "sk-x"})
    listed = {m.id: m.model_extra for m in client(d).models.list()}
    assert listed["a"]["capabilities"] == {
        "tools": True,
        "streaming": "live",
        "context_window": None,
    }
    assert listed["b"]["capabilities"]["tools"] is False  # its fake says it takes none
    mini = listed["mini"]["capabilities"]
    assert mini["tools"] is True and mini["context_window"] == 128_000  # genai-prices knows
    ensemble = listed["orchestrord"]["capabilities"]
    assert ensemble == {"tools": True, "streaming": "held", "context_window": None}
    assert all(entry["evaluation"] is None for entry in listed.values())


def test_one_model_by_id_and_an_unknown_id_is_a_404(daemon) -> None:
    d = start(daemon)
    api = client(d)
    one = api.models.retrieve("orchestrord/vote")
    assert one.id == "orchestrord/vote" and one.owned_by == "orchestrord"
    assert api.models.retrieve("a").owned_by == "fake"
    with pytest.raises(openai.NotFoundError) as caught:
        api.models.retrieve("gpt-9")
    assert caught.value.body["code"] == "model_not_found"
    raw = httpx2.get(
        f"{d.url}/v1/models/gpt-9", headers={"Authorization": f"Bearer {KEY}"}, timeout=WAIT
    )
    assert raw.status_code == 404 and set(raw.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    assert httpx2.get(f"{d.url}/v1/models/a", timeout=WAIT).status_code == 401


def evaluation_job(d, dataset: str, key: str, **params) -> None:
    metadata = {"eval": dataset, "eval_key": key}
    reply = rpc(d, "ask", {"prompt": "2+2?", "metadata": metadata, **params})
    assert reply["result"]["status"] == "ok", reply


def test_entries_carry_the_newest_evaluations_figures(daemon) -> None:
    d = start(daemon, models=fake_models(("a", "b"), reply="4", latency_ms=20))
    evaluation_job(d, "old", "k" * 24, models=["a"], rounds=["initial"])
    for i in range(3):
        evaluation_job(d, "new", f"{i:024d}", models=["a"], rounds=["initial"])
        evaluation_job(d, "new", f"{i + 10:024d}", strategy="vote")
    evaluation_job(d, "new", "j" * 32, models=["b"], rounds=["initial"])  # a judge's verdict
    listed = {m.id: m.model_extra["evaluation"] for m in client(d).models.list()}
    a = listed["a"]
    assert a["dataset"] == "new" and a["questions"] == 3 and a["accuracy"] is None
    assert a["p50_latency_ms"] >= 20 and a["cost_per_question_usd"] == 0.0
    assert listed["orchestrord/vote"]["questions"] == 3
    assert listed["b"] is None and listed["orchestrord"] is None  # a judge is not a system


def test_an_entry_carries_the_accuracy_the_daemon_graded(daemon) -> None:
    """Evaluation jobs of one model carry their grading (``eval_grade``): the daemon grades
    each as it ends, and ``/v1/models`` shows the measured accuracy."""
    d = start(daemon, models=fake_models(("a", "b"), reply="4"))
    for i, right in enumerate(("4", "4", "5")):
        grade = {"dataset": "sums", "item": f"q{i}", "grader": "exact", "answers": [right]}
        metadata = {"eval": "sums", "eval_key": f"{i:024d}", "eval_grade": grade}
        params = {"prompt": "2+2?", "metadata": metadata, "models": ["a"], "rounds": ["initial"]}
        assert rpc(d, "ask", params)["result"]["status"] == "ok"
    listed = {m.id: m.model_extra["evaluation"] for m in client(d).models.list()}
    assert listed["a"]["accuracy"] == pytest.approx(2 / 3)
