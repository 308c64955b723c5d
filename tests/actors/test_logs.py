"""Logging never shows a secret."""

from __future__ import annotations

import logging
import sys

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
        logger.add(sys.stderr)
