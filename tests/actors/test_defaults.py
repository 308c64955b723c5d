"""Zero-config defaults, config discovery and .env loading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.daemon.defaults import (
    config_path,
    default_models,
    describe,
    load_dotenv_file,
    resolve_config,
)

NO_HOME = {"HOME": "/nonexistent-home"}


def names(environ: dict[str, str]) -> list[tuple[str, str]]:
    config = resolve_config(environ={**NO_HOME, **environ})
    return [(m.name, m.provider) for m in config.models]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, [("local-1", "local"), ("local-2", "local"), ("local-3", "local")]),
        ({"OPENAI_API_KEY": "k"}, [("gpt", "openai")]),
        ({"GEMINI_API_KEY": "k"}, [("gemini", "gemini")]),
        ({"GOOGLE_API_KEY": "k"}, [("gemini", "gemini")]),
        ({"LLAMA_BASE_URL": "http://127.0.0.1:11434"}, [("llama", "llama")]),
        (
            {"OPENAI_API_KEY": "a", "GOOGLE_API_KEY": "b", "LLAMA_BASE_URL": "http://h:1"},
            [("gpt", "openai"), ("gemini", "gemini"), ("llama", "llama")],
        ),
        (
            {"OPENAI_API_KEY": ""},
            [("local-1", "local"), ("local-2", "local"), ("local-3", "local")],
        ),
    ],
)
def test_the_effective_models_follow_the_environment(environ, expected) -> None:
    assert names(environ) == expected


def test_the_three_local_participants_differ_in_seed_and_temperature() -> None:
    models = resolve_config(environ=NO_HOME).models
    assert len({m.seed for m in models}) == 3
    assert len({m.temperature for m in models}) == 3
    assert all(m.options["model_path"] == "" for m in models)  # the packaged file


def test_gemini_uses_whichever_key_variable_is_set() -> None:
    [gemini] = default_models({"GOOGLE_API_KEY": "k"})
    assert gemini["api_key_env"] == "GOOGLE_API_KEY"


def test_a_config_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[models]]\nname = "only"\nprovider = "fake"\n')
    assert names({"ORCHESTRORD_CONFIG": str(path), "OPENAI_API_KEY": "k"}) == [("only", "fake")]
    flag = resolve_config(str(path), environ={**NO_HOME, "ORCHESTRORD_CONFIG": "/nope"})
    assert flag.source == str(path)


def test_the_user_config_file_is_used_when_present(tmp_path: Path) -> None:
    user = tmp_path / "orchestrord" / "config.toml"
    user.parent.mkdir()
    assert config_path(None, {"XDG_CONFIG_HOME": str(tmp_path)}) is None
    user.write_text('[[models]]\nname = "mine"\nprovider = "fake"\n')
    assert config_path(None, {"XDG_CONFIG_HOME": str(tmp_path)}) == user


def test_dotenv_fills_the_environment_without_overriding_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("ORCH_TEST_FROM_FILE=file\nORCH_TEST_SET=file\n")
    monkeypatch.setenv("ORCH_TEST_SET", "real")
    monkeypatch.delenv("ORCH_TEST_FROM_FILE", raising=False)
    assert load_dotenv_file(tmp_path)
    assert os.environ["ORCH_TEST_FROM_FILE"] == "file"
    assert os.environ["ORCH_TEST_SET"] == "real"
    monkeypatch.delenv("ORCH_TEST_FROM_FILE")
    assert load_dotenv_file(tmp_path / "absent") is False


def test_describe_names_models_and_pipeline_but_no_secret() -> None:
    environ = {**NO_HOME, "OPENAI_API_KEY": "sk-secret-value"}
    text = describe(resolve_config(environ=environ))
    assert "gpt" in text and "initial -> meta -> synthesis" in text
    assert "sk-secret-value" not in text
