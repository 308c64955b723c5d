"""Configuration: valid files load; every bad key is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.config import Config, config_from_dict, load_config, with_overrides
from messages.errors import ConfigError

MINIMAL: dict[str, Any] = {"models": [{"name": "a", "provider": "fake"}]}

FULL_TOML = """
[daemon]
socket = "/tmp/o.sock"
max_inflight_jobs = 10

[[models]]
name = "gpt"
provider = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:8080/v1"
api_key_env = "MY_KEY"
rpm = 500
tpm = 200000
max_concurrency = 8
timeout_s = 60
max_tokens = 1024
temperature = 0.7
price_in_per_mtok = 0.15
price_out_per_mtok = 0.60

[[models]]
name = "f"
provider = "fake"
reply = "hello"
latency_ms = 5

[pipeline]
rounds = ["initial", "meta", "meta", "synthesis"]
synthesizer = "gpt"
min_replies = 2
job_timeout_s = 30

[templates]
meta = "Q: {prompt} A: {answers} R: {round}"

[supervision]
max_restarts = 2
window_s = 10
"""


def with_model(**changes: Any) -> dict[str, Any]:
    return {"models": [{"name": "a", "provider": "fake", **changes}]}


def test_a_full_toml_file_loads_into_frozen_dataclasses(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(FULL_TOML)
    config = load_config(path)
    assert isinstance(config, Config)
    gpt = config.model("gpt")
    assert (gpt.rpm, gpt.tpm, gpt.request_burst) == (500.0, 200000.0, 500 / 60)
    assert gpt.cost_usd(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert config.model("f").options["reply"] == "hello"
    assert config.pipeline.rounds == ("initial", "meta", "meta", "synthesis")
    assert config.daemon.max_inflight_jobs == 10
    assert config.source == str(path)
    with pytest.raises(AttributeError):
        config.pipeline.min_replies = 3  # type: ignore[misc]


def test_defaults_fill_what_the_file_leaves_out() -> None:
    config = config_from_dict(MINIMAL)
    model = config.model("a")
    assert model.max_concurrency == 8 and model.rpm is None and model.request_burst == 1.0
    assert config.pipeline.rounds == ("initial", "meta", "synthesis")
    assert config.supervision.max_restarts == 5


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({**MINIMAL, "bogus": {}}, "bogus"),
        ({**MINIMAL, "pipeline": {"roundz": []}}, "pipeline.roundz"),
        (with_model(rpm="fast"), "models[0].rpm"),
        (with_model(rpm=-1), "models[0].rpm"),
        (with_model(max_concurrency=1.5), "models[0].max_concurrency"),
        (with_model(max_concurrency=True), "models[0].max_concurrency"),
        (with_model(colour="red"), "models[0].colour"),
        (with_model(latency_ms="slow"), "models[0].latency_ms"),
        (with_model(fail_rate=2), "models[0].fail_rate"),
        ({"models": [{"name": "a", "provider": "nope"}]}, "models[0].provider"),
        ({"models": [{"name": "a"}]}, "models[0].provider"),
        ({"models": []}, "models"),
        ({}, "models"),
        ({"models": [{"name": "a", "provider": "fake"}] * 2}, "models[1].name"),
        ({**MINIMAL, "pipeline": {"rounds": ["meta"]}}, "pipeline.rounds"),
        ({**MINIMAL, "pipeline": {"rounds": ["initial", "synthesis", "meta"]}}, "pipeline.rounds"),
        ({**MINIMAL, "pipeline": {"rounds": ["initial", "dance"]}}, "pipeline.rounds"),
        ({**MINIMAL, "pipeline": {"strategy": "magic"}}, "pipeline.strategy"),
        ({**MINIMAL, "pipeline": {"synthesizer": "ghost"}}, "pipeline.synthesizer"),
        ({**MINIMAL, "templates": {"meta": "{prompt} {secret}"}}, "templates.meta"),
        ({**MINIMAL, "templates": {"meta": "{prompt"}}, "templates.meta"),
        (
            {**MINIMAL, "supervision": {"backoff_min_s": 5, "backoff_max_s": 1}},
            "supervision.backoff_max_s",
        ),
        ({**MINIMAL, "daemon": {"max_inflight_jobs": 0}}, "daemon.max_inflight_jobs"),
    ],
)
def test_bad_keys_are_rejected_with_the_key_named(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert info.value.key == key
    assert key in str(info.value)


def test_a_missing_file_and_broken_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[models\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_overrides_replace_only_the_given_daemon_keys() -> None:
    config = config_from_dict(MINIMAL)
    changed = with_overrides(config, socket="/tmp/x.sock", state_dir=None)
    assert changed.daemon.socket == "/tmp/x.sock"
    assert changed.daemon.state_dir == config.daemon.state_dir
    assert with_overrides(config, socket=None) is config


# --- prices ---------------------------------------------------------------------------------


def test_an_unset_price_comes_from_genai_prices() -> None:
    """Every zero-config hosted model used to cost 0, so max_cost_usd was a silent no-op."""
    config = config_from_dict(
        {
            "models": [
                {"name": "gpt", "provider": "openai", "model": "gpt-4o-mini"},
                {"name": "gem", "provider": "gemini", "model": "gemini-2.5-flash"},
                {
                    "name": "mine",
                    "provider": "openai",
                    "price_in_per_mtok": 1.0,
                    "price_out_per_mtok": 2.0,
                },
                {"name": "local", "provider": "fake"},
                {"name": "llama", "provider": "llama", "model": "my-finetune"},
            ]
        }
    )
    gpt, gem, mine, local, llama = config.models
    assert (gpt.price_in_per_mtok, gpt.price_out_per_mtok) == (0.15, 0.6)
    assert gem.priced and gem.price_out_per_mtok > gem.price_in_per_mtok > 0
    assert (mine.price_in_per_mtok, mine.price_out_per_mtok) == (1.0, 2.0)  # config wins
    assert local.priced and local.cost_usd(1000, 1000) == 0.0
    assert not llama.priced and llama.cost_usd(1000, 1000) == 0.0  # unknown, counted as 0


def test_a_budget_over_a_model_with_an_unknown_price_is_refused(start_orch) -> None:
    from messages.errors import InvalidParams

    orch = start_orch(
        {
            "models": [
                {"name": "a", "provider": "fake"},
                {"name": "llama", "provider": "llama", "model": "unpriced-model"},
            ]
        }
    )
    with pytest.raises(InvalidParams, match=r"no price is known for \['llama'\]"):
        orch.ask("q", max_cost_usd=0.01)
    assert orch.ask("q", models=["a"], max_cost_usd=0.01).status == "ok"  # priced: fine


@pytest.mark.parametrize(
    ("validate", "key"),
    [
        ({"regex": "("}, "pipeline.validate.regex"),
        ({"required_sections": "Summary"}, "pipeline.validate.required_sections"),
        ({"sections": ["x"]}, "pipeline.validate.sections"),
    ],
)
def test_a_bad_validate_names_its_key(validate: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(
            {"models": [{"name": "a", "provider": "fake"}], "pipeline": {"validate": validate}}
        )
    assert caught.value.key == key


def test_a_model_name_with_a_hash_is_refused() -> None:
    """``gpt#2`` names the second sample of ``gpt`` in a vote: a model of that name would
    be counted as a sample of another."""
    with pytest.raises(ConfigError, match=r"models\[0\]\.name: must not contain '#'"):
        config_from_dict({"models": [{"name": "x#2", "provider": "fake"}]})
