"""Logging: loguru to stderr (one JSON object per line with ``--log-json``), the stdlib
loggers of pykka and the SDKs routed into it, and secrets scrubbed from every line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from loguru import logger

SECRET_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
MIN_SECRET_LEN = 6


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of variables whose names say they are secrets (never to be logged)."""
    return sorted(
        {
            v
            for k, v in environ.items()
            if k.upper().endswith(SECRET_SUFFIXES) and len(v) >= MIN_SECRET_LEN
        },
        key=len,
        reverse=True,
    )


class InterceptHandler(logging.Handler):
    """Send stdlib logging records to loguru (as loguru's documentation shows)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: Any = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(
    level: str = "INFO", json_lines: bool = False, environ: Mapping[str, str] = os.environ
) -> None:
    secrets = secret_values(environ)

    def scrub(record: Any) -> None:
        message = record["message"]
        for secret in secrets:
            if secret in message:
                message = message.replace(secret, "***")
        record["message"] = message

    logger.remove()
    logger.configure(patcher=scrub)
    logger.add(sys.stderr, level=level.upper(), serialize=json_lines, backtrace=False)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.INFO, force=True)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
