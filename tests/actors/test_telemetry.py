"""/metrics under the current GenAI names (issue 21): gen_ai_provider_name labels, the
time-to-first-token, job-duration and HTTP-request histograms, no _created series, and a
clean `promtool check metrics` when promtool is installed (CI installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from actors.config import config_from_dict
from actors.metrics import Metrics
from actors.telemetry import provider_name
from messages.results import Usage


def _metrics() -> Metrics:
    config = config_from_dict(
        {
            "models": [
                {"name": "gpt", "provider": "openai", "model": "gpt-4o-mini"},
                {"name": "gem", "provider": "gemini", "model": "gemini-2.5-flash"},
                {"name": "olla", "provider": "llama", "model": "llama3.2"},
            ]
        }
    )
    metrics = Metrics()
    metrics.describe(config.models)
    metrics.record("gpt", ok=True, latency_s=0.4, usage=Usage(input_tokens=10, output_tokens=5))
    metrics.record("gem", ok=False, latency_s=0.1, error="rate_limited")
    metrics.first_token("gpt", 0.12)
    metrics.job_started()
    metrics.job_finished(
        "ok", "vote", ["initial"], pipeline="cascade", elapsed_s=1.5, escalations=["vote"]
    )
    metrics.http_request("POST", "/v1/chat/completions", 200, 1.6)
    metrics.server_first_token("/v1/chat/completions", "orchestrord", 1.2)
    return metrics


def test_model_calls_are_labelled_by_the_current_genai_provider_names() -> None:
    text = _metrics().telemetry.exposition().decode()
    assert 'gen_ai_provider_name="openai"' in text
    assert 'gen_ai_provider_name="gcp.gemini"' in text
    assert "gen_ai_system" not in text


def test_no_created_series_are_exported() -> None:
    metrics = _metrics()
    text = metrics.telemetry.exposition().decode()
    assert "_created" not in text
    from prometheus_client import generate_latest

    assert b"_created" in generate_latest(metrics.registry)  # what it used to export


def test_the_new_histograms_are_there() -> None:
    text = _metrics().telemetry.exposition().decode()
    assert 'orchestrord_call_time_to_first_token_seconds_count{gen_ai_operation_name="chat"' in text
    assert 'orchestrord_job_duration_seconds_count{pipeline="cascade",status="ok"} 1.0' in text
    assert 'orchestrord_escalations_total{pipeline="cascade",stage="vote"} 1.0' in text
    assert (
        'http_server_request_duration_seconds_count{http_request_method="POST",'
        'http_response_status_code="200",http_route="/v1/chat/completions"} 1.0' in text
    )
    assert "gen_ai_server_time_to_first_token_seconds_count{" in text


@pytest.mark.parametrize(
    ("provider", "options", "name"),
    [
        ("openai", {}, "openai"),
        ("gemini", {}, "gcp.gemini"),
        ("llama", {}, "ollama"),
        ("llama", {"api": "openai"}, "llama.cpp"),
        ("local", {}, "llama.cpp"),
        ("fake", {}, "fake"),
    ],
)
def test_provider_names_follow_the_conventions(provider: str, options: dict, name: str) -> None:
    assert provider_name(provider, options) == name


def test_promtool_finds_nothing_to_say(tmp_path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed; .ci/run installs Debian's prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    text = _metrics().telemetry.exposition()
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    ).decode()


DASHBOARD = Path(__file__).resolve().parents[2] / "contrib/grafana/orchestrord-dashboard.json"


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    text = _metrics().telemetry.exposition().decode()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    for expr in _dashboard_exprs():
        names = set(re.findall(r"\b((?:orchestrord|gen_ai|http_server)_\w+)\{", expr))
        assert names, expr
        for name in names:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in families, f"{name} in {expr!r} is not exported"


def test_the_dashboards_queries_are_valid_promql(tmp_path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed; .ci/run installs Debian's prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    rules = [
        {"record": f"orchestrord:dashboard_{i}", "expr": expr.replace("$__range", "1h")}
        for i, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "rules.json"  # YAML is a superset of JSON
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
