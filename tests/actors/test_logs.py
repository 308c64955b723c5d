"""Logging never shows a secret."""

from __future__ import annotations

import logging
import sys

import pytest
from loguru import logger

from actors.daemon.logs import secret_values, setup_logging


def test_secret_values_are_picked_by_variable_name() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-abcdef",
        "GEMINI_API_KEY": "g-123456",
        "HOME": "/root",
        "SHORT_KEY": "abc",
        "MY_TOKEN": "tok-999999",
    }
    assert set(secret_values(environ)) == {"sk-abcdef", "g-123456", "tok-999999"}


def test_secrets_are_scrubbed_from_loguru_and_stdlib_lines(capsys) -> None:
    setup_logging("INFO", environ={"OPENAI_API_KEY": "sk-very-secret"})
    try:
        logger.info("calling with key sk-very-secret now")
        logging.getLogger("openai").warning("header Authorization: Bearer sk-very-secret")
        err = capsys.readouterr().err
        assert "sk-very-secret" not in err
        assert err.count("***") == 2
    finally:
        logger.remove()
        logger.configure(patcher=lambda record: None)
        logger.add(sys.__stderr__)  # not the capture of this test, closed after it


@pytest.mark.parametrize("json_lines", [False, True])
def test_tracebacks_never_show_a_secret(capsys, json_lines: bool) -> None:
    """loguru's diagnose printed every frame's locals: a key in an SDK's headers or in an
    environment showed up in the traceback (8 times in one failed start)."""
    secret = "sk-very-secret-1234"
    setup_logging("INFO", json_lines=json_lines, environ={"OPENAI_API_KEY": secret})

    def call(headers: dict[str, str]) -> None:
        raise RuntimeError(f"request failed with {headers['Authorization']}")

    try:
        try:
            call({"Authorization": f"Bearer {secret}"})
        except RuntimeError:
            logger.exception("the call failed")
        err = capsys.readouterr().err
        assert "the call failed" in err and "RuntimeError" in err
        assert secret not in err
    finally:
        logger.remove()
        logger.configure(patcher=lambda record: None)
        logger.add(sys.__stderr__)  # not the capture of this test, closed after it


def test_the_environment_an_actor_holds_shows_no_values() -> None:
    from actors.config import Environ

    env = Environ({"OPENAI_API_KEY": "sk-very-secret-1234", "HOME": "/root"})
    assert "sk-very" not in repr(env) and "sk-very" not in str(env)
    assert env["OPENAI_API_KEY"] == "sk-very-secret-1234" and len(env) == 2
